"""The alert outbox: deduplicated alerts, delivery state per transport, and subscriptions.

An alert is written once and delivered by each transport on its own schedule, so a Telegram
outage delays Telegram only, and a restart loses nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from core.codec import dt_from, dt_to_str, json_dumps, json_loads
from core.errors import StoreError
from core.redact import scrub_text
from core.store_base import StoreBase


def _scrub(error: str) -> str:
    """Transport errors can quote request URLs: Telegram's carry the bot token, a configured
    base_url may carry `user:pass@`. Keep neither."""
    return scrub_text(error)[:2000]


class OutboxMixin(StoreBase):
    """Alerts waiting for delivery, and which chats of each transport receive them."""

    def enqueue_alert(
        self, key: str, kind: str, payload: dict[str, Any], at: datetime, cooldown: timedelta
    ) -> int | None:
        """Queue an alert; None (and nothing queued) if the same key was queued within `cooldown`."""
        with self._write() as db:
            recent = db.execute(
                "SELECT 1 FROM alerts WHERE key = ? AND created_at > ? LIMIT 1",
                [key, dt_to_str(at - cooldown)],
            ).fetchone()
            if recent is not None:
                return None
            cursor = db.execute(
                "INSERT INTO alerts (key, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                [key, kind, json_dumps(payload), dt_to_str(at)],
            )
            return int(cursor.lastrowid or 0)

    def pending_alerts(
        self,
        transport: str,
        now: datetime,
        limit: int = 50,
        max_age: timedelta | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts not yet delivered to `transport` whose retry time has come, oldest first.

        `max_age` skips older alerts, e.g. so that a newly enabled transport is not flooded.
        """
        oldest = "" if max_age is None else dt_to_str(now - max_age)
        rows = self._rows(
            "SELECT a.id, a.key, a.kind, a.payload, a.created_at,"
            " COALESCE(d.attempts, 0) AS attempts, d.last_error"
            " FROM alerts a LEFT JOIN alert_deliveries d"
            " ON d.alert_id = a.id AND d.transport = ?"
            " WHERE d.delivered_at IS NULL AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)"
            " AND a.created_at >= ?"
            " ORDER BY a.created_at, a.id LIMIT ?",
            [transport, dt_to_str(now), oldest, limit],
        )
        return [
            {**r, "payload": json_loads(r["payload"]), "created_at": dt_from(r["created_at"])} for r in rows
        ]

    def mark_delivered(self, alert_id: int, transport: str, at: datetime) -> None:
        """Record that `transport` delivered the alert; it is no longer pending there."""
        self._delivery(
            "INSERT INTO alert_deliveries (alert_id, transport, attempts, delivered_at)"
            " VALUES (?, ?, 1, ?) ON CONFLICT (alert_id, transport) DO UPDATE SET"
            " attempts = attempts + 1, delivered_at = excluded.delivered_at,"
            " next_attempt_at = NULL",
            [alert_id, transport, dt_to_str(at)],
            alert_id,
        )

    def mark_chat_delivered(self, alert_id: int, transport: str, chat_id: str, at: datetime) -> None:
        """Record one chat's copy, so a retry after a partial outage skips the chats already told.

        Kept as an `alert_deliveries` row under `transport#chat`, which no transport is named.
        """
        self.mark_delivered(alert_id, f"{transport}#{chat_id}", at)

    def delivered_chats(self, alert_id: int, transport: str) -> set[str]:
        """The chats of `transport` that already have this alert."""
        rows = self._rows(
            "SELECT transport FROM alert_deliveries WHERE alert_id = ? AND transport LIKE ?"
            " AND delivered_at IS NOT NULL",
            [alert_id, f"{transport}#%"],
        )
        return {r["transport"].partition("#")[2] for r in rows}

    def mark_failed(self, alert_id: int, transport: str, error: str, retry_at: datetime) -> None:
        """Record a failed attempt; the alert is pending again at `retry_at`."""
        self._delivery(
            "INSERT INTO alert_deliveries (alert_id, transport, attempts, last_error,"
            " next_attempt_at) VALUES (?, ?, 1, ?, ?) ON CONFLICT (alert_id, transport)"
            " DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error,"
            " next_attempt_at = excluded.next_attempt_at WHERE delivered_at IS NULL",
            [alert_id, transport, _scrub(str(error)), dt_to_str(retry_at)],
            alert_id,
        )

    def _delivery(self, sql: str, params: list[Any], alert_id: int) -> None:
        with self._write() as db:
            try:
                db.execute(sql, params)
            except sqlite3.IntegrityError:
                raise StoreError(f"alert {alert_id} is not in the outbox") from None

    # ── subscriptions ──────────────────────────────────────────────────────────────────────

    def subscribe(self, transport: str, chat_id: str | int, at: datetime | None = None) -> bool:
        """Add a chat to a transport's alert list; False if it was already there."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO subscriptions (transport, chat_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (transport, chat_id) DO NOTHING",
                [transport, str(chat_id), None if at is None else dt_to_str(at)],
            )
            return cursor.rowcount == 1

    def unsubscribe(self, transport: str, chat_id: str | int) -> bool:
        """Remove a chat from a transport's alert list; False if it was not there."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM subscriptions WHERE transport = ? AND chat_id = ?",
                [transport, str(chat_id)],
            )
            return cursor.rowcount == 1

    def subscribers(self, transport: str) -> list[str]:
        """Chat ids subscribed on a transport, in the order they subscribed."""
        rows = self._rows("SELECT chat_id FROM subscriptions WHERE transport = ? ORDER BY rowid", [transport])
        return [r["chat_id"] for r in rows]
