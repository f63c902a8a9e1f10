"""Migrations: an older file is upgraded keeping its data, and a new file is migrated exactly once."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from core.store import CURRENT_VERSION, Store
from tests.core.store import T0

# The version-1 schema, written out by hand as a released version-1 file would hold it.
V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT);
INSERT INTO schema_version VALUES (1, 'core tables', '2024-01-01T00:00:00+00:00');
CREATE TABLE snapshots (id TEXT PRIMARY KEY, as_of TEXT NOT NULL, source TEXT NOT NULL,
  payload TEXT NOT NULL);
CREATE TABLE signals (id INTEGER PRIMARY KEY, snapshot_id TEXT NOT NULL, as_of TEXT NOT NULL,
  asset TEXT, name TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE rule_states (key TEXT PRIMARY KEY, state TEXT NOT NULL, since TEXT NOT NULL,
  data TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE proposals (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
  strategy TEXT, snapshot_id TEXT, status TEXT NOT NULL, payload TEXT NOT NULL,
  updated_at TEXT NOT NULL, decided_by TEXT, decided_via TEXT, detail TEXT DEFAULT '');
CREATE TABLE orders (client_order_id TEXT PRIMARY KEY,
  proposal_id TEXT NOT NULL REFERENCES proposals(id), leg INTEGER NOT NULL,
  status TEXT NOT NULL, payload TEXT NOT NULL, exchange_order_id TEXT, filled TEXT,
  avg_price TEXT, fee TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
  via TEXT NOT NULL, chat_id TEXT, action TEXT NOT NULL, subject TEXT NOT NULL,
  detail TEXT NOT NULL);
CREATE TABLE flags (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE job_runs (job TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL,
  outcome TEXT NOT NULL, detail TEXT NOT NULL, runs INTEGER NOT NULL);
CREATE TABLE heartbeats (name TEXT PRIMARY KEY, at TEXT NOT NULL);
"""


def test_a_version_1_file_is_migrated_to_the_current_version_keeping_its_data(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.executescript(V1_SCHEMA)
    raw.execute(
        "INSERT INTO rule_states VALUES ('funding_regime:BTC', 'high',"
        " '2024-02-14T00:00:00.000000+00:00', '{\"prints\":42}', '2024-02-20T00:00:00.000000+00:00')"
    )
    raw.execute(
        "INSERT INTO flags VALUES ('paused', '{\"by\":\"alice\"}', '2024-02-20T00:00:00.000000+00:00')"
    )
    raw.commit()
    raw.close()

    with Store.open(db_path) as s:
        assert s.schema_version() == CURRENT_VERSION
        assert s.get_rule_states() == {
            "funding_regime:BTC": {
                "state": "high",
                "since": datetime(2024, 2, 14, tzinfo=UTC),
                "data": {"prints": 42},
            }
        }
        assert s.get_flag("paused") == {"by": "alice"}
        # Tables from later versions work on the upgraded file.
        assert s.enqueue_alert("k", "feed_dead", {}, T0, timedelta(hours=1)) is not None
        assert s.upsert_closes([("BTC", date(2024, 3, 1), Decimal("61000.5"))]) == 1

    raw = sqlite3.connect(db_path)
    versions = [r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version")]
    raw.close()
    assert versions == list(range(1, CURRENT_VERSION + 1))


def open_at_once(db_path: Path, openers: int = 4) -> list[BaseException]:
    """Open `db_path` from several connections released together; the errors they met."""
    start = threading.Barrier(openers)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Store.open(db_path).close()
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_processes_opening_a_new_file_at_once_migrate_it_exactly_once(tmp_path: Path) -> None:
    # Switching a new file to WAL is where racing openers used to see "database is locked"
    # (about one race in fifteen); several fresh files make that all but certain to show.
    for attempt in range(20):
        db_path = tmp_path / f"race{attempt}.db"
        assert open_at_once(db_path) == []
        raw = sqlite3.connect(db_path)
        assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == CURRENT_VERSION
        raw.close()
