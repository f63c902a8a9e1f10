"""A stopgap for core/engine.py (not landed yet): one cycle from the core's own pieces.

It offers the announced Engine surface (`run_cycle`, `fresh_plan`, `latest`, `refresh`, `close`)
so `premia run` and `premia chat` work today; when core.engine lands, chatbot.app uses it and
this file goes. One cycle: poll (core.feeds) → snapshot stored → rules with persisted states
(core.evaluate) → proposal stored, older ones superseded (core.planner) → one outbox alert per
set of fired rules (deduplicated by the store's cooldown) → the job run recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.brokers.base import Broker
from core.brokers.paper import PaperBroker
from core.codec import snapshot_from_dict, snapshot_to_dict, trigger_to_dict
from core.config import Settings
from core.errors import FeedError
from core.evaluate import Evaluation, evaluate
from core.models import FearGreed, MarketSnapshot, Portfolio, Proposal
from core.planner import plan
from core.rules import RuleState
from core.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CycleResult:
    snapshot_id: str | None
    proposal: Proposal | None
    alerts: int
    failures: tuple[str, ...]


class StopgapEngine:
    """Polls the configured exchanges and Fear & Greed, and runs the rules over the broker's book."""

    def __init__(self, settings: Settings, store: Store, broker: Broker, clock: Callable[[], datetime]):
        self.settings, self.store, self.broker, self.clock = settings, store, broker, clock
        self._clients: Any = None
        self._fear_greed: tuple[datetime, FearGreed] | None = None
        self._latest: tuple[MarketSnapshot, Portfolio, Evaluation] | None = None
        self._latest_id: str | None = None
        self.failures: tuple[str, ...] = ()  # what the last poll could not fetch
        self.keep_clients = True  # exchange connections and loaded markets stay between polls

    # ── the market ─────────────────────────────────────────────────────────────────────

    async def refresh(self) -> MarketSnapshot:
        """A fresh market snapshot (FeedError when no asset could be fetched)."""
        from core.feeds.clients import ExchangeClients
        from core.feeds.exchange import fetch_markets_snapshot

        if self._clients is None:
            self._clients = ExchangeClients(self.settings)
        now = self.clock()
        try:
            result = await fetch_markets_snapshot(self._clients, self.settings, now)
        finally:
            if not self.keep_clients:  # `premia chat` polls rarely and has no place to close them
                await self.close()
        for f in result.failures:
            log.warning("feed: %s %s %s: %s", f.exchange, f.asset or "", f.what, f.message)
        if not result.markets:
            why = f" ({result.failures[0].message})" if result.failures else ""
            raise FeedError(f"I could not reach the market just now{why}. Try again in a minute.")
        self.failures = tuple(f"{f.exchange} {f.asset or ''} {f.what}: {f.message}" for f in result.failures)
        return MarketSnapshot(now, self.settings.quote, dict(result.markets), await self._fng(now))

    async def _fng(self, now: datetime) -> FearGreed | None:
        """The index changes once a day: fetched at most hourly, the last reading kept on failure."""
        from core.feeds.fear_greed import fetch_fear_greed

        if self._fear_greed is not None and now - self._fear_greed[0] < timedelta(hours=1):
            return self._fear_greed[1]
        feeds = self.settings.feeds
        try:
            fg = await fetch_fear_greed(feeds.fear_greed_url, feeds.history_days, feeds.timeout_seconds)
        except FeedError as exc:
            log.warning("feed: %s", exc)
            return self._fear_greed[1] if self._fear_greed else None
        self._fear_greed = (now, fg)
        return fg

    def _states(self) -> dict[str, RuleState]:
        return {k: RuleState(v["state"], v["since"], v.get("data") or {})
                for k, v in self.store.get_rule_states().items()}

    async def _evaluate(self, snapshot: MarketSnapshot) -> tuple[Portfolio, Evaluation]:
        portfolio = (await self.broker.balances()).portfolio()
        return portfolio, evaluate(snapshot, portfolio, self.settings, self._states())

    # ── the engine surface ─────────────────────────────────────────────────────────────

    def latest(self) -> tuple[MarketSnapshot, Portfolio, Evaluation] | None:
        """The newest stored snapshot, evaluated: this process's own, or `premia run`'s."""
        row = self.store.latest_snapshot()
        if row is None or row[0] == self._latest_id:
            return self._latest
        snapshot = snapshot_from_dict(row[2])
        if isinstance(self.broker, PaperBroker):
            portfolio = self.broker.book()
        elif self._latest is not None:
            portfolio = self._latest[1]  # a live book is only known after a poll of our own
        else:
            return None
        self._latest_id = row[0]
        self._latest = (snapshot, portfolio, evaluate(snapshot, portfolio, self.settings, self._states()))
        return self._latest

    async def fresh_plan(self) -> tuple[Evaluation, Proposal]:
        """A proposal from the market now (rule states read, not written)."""
        snapshot = await self.refresh()
        portfolio, ev = await self._evaluate(snapshot)
        self._latest = (snapshot, portfolio, ev)
        sid = self.store.save_snapshot(snapshot.as_of, snapshot_to_dict(snapshot), "plan")
        self._latest_id = sid
        return ev, plan(ev, snapshot, portfolio, self.settings, strategy=self.settings.strategy.name,
                        snapshot_id=sid)

    async def run_cycle(self) -> CycleResult:
        started = self.clock()
        try:
            result = await self._cycle()
        except Exception as exc:
            self.store.record_job_run("poll", started, self.clock(), "failed", str(exc)[:500])
            if isinstance(exc, FeedError):
                self._alert("feed_down", "feed_down", {"text": f"No market data: {exc}"})
            raise
        self.store.record_job_run("poll", started, self.clock(), "ok",
                                  f"{result.alerts} alert(s), {len(result.failures)} failure(s)")
        return result

    async def _cycle(self) -> CycleResult:
        snapshot = await self.refresh()
        sid = self.store.save_snapshot(snapshot.as_of, snapshot_to_dict(snapshot))
        portfolio, ev = await self._evaluate(snapshot)
        now = snapshot.as_of
        self.store.put_rule_states({k: {"state": s.state, "since": s.since, "data": dict(s.data)}
                                    for k, s in ev.states.items()}, now)
        self.store.expire_proposals(now)
        self._latest, self._latest_id = (snapshot, portfolio, ev), sid
        proposal = None
        if ev.triggers:
            proposal = plan(ev, snapshot, portfolio, self.settings, strategy=self.settings.strategy.name,
                            snapshot_id=sid)
            if proposal.orders:
                with self.store.transaction():
                    self.store.save_proposal(proposal)
                    self.store.supersede_open(proposal.id, now)
            else:
                proposal = None
        alerts = 0
        if ev.triggers:
            # One message per set of fired rules (a phone gets one alert with one set of buttons),
            # repeated only when the set changes or the cooldown has passed.
            key = "triggers:" + ",".join(sorted(f"{t.rule}:{t.asset or '-'}:{t.state_to or 'on'}"
                                                for t in ev.triggers))
            payload = {"triggers": [trigger_to_dict(t) for t in ev.triggers],
                       "proposal_id": proposal.id if proposal else None}
            alerts = self._alert(key, "proposal" if proposal else "trigger", payload)
        return CycleResult(sid, proposal, alerts, self.failures)

    def _alert(self, key: str, kind: str, payload: dict[str, Any]) -> int:
        cooldown = timedelta(minutes=self.settings.scheduler.alert_cooldown_minutes)
        return int(self.store.enqueue_alert(key, kind, payload, self.clock(), cooldown) is not None)

    async def close(self) -> None:
        clients, self._clients = self._clients, None
        if clients is not None:
            await asyncio.shield(clients.close())
