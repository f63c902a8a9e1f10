"""Proposals with compare-and-set status changes, their orders, and the audit log.

A proposal executes at most once: every status change is an `UPDATE … WHERE status IN (…)`
inside a `BEGIN IMMEDIATE` transaction that also writes the audit row, and an order's client
order id can be recorded only once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.codec import (
    dt_from,
    dt_to_str,
    json_dumps,
    json_loads,
    opt_dec_from,
    opt_dec_to_str,
    proposal_from_dict,
    proposal_to_dict,
)
from core.errors import StoreError
from core.models import Proposal
from core.store_base import StoreBase

PROPOSAL_STATUSES = frozenset(
    {
        "proposed",
        "approved",
        "executing",
        "executed",
        "partially_executed",
        "failed",
        "rejected",
        "expired",
        "superseded",
    }
)
# A person's decision: these record who decided and from where (later steps keep it).
DECISIONS = frozenset({"approved", "rejected"})
IN_FLIGHT_ORDER_STATUSES = ("submitted", "pending", "open", "partially_filled")


@dataclass(frozen=True, slots=True)
class StoredProposal:
    """A proposal as stored, with its current status and who last decided on it."""

    proposal: Proposal
    status: str
    updated_at: datetime
    decided_by: str | None
    decided_via: str | None
    detail: str

    @property
    def id(self) -> str:
        return self.proposal.id


def _statuses(values: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(sorted(set(values)))
    unknown = [s for s in chosen if s not in PROPOSAL_STATUSES]
    if unknown or not chosen:
        raise ValueError(f"unknown proposal status {unknown or chosen}; use {sorted(PROPOSAL_STATUSES)}")
    return chosen


def _stored(row: dict[str, Any]) -> StoredProposal:
    return StoredProposal(
        proposal=proposal_from_dict(json_loads(row["payload"])),
        status=row["status"],
        updated_at=dt_from(row["updated_at"]),
        decided_by=row["decided_by"],
        decided_via=row["decided_via"],
        detail=row["detail"] or "",
    )


def _order(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "client_order_id": row["client_order_id"],
        "proposal_id": row["proposal_id"],
        "leg": row["leg"],
        "status": row["status"],
        "payload": json_loads(row["payload"]),
        "exchange_order_id": row["exchange_order_id"],
        "filled": opt_dec_from(row["filled"]),
        "avg_price": opt_dec_from(row["avg_price"]),
        "fee": opt_dec_from(row["fee"]),
        "created_at": dt_from(row["created_at"]),
        "updated_at": dt_from(row["updated_at"]),
    }


class ProposalsMixin(StoreBase):
    """Proposals, orders and the audit log."""

    # ── audit log ──────────────────────────────────────────────────────────────────────────

    def audit(
        self,
        at: datetime,
        actor: str,
        via: str,
        chat_id: str | int | None,
        action: str,
        subject: str,
        detail: str = "",
    ) -> int:
        """Append one audit row (who did what, when, from which chat); returns its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO audit_log (at, actor, via, chat_id, action, subject, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    dt_to_str(at),
                    str(actor),
                    str(via),
                    None if chat_id is None else str(chat_id),
                    action,
                    str(subject),
                    detail,
                ],
            )
            return int(cursor.lastrowid or 0)

    def audit_log(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest audit rows first."""
        rows = self._rows("SELECT * FROM audit_log ORDER BY at DESC, id DESC LIMIT ?", [limit])
        return [{**r, "at": dt_from(r["at"])} for r in rows]

    # ── proposals ──────────────────────────────────────────────────────────────────────────

    def save_proposal(self, p: Proposal, status: str = "proposed") -> None:
        """Store a new proposal (audited); saving the same id twice raises StoreError."""
        (status,) = _statuses([status])
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO proposals (id, created_at, expires_at, strategy, snapshot_id,"
                    " status, payload, updated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
                    [
                        p.id,
                        dt_to_str(p.created_at),
                        dt_to_str(p.expires_at),
                        p.strategy,
                        p.snapshot_id,
                        status,
                        json_dumps(proposal_to_dict(p)),
                        dt_to_str(p.created_at),
                    ],
                )
            except sqlite3.IntegrityError:
                # Re-saving could reset an executed proposal to "proposed": refuse it.
                raise StoreError(f"proposal {p.id} is already stored") from None
            self.audit(p.created_at, "system", "engine", None, f"proposal.{status}", p.id)

    def get_proposal(self, proposal_id: str) -> StoredProposal | None:
        row = self._one("SELECT * FROM proposals WHERE id = ?", [proposal_id])
        return None if row is None else _stored(row)

    def open_proposals(self, now: datetime) -> list[StoredProposal]:
        """Proposals still awaiting a decision and not yet expired, oldest first."""
        rows = self._rows(
            "SELECT * FROM proposals WHERE status = 'proposed' AND expires_at > ? ORDER BY created_at, id",
            [dt_to_str(now)],
        )
        return [_stored(r) for r in rows]

    def recent_proposals(self, limit: int = 10) -> list[StoredProposal]:
        """The newest proposals first, whatever their status."""
        rows = self._rows("SELECT * FROM proposals ORDER BY created_at DESC, id DESC LIMIT ?", [limit])
        return [_stored(r) for r in rows]

    def proposals_with_status(self, statuses: Iterable[str]) -> list[StoredProposal]:
        """Every proposal in one of `statuses`, newest first (however old)."""
        chosen = _statuses(statuses)
        marks = ", ".join("?" for _ in chosen)
        rows = self._rows(f"SELECT * FROM proposals WHERE status IN ({marks})"
                          " ORDER BY created_at DESC, id DESC", list(chosen))
        return [_stored(r) for r in rows]

    def transition(
        self,
        proposal_id: str,
        expected: set[str] | frozenset[str] | str,
        to: str,
        at: datetime,
        actor: str,
        via: str,
        detail: str = "",
        chat_id: str | int | None = None,
    ) -> bool:
        """Compare-and-set the status and audit it in one transaction; False if not `expected`."""
        allowed = _statuses([expected] if isinstance(expected, str) else expected)
        (to,) = _statuses([to])
        with self._write() as db:
            row = db.execute("SELECT status FROM proposals WHERE id = ?", [proposal_id]).fetchone()
            if row is None or row[0] not in allowed:
                return False
            marks = ", ".join("?" for _ in allowed)
            decided = ", decided_by = ?, decided_via = ?" if to in DECISIONS else ""
            params: list[Any] = [to, dt_to_str(at), detail]
            if to in DECISIONS:
                params += [str(actor), str(via)]
            cursor = db.execute(
                f"UPDATE proposals SET status = ?, updated_at = ?, detail = ?{decided}"
                f" WHERE id = ? AND status IN ({marks})",
                [*params, proposal_id, *allowed],
            )
            if cursor.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; kept as a guard
                return False
            note = f"{row[0]} → {to}" + (f": {detail}" if detail else "")
            self.audit(at, actor, via, chat_id, f"proposal.{to}", proposal_id, note)
        return True

    def expire_proposals(self, now: datetime) -> list[str]:
        """Move every overdue "proposed" proposal to "expired"; returns their ids."""
        with self._write() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM proposals WHERE status = 'proposed' AND expires_at <= ?",
                    [dt_to_str(now)],
                ).fetchall()
            ]
            for pid in ids:
                self.transition(pid, "proposed", "expired", now, "system", "scheduler", "timed out")
        return ids

    def supersede_open(self, except_id: str | None, at: datetime) -> list[str]:
        """Mark every other "proposed" proposal "superseded" (a newer one replaces them)."""
        with self._write() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM proposals WHERE status = 'proposed' AND id IS NOT ?",
                    [except_id],
                ).fetchall()
            ]
            for pid in ids:
                detail = f"replaced by {except_id}" if except_id else "replaced"
                self.transition(pid, "proposed", "superseded", at, "system", "engine", detail)
        return ids

    # ── orders ─────────────────────────────────────────────────────────────────────────────

    def record_order(
        self,
        proposal_id: str,
        leg: int,
        client_order_id: str,
        payload: dict[str, Any],
        status: str,
        at: datetime,
    ) -> bool:
        """Record an order before it is sent; False if this client order id already exists."""
        with self._write() as db:
            try:
                cursor = db.execute(
                    "INSERT INTO orders (client_order_id, proposal_id, leg, status, payload,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (client_order_id) DO NOTHING",
                    [
                        client_order_id,
                        proposal_id,
                        int(leg),
                        status,
                        json_dumps(payload),
                        dt_to_str(at),
                        dt_to_str(at),
                    ],
                )
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"order {client_order_id} names proposal {proposal_id}, which is not stored;"
                    " save the proposal first"
                ) from None
            return cursor.rowcount == 1

    def update_order(
        self,
        client_order_id: str,
        status: str,
        at: datetime,
        exchange_order_id: str | None = None,
        filled: Decimal | None = None,
        avg_price: Decimal | None = None,
        fee: Decimal | None = None,
        payload_patch: dict[str, Any] | None = None,
    ) -> bool:
        """Set an order's status and any given fields (None keeps the old value); False if unknown."""
        with self._write() as db:
            row = db.execute(
                "SELECT payload FROM orders WHERE client_order_id = ?", [client_order_id]
            ).fetchone()
            if row is None:
                return False
            payload = {**json_loads(row[0]), **(payload_patch or {})}
            db.execute(
                "UPDATE orders SET status = ?, updated_at = ?, payload = ?,"
                " exchange_order_id = COALESCE(?, exchange_order_id),"
                " filled = COALESCE(?, filled), avg_price = COALESCE(?, avg_price),"
                " fee = COALESCE(?, fee) WHERE client_order_id = ?",
                [
                    status,
                    dt_to_str(at),
                    json_dumps(payload),
                    exchange_order_id,
                    opt_dec_to_str(filled),
                    opt_dec_to_str(avg_price),
                    opt_dec_to_str(fee),
                    client_order_id,
                ],
            )
        return True

    def get_order(self, client_order_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM orders WHERE client_order_id = ?", [client_order_id])
        return None if row is None else _order(row)

    def orders_for(self, proposal_id: str) -> list[dict[str, Any]]:
        """A proposal's orders by leg, then in the order they were recorded."""
        rows = self._rows(
            "SELECT * FROM orders WHERE proposal_id = ? ORDER BY leg, created_at, rowid",
            [proposal_id],
        )
        return [_order(r) for r in rows]

    def orders_in_flight(self) -> list[dict[str, Any]]:
        """Orders that may still be live on an exchange: reconcile these after a restart."""
        marks = ", ".join("?" for _ in IN_FLIGHT_ORDER_STATUSES)
        rows = self._rows(
            f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY created_at, rowid",
            IN_FLIGHT_ORDER_STATUSES,
        )
        return [_order(r) for r in rows]
