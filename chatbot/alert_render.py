"""Alerts out of the outbox: rendering, muting, and the pump that drains them to every chat.

An alert says what fired, why (values against thresholds), and what Premia proposes. One that
carries a proposal id shows the proposal as it stands *when it is delivered*: an alert held back
by an outage never offers buttons for a proposal that has expired or been decided meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from chatbot import format as fmt
from chatbot.delivery import Notifier, drain_outbox
from chatbot.replies import Reply, Table
from core.config import Settings
from core.store import Store

log = logging.getLogger(__name__)
LATE = timedelta(minutes=5)
TITLES = {
    "trigger": "Rule fired",
    "proposal": "New proposal",
    "feed_down": "Market feed down",
    "feed_up": "Market feed back",
    "feed_recovered": "Market feed back",
    "stale": "Stale market data",
    "digest": "Daily digest",
    "execution": "Execution report",
    "startup": "Premia started",
}
_MAX_VALUES = 8


def _values_line(values: Mapping[str, Any]) -> str:
    pairs = [f"{k.replace('_', ' ')} {v}" for k, v in list(values.items())[:_MAX_VALUES]]
    return "  ↳ " + ", ".join(pairs) if pairs else ""


def _trigger_lines(triggers: list[Mapping[str, Any]]) -> list[str]:
    lines = []
    for t in triggers[:6]:
        head = t.get("explanation") or t.get("why") or t.get("rule", "a rule fired")
        change = ""
        if t.get("state_from") and t.get("state_to"):
            change = f" [{t['state_from']} → {t['state_to']}]"
        lines.append(f"• {head}{change}")
        values = t.get("values") or {}
        if isinstance(values, Mapping) and values:
            lines.append(_values_line(values))
    if len(triggers) > 6:
        lines.append(f"• and {len(triggers) - 6} more")
    return lines


def _triggers_of(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = payload.get("triggers")
    if isinstance(raw, list):
        return [t for t in raw if isinstance(t, Mapping)]
    trigger = payload.get("trigger")
    if isinstance(trigger, Mapping):
        return [trigger]
    if payload.get("explanation") or payload.get("rule"):
        return [payload]
    return []


class AlertRenderer:
    """Callable used by the outbox drain: one stored alert → one Reply."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    def __call__(self, alert: Mapping[str, Any]) -> Reply:
        payload = alert.get("payload") or {}
        if not isinstance(payload, Mapping):
            payload = {"text": str(payload)}
        kind = str(alert.get("kind") or payload.get("kind") or "alert")
        now = self.clock()
        title = str(payload.get("title") or TITLES.get(kind) or kind.replace("_", " ").capitalize())
        lines: list[str] = []
        text = payload.get("text") or payload.get("message") or payload.get("summary")
        if text:
            lines.append(str(text))
        lines.extend(_trigger_lines(_triggers_of(payload)))
        tables: tuple[Table, ...] = ()
        rows = payload.get("table")
        if isinstance(rows, Mapping) and rows.get("headers") and rows.get("rows"):
            body = tuple(tuple(map(str, r)) for r in rows["rows"])
            tables = (Table(tuple(map(str, rows["headers"])), body),)
        created = alert.get("created_at")
        if isinstance(created, datetime) and now - created > LATE:
            lines.append(f"(raised {fmt.ago(created, now)}, at {fmt.clock(created, now)}; delivery was late)")
        reply = Reply(text="\n".join(lines), title=title, tables=tables, level="alert",
                      subject=str(alert.get("key") or alert.get("id") or ""))
        pid = payload.get("proposal_id")
        if not pid and isinstance(payload.get("proposal"), Mapping):
            pid = payload["proposal"].get("id")
        return self._with_proposal(reply, str(pid), now) if pid else reply

    def _with_proposal(self, reply: Reply, pid: str, now: datetime) -> Reply:
        sp = self.store.get_proposal(pid)
        if sp is None:
            return reply
        status = "expired" if sp.status == "proposed" and sp.proposal.expires_at <= now else sp.status
        shown = fmt.proposal_reply(sp.proposal, self.settings.quote, now, status=status)
        if status != "proposed":
            note = f"Proposal {pid} is already {fmt.status_word(status)}: /plan for the current one."
            return Reply(text="\n".join(x for x in (reply.text, note) if x), title=reply.title,
                         tables=reply.tables, level="alert", subject=pid)
        # What fired, then what Premia proposes: the proposal's own "why" would repeat the triggers.
        expires = f"Proposal {pid} · expires in {fmt.span(sp.proposal.expires_at - now)}"
        body = [x for x in (reply.text, expires) if x]
        body += [line for line in fmt.proposal_lines(sp.proposal, self.settings.quote)
                 if not line.startswith(("Why:", "• "))]
        return Reply(text="\n".join(body), title=reply.title, tables=reply.tables + shown.tables,
                     buttons=shown.buttons, level="alert", subject=pid, extra=shown.extra)


# ── muting and the pump ─────────────────────────────────────────────────────────────────────


def alert_rules(alert: Mapping[str, Any]) -> set[str]:
    """The rule names an alert speaks for ("volatility_spike", …), from its payload or key."""
    payload = alert.get("payload") or {}
    rules = set()
    if isinstance(payload, Mapping):
        for t in _triggers_of(payload):
            if t.get("rule"):
                rules.add(str(t["rule"]).partition(":")[0])
        if payload.get("rule"):
            rules.add(str(payload["rule"]).partition(":")[0])
    return rules


def muted_until(store: Store, rule: str) -> datetime | None:
    flag = store.get_flag(f"mute:{rule}")
    try:
        return datetime.fromisoformat(str(flag["until"])) if flag and flag.get("until") else None
    except ValueError:
        return None


class MutingOutbox:
    """The outbox as the drain sees it, minus alerts whose rules are all muted right now.

    A muted alert is marked delivered on that transport (with a log line), so it is dropped
    rather than delivered late when the mute ends; /mute says "silence", not "later".
    """

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def _muted(self, alert: Mapping[str, Any], now: datetime) -> bool:
        until = muted_until(self.store, "all")
        if until is not None and until > now:
            return True
        rules = alert_rules(alert)
        return bool(rules) and all((u := muted_until(self.store, r)) is not None and u > now for r in rules)

    def pending_alerts(self, transport: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        out = []
        for alert in self.store.pending_alerts(transport, now, limit):
            if self._muted(alert, now):
                log.info("outbox: alert %s (%s) muted; not sent to %s", alert["id"], alert.get("kind"),
                         transport)
                self.store.mark_delivered(alert["id"], transport, now)
            else:
                out.append(alert)
        return out

    def subscribers(self, transport: str) -> list[str]:
        return self.store.subscribers(transport)

    def mark_delivered(self, alert_id: Any, transport: str, at: datetime) -> None:
        self.store.mark_delivered(alert_id, transport, at)

    def mark_failed(self, alert_id: Any, transport: str, error: str, retry_at: datetime) -> None:
        self.store.mark_failed(alert_id, transport, error, retry_at)

    def mark_chat_delivered(self, alert_id: Any, transport: str, chat_id: str, at: datetime) -> None:
        self.store.mark_chat_delivered(alert_id, transport, chat_id, at)

    def delivered_chats(self, alert_id: Any, transport: str) -> set[str]:
        return self.store.delivered_chats(alert_id, transport)


class AlertPump:
    """Drains the outbox when poked (right after an engine cycle) and every `interval_s` anyway."""

    def __init__(self, store: Store, notifiers: Sequence[Notifier], render: Callable[[Mapping], Reply],
                 clock: Callable[[], datetime], interval_s: float = 5.0) -> None:
        self.outbox = MutingOutbox(store, clock)
        self.notifiers = notifiers  # the live list: adapters join it once connected
        self.render = render
        self.clock = clock
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def poke(self) -> None:
        self._wake.set()

    async def drain_once(self) -> int:
        async with self._lock:  # a poke during a drain waits for it rather than sending twice
            return await drain_outbox(self.outbox, list(self.notifiers), self.render, self.clock)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self.drain_once()
            except Exception:
                log.exception("outbox: drain failed; retrying in %.0f s", self.interval_s)
