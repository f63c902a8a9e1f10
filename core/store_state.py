"""Operational state: snapshots, signals, rule states, flags, jobs, heartbeats, markets, paper book."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from core.codec import dt_from, dt_to_str, json_dumps, json_loads
from core.store_base import StoreBase


class StateMixin(StoreBase):
    """Everything the engine keeps between cycles, apart from proposals and alerts."""

    # ── snapshots and signals ──────────────────────────────────────────────────────────────

    def save_snapshot(self, as_of: datetime, payload: dict[str, Any], source: str = "poll") -> str:
        """Store a market snapshot document; returns its id ("S-" and 16 hex digits)."""
        snapshot_id = f"S-{secrets.token_hex(8)}"
        with self._write() as db:
            db.execute(
                "INSERT INTO snapshots (id, as_of, source, payload) VALUES (?, ?, ?, ?)",
                [snapshot_id, dt_to_str(as_of), source, json_dumps(payload)],
            )
        return snapshot_id

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT payload FROM snapshots WHERE id = ?", [snapshot_id])
        return None if row is None else json_loads(row["payload"])

    def latest_snapshot(self) -> tuple[str, datetime, dict[str, Any]] | None:
        """(id, as_of, payload) of the newest snapshot by market time."""
        row = self._one("SELECT id, as_of, payload FROM snapshots ORDER BY as_of DESC, rowid DESC LIMIT 1")
        if row is None:
            return None
        return row["id"], dt_from(row["as_of"]), json_loads(row["payload"])

    def save_signals(self, snapshot_id: str, as_of: datetime, rows: list[dict[str, Any]]) -> None:
        """Replace the signals computed from one snapshot: rows of {asset, name, value}."""
        with self._write() as db:
            db.execute("DELETE FROM signals WHERE snapshot_id = ?", [snapshot_id])
            db.conn.executemany(
                "INSERT INTO signals (snapshot_id, as_of, asset, name, value) VALUES (?, ?, ?, ?, ?)",
                [(snapshot_id, dt_to_str(as_of), r.get("asset"), r["name"], str(r["value"])) for r in rows],
            )

    def latest_signals(self) -> list[dict[str, Any]]:
        """The signals of the newest save: {asset, name, value, snapshot_id, as_of} each."""
        with self._read():
            head = self._one("SELECT snapshot_id, as_of FROM signals ORDER BY as_of DESC, id DESC LIMIT 1")
            if head is None:
                return []
            rows = self._rows(
                "SELECT asset, name, value, snapshot_id, as_of FROM signals"
                " WHERE snapshot_id = ? AND as_of = ? ORDER BY id",
                [head["snapshot_id"], head["as_of"]],
            )
        return [{**r, "as_of": dt_from(r["as_of"])} for r in rows]

    # ── rule states (hysteresis survives restarts) ─────────────────────────────────────────

    def get_rule_states(self) -> dict[str, dict[str, Any]]:
        """Every rule's state by key ("funding_regime:BTC"): {state, since, data}."""
        rows = self._rows("SELECT key, state, since, data FROM rule_states ORDER BY key")
        return {
            r["key"]: {"state": r["state"], "since": dt_from(r["since"]), "data": json_loads(r["data"])}
            for r in rows
        }

    def put_rule_states(self, states: dict[str, dict[str, Any]], at: datetime) -> None:
        """Write the given rule states in one transaction; missing `since` means `at`."""
        with self._write() as db:
            for key, st in states.items():
                db.execute(
                    "INSERT INTO rule_states (key, state, since, data, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                    " state = excluded.state, since = excluded.since, data = excluded.data,"
                    " updated_at = excluded.updated_at",
                    [
                        key,
                        str(st["state"]),
                        dt_to_str(st.get("since") or at),
                        json_dumps(st.get("data") or {}),
                        dt_to_str(at),
                    ],
                )

    # ── flags: pause switch, mutes, instance lock ──────────────────────────────────────────

    def get_flag(self, name: str) -> dict[str, Any] | None:
        row = self._one("SELECT value FROM flags WHERE name = ?", [name])
        return None if row is None else json_loads(row["value"])

    def set_flag(self, name: str, value: dict[str, Any], at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO flags (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [name, json_dumps(value), dt_to_str(at)],
            )

    def clear_flag(self, name: str) -> bool:
        """Remove a flag; False if it was not set."""
        with self._write() as db:
            return db.execute("DELETE FROM flags WHERE name = ?", [name]).rowcount == 1

    # ── jobs and heartbeats ────────────────────────────────────────────────────────────────

    def record_job_run(
        self, job: str, started: datetime, finished: datetime, outcome: str, detail: str = ""
    ) -> None:
        """Remember a scheduled job's latest run (and count its runs)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO job_runs (job, started, finished, outcome, detail, runs)"
                " VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (job) DO UPDATE SET"
                " started = excluded.started, finished = excluded.finished,"
                " outcome = excluded.outcome, detail = excluded.detail, runs = runs + 1",
                [job, dt_to_str(started), dt_to_str(finished), outcome, detail],
            )

    def job_runs(self) -> dict[str, dict[str, Any]]:
        """The last run of each job: {started, finished, outcome, detail, runs}."""
        rows = self._rows("SELECT * FROM job_runs ORDER BY job")
        return {
            r["job"]: {
                "started": dt_from(r["started"]),
                "finished": dt_from(r["finished"]),
                "outcome": r["outcome"],
                "detail": r["detail"],
                "runs": r["runs"],
            }
            for r in rows
        }

    def heartbeat(self, name: str, at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO heartbeats (name, at) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET at = excluded.at",
                [name, dt_to_str(at)],
            )

    def last_heartbeat(self, name: str) -> datetime | None:
        row = self._one("SELECT at FROM heartbeats WHERE name = ?", [name])
        return None if row is None else dt_from(row["at"])

    # ── market metadata cache ──────────────────────────────────────────────────────────────

    def save_markets(self, exchange: str, markets: dict[str, Any], at: datetime) -> None:
        """Cache an exchange's market metadata (ccxt `load_markets` output)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO markets (exchange, markets, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (exchange) DO UPDATE SET markets = excluded.markets,"
                " updated_at = excluded.updated_at",
                [exchange, json_dumps(markets), dt_to_str(at)],
            )

    def load_markets(self, exchange: str) -> tuple[dict[str, Any], datetime] | None:
        """(markets, saved_at) or None; the caller decides whether it is too old."""
        row = self._one("SELECT markets, updated_at FROM markets WHERE exchange = ?", [exchange])
        return None if row is None else (json_loads(row["markets"]), dt_from(row["updated_at"]))

    # ── paper book ─────────────────────────────────────────────────────────────────────────

    def get_paper_book(self) -> dict[str, Any] | None:
        """{"balances": {asset: str}, "positions": [...]} or None before the first write."""
        row = self._one("SELECT book FROM paper_book WHERE id = 1")
        return None if row is None else json_loads(row["book"])

    def put_paper_book(self, book: dict[str, Any], at: datetime) -> None:
        """Replace the paper book; call inside `transaction()` with the change that caused it."""
        with self._write() as db:
            db.execute(
                "INSERT INTO paper_book (id, book, updated_at) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET book = excluded.book,"
                " updated_at = excluded.updated_at",
                [json_dumps(book), dt_to_str(at)],
            )
