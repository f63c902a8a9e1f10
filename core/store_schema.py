"""The store's schema as forward migrations, applied in order on open.

Each migration runs in its own `BEGIN IMMEDIATE` transaction and records its version in
`schema_version`, so two processes opening an old file at once migrate it exactly once. Never
edit a released migration: append a new one. The schema was laid down in steps from the start
so that the upgrade path is exercised by the tests (a hand-made version-1 file is upgraded).

Conventions: Decimals are TEXT (exact); datetimes are fixed-width ISO-8601 UTC TEXT, so they
compare correctly as text; JSON documents are TEXT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

from core.errors import StoreError


def _v1_core(db: Database) -> None:
    """Snapshots, signals, rule states, proposals, orders, audit log, flags, jobs, heartbeats."""
    db["snapshots"].create(
        {"id": str, "as_of": str, "source": str, "payload": str},
        pk="id",
        not_null={"as_of", "source", "payload"},
    )
    db["snapshots"].create_index(["as_of"])
    db["signals"].create(
        {"id": int, "snapshot_id": str, "as_of": str, "asset": str, "name": str, "value": str},
        pk="id",
        not_null={"snapshot_id", "as_of", "name", "value"},
    )
    db["signals"].create_index(["as_of"])
    db["signals"].create_index(["snapshot_id"])
    db["rule_states"].create(
        {"key": str, "state": str, "since": str, "data": str, "updated_at": str},
        pk="key",
        not_null={"state", "since", "data", "updated_at"},
    )
    db["proposals"].create(
        {
            "id": str,
            "created_at": str,
            "expires_at": str,
            "strategy": str,
            "snapshot_id": str,
            "status": str,
            "payload": str,
            "updated_at": str,
            "decided_by": str,
            "decided_via": str,
            "detail": str,
        },
        pk="id",
        not_null={"created_at", "expires_at", "status", "payload", "updated_at"},
        defaults={"detail": ""},
    )
    db["proposals"].create_index(["status", "expires_at"])
    db["proposals"].create_index(["created_at"])
    db["orders"].create(
        {
            "client_order_id": str,
            "proposal_id": str,
            "leg": int,
            "status": str,
            "payload": str,
            "exchange_order_id": str,
            "filled": str,
            "avg_price": str,
            "fee": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="client_order_id",
        not_null={"proposal_id", "leg", "status", "payload", "created_at", "updated_at"},
        foreign_keys=[("proposal_id", "proposals", "id")],
    )
    db["orders"].create_index(["proposal_id"])
    db["orders"].create_index(["status"])
    db["audit_log"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "via": str,
            "chat_id": str,
            "action": str,
            "subject": str,
            "detail": str,
        },
        pk="id",
        not_null={"at", "actor", "via", "action", "subject", "detail"},
    )
    db["audit_log"].create_index(["at"])
    db["flags"].create(
        {"name": str, "value": str, "updated_at": str},
        pk="name",
        not_null={"value", "updated_at"},
    )
    db["job_runs"].create(
        {
            "job": str,
            "started": str,
            "finished": str,
            "outcome": str,
            "detail": str,
            "runs": int,
        },
        pk="job",
        not_null={"started", "finished", "outcome", "detail", "runs"},
    )
    db["heartbeats"].create({"name": str, "at": str}, pk="name", not_null={"at"})


def _v2_outbox(db: Database) -> None:
    """Alert outbox with per-transport delivery state, subscriptions, market cache, paper book."""
    db["alerts"].create(
        {"id": int, "key": str, "kind": str, "payload": str, "created_at": str},
        pk="id",
        not_null={"key", "kind", "payload", "created_at"},
    )
    db["alerts"].create_index(["key", "created_at"])
    db["alerts"].create_index(["created_at"])
    db["alert_deliveries"].create(
        {
            "alert_id": int,
            "transport": str,
            "attempts": int,
            "last_error": str,
            "next_attempt_at": str,
            "delivered_at": str,
        },
        pk=("alert_id", "transport"),
        not_null={"alert_id", "transport", "attempts"},
        foreign_keys=[("alert_id", "alerts", "id")],
    )
    db["subscriptions"].create(
        {"transport": str, "chat_id": str, "created_at": str},
        pk=("transport", "chat_id"),
        not_null={"transport", "chat_id"},
    )
    db["markets"].create(
        {"exchange": str, "markets": str, "updated_at": str},
        pk="exchange",
        not_null={"markets", "updated_at"},
    )
    db["paper_book"].create(
        {"id": int, "book": str, "updated_at": str},
        pk="id",
        not_null={"book", "updated_at"},
    )


def _v3_history(db: Database) -> None:
    """Market history for backtests and offline runs: funding, daily closes, OHLCV, Fear & Greed."""
    db["funding"].create(
        {"exchange": str, "symbol": str, "time": str, "rate": str},
        pk=("exchange", "symbol", "time"),
        not_null={"exchange", "symbol", "time", "rate"},
    )
    db["funding"].create_index(["symbol", "time"])
    db["closes"].create(
        {"asset": str, "day": str, "close": str},
        pk=("asset", "day"),
        not_null={"asset", "day", "close"},
    )
    db["ohlcv"].create(
        {
            "exchange": str,
            "symbol": str,
            "timeframe": str,
            "time": str,
            "open": str,
            "high": str,
            "low": str,
            "close": str,
            "volume": str,
        },
        pk=("exchange", "symbol", "timeframe", "time"),
        not_null={"exchange", "symbol", "timeframe", "time", "open", "high", "low", "close", "volume"},
    )
    db["fear_greed"].create(
        {"day": str, "value": int, "label": str},
        pk="day",
        not_null={"value", "label"},
    )


Migration = Callable[[Database], None]

# Version n is MIGRATIONS[n - 1]. Append only.
MIGRATIONS: list[tuple[str, Migration]] = [
    ("core tables", _v1_core),
    ("alert outbox, subscriptions, market cache, paper book", _v2_outbox),
    ("market history", _v3_history),
]
CURRENT_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    """The highest migration applied to this file (0 for a new, empty file)."""
    if not db["schema_version"].exists():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _check_not_newer(version: int, path: str) -> None:
    if version > CURRENT_VERSION:
        raise StoreError(
            f"store {path} has schema version {version}, but this Premia knows versions up to"
            f" {CURRENT_VERSION}; upgrade Premia, or point store_path at another file"
        )


def migrate(db: Database, path: str) -> int:
    """Apply every missing migration in order; refuse a file written by a newer Premia."""
    _check_not_newer(schema_version(db), path)
    conn = db.conn
    for version, (name, step) in enumerate(MIGRATIONS, start=1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read the version inside the write lock: another process may have just migrated.
            current = schema_version(db)
            _check_not_newer(current, path)
            if current < version:
                if current == 0 and version == 1:
                    db["schema_version"].create(
                        {"version": int, "name": str, "applied_at": str}, pk="version"
                    )
                step(db)
                db.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    [version, name, datetime.now(UTC).isoformat(timespec="seconds")],
                )
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise  # the caller explains an unreadable file
            raise StoreError(
                f"migrating store {path} to schema version {version} ({name}) failed: {exc};"
                f" the file stays at version {version - 1}; restore a backup or move it aside"
            ) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return CURRENT_VERSION
