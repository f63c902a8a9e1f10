"""Outbox alert → Reply: what fired, why (values against thresholds), and what Premia proposes.

An alert that carries a proposal id shows the proposal as it stands *when it is delivered*: an
alert held back by an outage never offers buttons for a proposal that has expired or been
decided meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from chatbot import format as fmt
from chatbot.replies import Reply, Table
from core.config import Settings
from core.store import Store

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
