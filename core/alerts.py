"""Turning what a cycle found into outbox events: rules that fired, feeds that died or came back.

Deduplication, so a phone is told once:
- a trigger's key is its rule, asset and state change (`volatility_spike:BTC:normal>spiked`); a
  key raised within `scheduler.alert_cooldown_minutes` is not raised again;
- a trigger without a state (a drift band: it fires every cycle while the weight is outside)
  is raised when it starts firing and not again until it has stopped and started once more;
- a feed is raised when it goes down and once more when it is back, never once per poll.

The new triggers of one cycle go out as one alert, with the proposal they led to, so the owner
gets one message with one set of buttons. What has been raised is kept in the store (flags), so
a restart neither repeats nor forgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.codec import dt_from, dt_to_str, trigger_to_dict
from core.config import Settings
from core.models import Proposal, Trigger

if TYPE_CHECKING:
    from core.market_feed import FeedStatus
    from core.store import Store

MEMORY_FLAG = "alerts:triggers"
HEALTH_FLAG = "alerts:feeds"
_MAX_IN_TEXT = 3


def trigger_key(t: Trigger) -> str:
    """The dedupe key of a trigger: rule, asset and state change."""
    change = f"{t.state_from or ''}>{t.state_to}" if t.state_to is not None else "on"
    return f"{t.rule}:{t.asset or '*'}:{change}"


class Alerts:
    """Writes deduplicated alert events to the store's outbox; chat adapters deliver them."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.cooldown = timedelta(minutes=settings.scheduler.alert_cooldown_minutes)

    # ── triggers and proposals ─────────────────────────────────────────────────────────────

    def triggers(self, triggers: Iterable[Trigger], proposal: Proposal | None, at: datetime, *,
                 unseen_assets: Iterable[str] = (), snapshot_id: str | None = None,
                 warnings: Iterable[str] = ()) -> list[int]:
        """Raise the triggers not raised yet (one alert for all of them); returns outbox ids.

        `unseen_assets` were not evaluated this cycle (stale data): their drift alerts stay as
        they were instead of counting as stopped.
        """
        fired = list(triggers)
        unseen = set(unseen_assets)
        with self.store.transaction():
            memory = self.store.get_flag(MEMORY_FLAG) or {}
            raised = {k: dt_from(v) for k, v in (memory.get("raised") or {}).items()
                      if at - dt_from(v) < self.cooldown}
            before = {k: a for k, a in memory.get("active") or []}
            new = [t for t in fired if trigger_key(t) not in raised
                   and (t.state_to is not None or trigger_key(t) not in before)]
            active = {trigger_key(t): t.asset for t in fired if t.state_to is None}
            active.update({k: a for k, a in before.items() if a in unseen and k not in active})
            ids = []
            if new:
                alert_id = self._enqueue_triggers(new, fired, proposal, at, snapshot_id, warnings)
                if alert_id is not None:
                    ids.append(alert_id)
                raised.update({trigger_key(t): at for t in new})
            self.store.set_flag(MEMORY_FLAG, {
                "raised": {k: dt_to_str(v) for k, v in sorted(raised.items())},
                "active": sorted([k, a] for k, a in active.items()),
            }, at)
        return ids

    def _enqueue_triggers(self, new: list[Trigger], fired: list[Trigger], proposal: Proposal | None,
                          at: datetime, snapshot_id: str | None, warnings: Iterable[str]) -> int | None:
        others = len(fired) - len(new)
        lines = []
        if proposal is None:
            why = next(iter(warnings), None)
            lines.append("No order proposed" + (f": {why}." if why else "."))
        if others > 0:
            lines.append(f"({others} other rule(s) still active from earlier alerts.)")
        payload: dict[str, Any] = {
            "triggers": [{**trigger_to_dict(t), "key": trigger_key(t)} for t in new],
            "proposal_id": proposal.id if proposal else None,
            "snapshot_id": snapshot_id,
            "strategy": self.settings.strategy.name,
            "still_active": others,
        }
        if lines:
            payload["text"] = "\n".join(lines)
        keys = sorted(trigger_key(t) for t in new)
        key = f"proposal:{proposal.id}" if proposal else "triggers:" + "|".join(keys)
        return self.store.enqueue_alert(key, "proposal" if proposal else "trigger", payload, at,
                                        self.cooldown)

    # ── feeds and data freshness ───────────────────────────────────────────────────────────

    def health(self, statuses: Iterable[FeedStatus], at: datetime, *, down_kind: str = "feed_down",
               up_kind: str = "feed_up") -> list[int]:
        """One alert when a feed goes down, one when it is back; a feed never seen is taken as up."""
        ids = []
        with self.store.transaction():
            health: dict[str, Any] = self.store.get_flag(HEALTH_FLAG) or {}
            for s in statuses:
                prior = health.get(s.name)
                before = prior or {"ok": True}
                if prior is not None and bool(prior.get("ok")) == s.ok:
                    health[s.name] = {**prior, "detail": s.detail, "seen": dt_to_str(at)}
                    continue
                health[s.name] = {"ok": s.ok, "since": dt_to_str(at), "detail": s.detail,
                                  "seen": dt_to_str(at)}
                if prior is None and s.ok:
                    continue  # first sight of a healthy feed: nothing to tell
                payload = self._health_payload(s, before, at, down_kind)
                kind = up_kind if s.ok else down_kind
                key = f"feed:{s.name}:{'up' if s.ok else 'down'}"
                alert_id = self.store.enqueue_alert(key, kind, payload, at, self.cooldown)
                if alert_id is not None:
                    ids.append(alert_id)
            self.store.set_flag(HEALTH_FLAG, health, at)
        return ids

    @staticmethod
    def _health_payload(s: FeedStatus, before: Mapping[str, Any], at: datetime,
                        down_kind: str) -> dict[str, Any]:
        what = "Market data" if down_kind == "stale" else f"The {s.name.replace('_', ' ')} feed"
        if s.ok:
            since = before.get("since")
            lasted = ""
            if since:
                minutes = int((at - dt_from(since)).total_seconds() // 60)
                lasted = f" after {minutes} min" if minutes < 120 else f" after {minutes // 60} h"
            text = f"{what} is back{lasted}."
            title = "Market data fresh again" if down_kind == "stale" else "Market feed back"
        else:
            verb = "is stale" if down_kind == "stale" else "is down"
            text = (f"{what} {verb}: {s.detail or 'no answer'}. No proposal is made from missing or "
                    "stale data; I will say when it is back.")
            title = "Stale market data" if down_kind == "stale" else "Market feed down"
        return {"feed": s.name, "ok": s.ok, "detail": s.detail, "text": text, "title": title,
                "down_since": before.get("since") if s.ok else dt_to_str(at)}

    def feeds_down(self) -> dict[str, dict[str, Any]]:
        """The feeds currently known down: name → {since, detail}."""
        health = self.store.get_flag(HEALTH_FLAG) or {}
        return {name: h for name, h in health.items() if not h.get("ok", True)}

    # ── the daily digest ───────────────────────────────────────────────────────────────────

    def digest(self, text: str, table: Mapping[str, Any] | None, at: datetime) -> int | None:
        """The day's summary, at most once a day."""
        payload: dict[str, Any] = {"text": text}
        if table:
            payload["table"] = dict(table)
        return self.store.enqueue_alert(f"digest:{at.date().isoformat()}", "digest", payload, at,
                                        timedelta(hours=20))
