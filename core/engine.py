"""One engine cycle: market → snapshot stored → signals → rules with their persisted states →
proposal stored → alert events in the outbox.

Every write happens before the side effect it permits: the new rule states, the proposal and
the outbox rows announcing them are written in one transaction (the outbox is delivered later
by the chat side), so a crash neither loses nor repeats an alert. Rule states are read from the
store at every cycle, so a restart keeps its hysteresis.
A cycle never raises for a feed or exchange problem: it records what failed, raises one alert
per feed that died (and one when it is back), and goes on with what it got.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core.alerts import Alerts, trigger_key
from core.codec import snapshot_from_dict
from core.config import Settings
from core.errors import FeedError, PremiaError, SnapshotError
from core.evaluate import Evaluation, evaluate
from core.market_feed import FeedReport, FeedStatus, MarketFeed, describe
from core.models import MarketSnapshot, Portfolio, Proposal
from core.planner import plan
from core.portfolio_source import PortfolioSource
from core.rules import RuleState
from core.signals import basis_apr, funding_apr, nearest_future, perp_premium, realized_vol, vol_ratio
from core.snapshot_io import dump_snapshot, parse_snapshot
from core.store import Store

log = logging.getLogger(__name__)

# Set by /pause (any value): polls, rules and alerts go on, proposals wait for /resume.
PAUSE_FLAG = "paused"
MARKET_DATA = "market data"  # the pseudo-feed whose health is "no stale quotes"


@dataclass(frozen=True)
class CycleResult:
    """What one cycle did. `proposal` is the open proposal standing after it (only with orders):
    a new one, or the previous one kept because the same rules still fire."""

    snapshot_id: str | None
    snapshot: MarketSnapshot | None
    evaluation: Evaluation | None
    proposal: Proposal | None
    alerts: tuple[int, ...]
    failures: tuple[str, ...]
    skipped: str | None


def stored_payload(snapshot: MarketSnapshot, portfolio: Portfolio | None) -> dict[str, Any]:
    """The public snapshot format (core/snapshot_io), with `portfolio: null` when it is unknown."""
    payload = dump_snapshot(snapshot, portfolio)
    if portfolio is None:
        payload["portfolio"] = None
    return payload


def load_stored_snapshot(payload: Mapping[str, Any]) -> tuple[MarketSnapshot, Portfolio | None]:
    """A stored snapshot: the public format (with its portfolio), or the codec's (the executor's)."""
    if "portfolio" not in payload:
        try:
            return snapshot_from_dict(payload), None
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise SnapshotError(f"stored snapshot is not in a known format ({exc!r})") from None
    known = payload["portfolio"] is not None
    document = dict(payload) if known else {**payload, "portfolio": {"balances": {}}}
    snapshot, portfolio, _ = parse_snapshot(document, "stored snapshot")
    return snapshot, portfolio if known else None


def states_from_store(store: Store) -> dict[str, RuleState]:
    return {k: RuleState(v["state"], v["since"], v.get("data") or {})
            for k, v in store.get_rule_states().items()}


def signal_rows(snapshot: MarketSnapshot, ev: Evaluation, settings: Settings) -> list[dict[str, Any]]:
    """The numbers behind a cycle's verdicts, one row per asset and signal (values as text)."""
    rows: list[dict[str, Any]] = []

    def add(asset: str | None, name: str, value: object) -> None:
        if value is not None:
            rows.append({"asset": asset, "name": name, "value": str(value)})

    vol = settings.strategy.rules.volatility_spike
    now = snapshot.as_of
    for asset, m in sorted(snapshot.assets.items()):
        if m.spot is not None:
            add(asset, "price", m.spot.price)
        if m.perp is not None:
            p = m.perp
            add(asset, "funding_rate", p.funding_rate)
            add(asset, "funding_interval_hours", p.funding_interval_hours)
            add(asset, "funding_apr", funding_apr(p.funding_rate, p.funding_interval_hours))
            add(asset, "perp_premium", perp_premium(p.mark, p.index) if p.index > 0 else None)
            add(asset, "next_funding_time", p.next_funding_time.isoformat() if p.next_funding_time else None)
        future = nearest_future(m.futures, now)
        if future is not None and m.spot is not None:
            add(asset, "basis_apr", basis_apr(future.price, m.spot.price, future.expiry, now))
            add(asset, "basis_future", future.symbol)
        if m.closes:
            add(asset, f"vol_{vol.short_days}d", realized_vol(m.closes, vol.short_days))
            add(asset, "vol_ratio", vol_ratio(m.closes, vol.short_days, vol.long_days))
        add(asset, "weight", ev.valuation.weight(asset))
        add(asset, "target", ev.targets.spot_weight(asset))
        add(asset, "futures_weight", ev.valuation.futures_weight(asset))
    add(None, "portfolio_value", ev.valuation.value)
    add(None, "net_futures_exposure", ev.valuation.net_futures_exposure)
    add(None, "hedged_share", ev.valuation.hedged_share)
    if snapshot.fear_greed is not None:
        add(None, "fear_greed", snapshot.fear_greed.value)
    for key, state in sorted(ev.states.items()):
        add(None, f"state:{key}", state.state)
    return rows


def _signature(p: Proposal, ev: Evaluation) -> bool:
    """Whether an open proposal answers the same set of fired rules as this evaluation."""
    return {trigger_key(t) for t in p.triggers} == {trigger_key(t) for t in ev.triggers}


class Engine:
    """Runs cycles over one feed, one portfolio source and one store; serves the latest view."""

    def __init__(self, settings: Settings, store: Store, feed: MarketFeed, portfolio: PortfolioSource,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.store = store
        self.feed = feed
        self.portfolio = portfolio
        self.clock = clock
        self.alerts = Alerts(settings, store)
        self.failures: tuple[str, ...] = ()  # what the last poll could not fetch
        self.keep_clients = True  # False: close exchange connections after each fetch (`premia chat`)
        self._lock = asyncio.Lock()  # the poll and the funding job never interleave their cycles
        self._view: tuple[str, MarketSnapshot, Portfolio, Evaluation] | None = None

    # ── the cycle ──────────────────────────────────────────────────────────────────────────

    async def run_cycle(self) -> CycleResult:
        """Fetch, store, evaluate, propose, alert; see the module docstring."""
        async with self._lock:
            return await self._cycle()

    async def _fetch(self, now: datetime) -> FeedReport:
        try:
            return await self.feed.fetch(now)
        except Exception as exc:  # a feed bug must not stop the cycle: it is a failed feed
            log.exception("market feed failed")
            why = describe(exc)
            return FeedReport(None, (f"feed: {why}",), (FeedStatus("market", False, why),))
        finally:
            if not self.keep_clients:
                await self.feed.close()

    async def _cycle(self) -> CycleResult:
        now = self.clock()
        report = await self._fetch(now)
        failures = list(report.failures)
        self.failures = report.failures
        ids = self.alerts.health(report.statuses, now)
        snapshot = report.snapshot
        if snapshot is None:
            dead = ", ".join(f"{s.name} ({s.detail})" for s in report.dead) or "no feed answered"
            return CycleResult(None, None, None, None, tuple(ids), tuple(failures),
                               f"no market data: {dead}")
        try:
            portfolio = await self.portfolio.portfolio()
        except Exception as exc:
            why = str(exc) if isinstance(exc, PremiaError) else describe(exc)
            failures.append(f"portfolio: {why}")
            ids += self.alerts.health([FeedStatus("portfolio", False, why)], now)
            sid = self.store.save_snapshot(snapshot.as_of, stored_payload(snapshot, None), "poll")
            return CycleResult(sid, snapshot, None, None, tuple(ids), tuple(failures),
                               f"no portfolio: {why}")
        ids += self.alerts.health([FeedStatus("portfolio", True)], now)
        sid = self.store.save_snapshot(snapshot.as_of, stored_payload(snapshot, portfolio), "poll")
        stored = states_from_store(self.store)
        try:
            ev = evaluate(snapshot, portfolio, self.settings, stored)
        except PremiaError as exc:  # inconsistent data: recorded, the next cycle tries again
            failures.append(f"evaluation: {exc}")
            return CycleResult(sid, snapshot, None, None, tuple(ids), tuple(failures), f"evaluation: {exc}")
        self.store.save_signals(sid, snapshot.as_of, signal_rows(snapshot, ev, self.settings))
        changed = {k: {"state": s.state, "since": s.since, "data": dict(s.data)}
                   for k, s in ev.states.items() if stored.get(k) != s}
        # One transaction: a crash can neither lose the alert of a state change nor repeat it.
        with self.store.transaction():
            self.store.put_rule_states(changed, now)
            self.store.expire_proposals(now)
            proposal, skipped = self._propose(ev, snapshot, portfolio, sid, now)
            ids += self._freshness_alert(ev, snapshot, report.dead, now)
            ids += self.alerts.triggers(ev.triggers, proposal, now, unseen_assets=ev.freshness.stale_spot,
                                        snapshot_id=sid, warnings=self._why_none(ev, skipped))
        self._view = (sid, snapshot, portfolio, ev)
        return CycleResult(sid, snapshot, ev, proposal, tuple(ids), tuple(failures), skipped)

    def _propose(self, ev: Evaluation, snapshot: MarketSnapshot, portfolio: Portfolio, sid: str,
                 now: datetime) -> tuple[Proposal | None, str | None]:
        """Inside the cycle's transaction: the proposal standing after this evaluation."""
        if ev.freshness.any_spot_stale:
            return None, "stale data: no proposal"
        if not ev.triggers:
            return None, None
        if self.store.get_flag(PAUSE_FLAG) is not None:
            return None, "paused: rules evaluated, no proposal made"
        open_now = self.store.open_proposals(now)
        current = open_now[-1].proposal if open_now else None
        if current is not None and current.orders and _signature(current, ev):
            return current, None  # the same rules still fire: the open proposal stands
        proposal = plan(ev, snapshot, portfolio, self.settings, strategy=self.settings.strategy.name,
                        snapshot_id=sid, market_rules=self.feed.sizing_rules())
        if not proposal.orders:
            return None, None
        self.store.save_proposal(proposal)
        self.store.supersede_open(proposal.id, now)
        return proposal, None

    @staticmethod
    def _why_none(ev: Evaluation, skipped: str | None) -> list[str]:
        return [skipped] if skipped else [w for w in ev.warnings if "minimum" in w or "stale" in w]

    def _freshness_alert(self, ev: Evaluation, snapshot: MarketSnapshot, dead: tuple[FeedStatus, ...],
                         now: datetime) -> list[int]:
        """Stale or missing quotes from a feed that answered (a dead feed has its own alert)."""
        down = {s.name for s in dead}
        missing = {a for a, cfg in self.settings.assets.items()
                   if a not in snapshot.assets and a not in self.settings.stablecoins}
        stale = sorted(a for a in ev.freshness.stale_spot | missing
                       if a not in self.settings.assets or self.settings.assets[a].exchange not in down)
        detail = "stale or missing prices for " + ", ".join(stale) if stale else ""
        return self.alerts.health([FeedStatus(MARKET_DATA, not stale, detail)], now, down_kind="stale")

    # ── views for chat ─────────────────────────────────────────────────────────────────────

    def _states(self) -> dict[str, RuleState]:
        return states_from_store(self.store)

    def _max_age(self) -> timedelta:
        """How old a stored snapshot may be to plan from it (beyond: fetch a fresh one)."""
        s = self.settings
        return timedelta(seconds=min(s.staleness.spot_seconds, s.scheduler.poll_minutes * 60 + 60))

    async def refresh(self) -> MarketSnapshot:
        """A fresh snapshot from the feed (the executor re-checks with it); FeedError if none."""
        now = self.clock()
        report = await self._fetch(now)
        if report.snapshot is None:
            dead = ", ".join(f"{s.name}: {s.detail}" for s in report.dead) or "no feed answered"
            raise FeedError(f"I could not reach the market just now ({dead}). Try again in a minute.")
        return report.snapshot

    async def fresh_plan(self) -> tuple[Evaluation, Proposal]:
        """A proposal from the latest stored snapshot (or a fresh one when that is too old).

        Rule states are read, not written; the proposal is not stored (the caller decides).
        """
        now = self.clock()
        row = self.store.latest_snapshot()
        snapshot = sid = None
        if row is not None and now - row[1] <= self._max_age():
            try:
                snapshot, sid = load_stored_snapshot(row[2])[0], row[0]
            except PremiaError as exc:
                log.warning("stored snapshot %s unreadable (%s); fetching a fresh one", row[0], exc)
        if snapshot is None:
            snapshot = await self.refresh()
            sid = self.store.save_snapshot(snapshot.as_of, stored_payload(snapshot, None), "plan")
        portfolio = await self.portfolio.portfolio()
        ev = evaluate(snapshot, portfolio, self.settings, self._states())
        return ev, plan(ev, snapshot, portfolio, self.settings, strategy=self.settings.strategy.name,
                        snapshot_id=sid, market_rules=self.feed.sizing_rules())

    def latest(self) -> tuple[MarketSnapshot, Portfolio, Evaluation] | None:
        """The newest stored snapshot (this process's or another's) evaluated over the portfolio."""
        row = self.store.latest_snapshot()
        if row is None:
            return self._view[1:] if self._view else None
        portfolio = self.portfolio.cached()
        view = self._view
        if view is not None and view[0] == row[0] and (portfolio is None or portfolio == view[2]):
            return view[1:]
        try:
            snapshot, stored_portfolio = load_stored_snapshot(row[2])
        except PremiaError as exc:
            log.warning("stored snapshot %s unreadable: %s", row[0], exc)
            return view[1:] if view else None
        chosen = portfolio or stored_portfolio or (view[2] if view else None)
        if chosen is None:
            return None
        try:
            ev = evaluate(snapshot, chosen, self.settings, self._states())
        except PremiaError as exc:  # e.g. a holding the snapshot has no price for
            log.warning("cannot evaluate snapshot %s: %s", row[0], exc)
            return view[1:] if view else None
        self._view = (row[0], snapshot, chosen, ev)
        return snapshot, chosen, ev

    def funding_schedule(self) -> list[tuple[str, Decimal, datetime | None]]:
        """(symbol, interval hours, next settlement) of every perpetual in the latest snapshot."""
        view = self.latest()
        if view is None:
            return []
        return [(m.perp.symbol, m.perp.funding_interval_hours, m.perp.next_funding_time)
                for m in view[0].assets.values() if m.perp is not None]

    async def close(self) -> None:
        """Close the feed's and the portfolio source's connections."""
        for closer in (self.feed.close, self.portfolio.close):
            try:
                await closer()
            except Exception as exc:
                log.warning("closing the engine: %s", describe(exc))
