"""Premia's SQLite store: one file, opened with `Store.open(path)` (or `Store.memory()`).

The class is assembled from one mixin per concern, each in its own module:

    store_base       connection, pragmas (WAL, busy timeout, foreign keys), transaction()
    store_schema     forward migrations, applied on open
    store_state      snapshots, signals, rule states, flags, jobs, heartbeats, markets, paper book
    store_proposals  proposals (compare-and-set transitions), orders, audit log
    store_outbox     alert outbox with per-transport delivery state, subscriptions
    store_history    funding, closes, OHLCV, Fear & Greed history

No clock inside: every time comes from the caller. Decimals are stored as exact text and
datetimes as ISO-8601 UTC text. Safe from several asyncio tasks of one thread (never `await`
inside `transaction()`), from threads, and from processes sharing the file.
"""

from __future__ import annotations

from datetime import datetime

from core.codec import dt_to_str
from core.store_base import StoreBase
from core.store_history import HistoryMixin
from core.store_outbox import OutboxMixin
from core.store_proposals import (
    DECISIONS,
    IN_FLIGHT_ORDER_STATUSES,
    PROPOSAL_STATUSES,
    ProposalsMixin,
    StoredProposal,
)
from core.store_schema import CURRENT_VERSION
from core.store_state import StateMixin

__all__ = [
    "CURRENT_VERSION",
    "DECISIONS",
    "IN_FLIGHT_ORDER_STATUSES",
    "PROPOSAL_STATUSES",
    "Store",
    "StoredProposal",
]


class Store(ProposalsMixin, OutboxMixin, StateMixin, HistoryMixin, StoreBase):
    """The one persistence service: see the module docstring for what lives where."""

    def prune(self, before: datetime) -> dict[str, int]:
        """Delete snapshots, signals and alerts (delivered or not) older than `before`.

        Keeps the audit log, proposals, orders and every snapshot a proposal was made from.
        """
        at = dt_to_str(before)
        with self._write() as db:
            deleted = {
                "signals": db.execute("DELETE FROM signals WHERE as_of < ?", [at]).rowcount,
                "snapshots": db.execute(
                    "DELETE FROM snapshots WHERE as_of < ? AND id NOT IN"
                    " (SELECT snapshot_id FROM proposals WHERE snapshot_id IS NOT NULL)",
                    [at],
                ).rowcount,
            }
            db.execute(
                "DELETE FROM alert_deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE created_at < ?)",
                [at],
            )
            deleted["alerts"] = db.execute("DELETE FROM alerts WHERE created_at < ?", [at]).rowcount
        return deleted
