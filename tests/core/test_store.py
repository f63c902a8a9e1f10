"""The SQLite store: every table round-trips, transitions are compare-and-set, files migrate."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings

from core.errors import StoreError
from core.models import Order, Proposal, Trigger
from core.store import CURRENT_VERSION, Store
from tests.core.test_codec import proposals

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def make_proposal(pid: str = "P-1", created_at: datetime = T0, ttl: timedelta = 15 * MIN) -> Proposal:
    return Proposal(
        id=pid,
        created_at=created_at,
        expires_at=created_at + ttl,
        strategy="balanced-aggression",
        triggers=(
            Trigger(
                rule="drift",
                asset="BTC",
                explanation="BTC is 47.2% against a 40% target (band ±5)",
                values={"weight": "0.472", "target": "0.40"},
                state_from="inside",
                state_to="above",
            ),
        ),
        orders=(
            Order(
                market="spot",
                symbol="BTC/USDT",
                asset="BTC",
                side="sell",
                amount=Decimal("0.14400"),
                notional=Decimal("7200.00"),
                limit_price=Decimal("49975.0"),
                reason="trim BTC to target",
                est_fee=Decimal("7.2"),
            ),
        ),
        weights_before={"BTC": Decimal("0.472"), "USDT": Decimal("0.528")},
        weights_after={"BTC": Decimal("0.400"), "USDT": Decimal("0.600")},
        net_futures_exposure_before=Decimal("0"),
        net_futures_exposure_after=Decimal("0"),
        value=Decimal("100000.00"),
        est_fees=Decimal("7.2"),
        snapshot_id="S-0123456789abcdef",
        prices={"BTC": Decimal("50000.10")},
    )


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.memory()
    yield s
    s.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "premia.db"


# ── opening, pragmas, errors ────────────────────────────────────────────────────────────────


def test_a_file_store_creates_its_folder_and_runs_in_wal_mode(db_path: Path) -> None:
    with Store.open(db_path) as s:
        assert db_path.is_file()
        assert s.journal_mode() == "wal"
        assert s.schema_version() == CURRENT_VERSION
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persists in the file
    raw.close()


def test_foreign_keys_are_enforced_so_an_order_needs_its_proposal(store: Store) -> None:
    with pytest.raises(StoreError, match="save the proposal first"):
        store.record_order("P-missing", 0, "c-1", {}, "submitted", T0)


def test_a_file_that_is_not_sqlite_is_refused_with_its_path_and_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "premia.db"
    bad.write_bytes(b"this is a CSV export, not a database\n" * 200)
    with pytest.raises(StoreError) as info:
        Store.open(bad)
    assert str(bad) in str(info.value)
    assert "move it aside" in str(info.value)


def test_a_directory_is_refused_as_a_store_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store.open(tmp_path)


def test_a_file_from_a_newer_premia_is_refused(db_path: Path) -> None:
    Store.open(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'x', 'now')")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"schema version 99.*upgrade Premia"):
        Store.open(db_path)


def test_a_closed_store_says_so(db_path: Path) -> None:
    s = Store.open(db_path)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get_flag("paused")


# ── migrations ──────────────────────────────────────────────────────────────────────────────

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


def test_two_processes_opening_a_new_file_at_once_migrate_it_exactly_once(db_path: Path) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Store.open(db_path).close()
        except BaseException as exc:  # reported below, with the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == CURRENT_VERSION
    raw.close()


# ── snapshots, signals, rule states ─────────────────────────────────────────────────────────


def test_snapshots_round_trip_and_the_latest_is_the_newest_by_market_time(store: Store) -> None:
    assert store.latest_snapshot() is None
    late = store.save_snapshot(T0 + MIN, {"price": Decimal("50000.10"), "n": 1})
    early = store.save_snapshot(T0, {"n": 0}, source="replay")
    assert late.startswith("S-") and len(late) == 18 and late != early
    assert store.get_snapshot(late) == {"price": "50000.10", "n": 1}
    assert store.get_snapshot("S-nope") is None
    assert store.latest_snapshot() == (late, T0 + MIN, {"price": "50000.10", "n": 1})


def test_signals_of_the_latest_save_are_returned_and_a_resave_replaces_them(store: Store) -> None:
    assert store.latest_signals() == []
    store.save_signals("S-a", T0, [{"asset": "BTC", "name": "funding_apr", "value": "0.1095"}])
    store.save_signals(
        "S-b",
        T0 + MIN,
        [
            {"asset": "BTC", "name": "funding_apr", "value": "0.12"},
            {"asset": None, "name": "fear_greed", "value": "22"},
        ],
    )
    store.save_signals("S-b", T0 + MIN, [{"asset": "ETH", "name": "basis", "value": "0.07"}])
    assert store.latest_signals() == [
        {"asset": "ETH", "name": "basis", "value": "0.07", "snapshot_id": "S-b", "as_of": T0 + MIN}
    ]


def test_rule_states_persist_across_close_and_reopen(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.put_rule_states(
            {
                "funding_regime:BTC": {"state": "high", "since": T0 - timedelta(days=14)},
                "fear_greed:*": {"state": "fear", "data": {"value": 21}},
            },
            at=T0,
        )
        s.put_rule_states({"funding_regime:BTC": {"state": "low", "since": T0 + MIN}}, at=T0 + MIN)
    with Store.open(db_path) as s:
        assert s.get_rule_states() == {
            "fear_greed:*": {"state": "fear", "since": T0, "data": {"value": 21}},
            "funding_regime:BTC": {"state": "low", "since": T0 + MIN, "data": {}},
        }


# ── proposals ───────────────────────────────────────────────────────────────────────────────


def test_a_proposal_round_trips_exactly_and_its_creation_is_audited(store: Store) -> None:
    p = make_proposal()
    store.save_proposal(p)
    stored = store.get_proposal("P-1")
    assert stored is not None
    assert stored.proposal == p
    assert str(stored.proposal.orders[0].amount) == "0.14400"
    assert (stored.status, stored.updated_at, stored.decided_by, stored.detail) == (
        "proposed",
        T0,
        None,
        "",
    )
    assert store.get_proposal("P-2") is None
    [row] = store.audit_log()
    assert (row["action"], row["subject"], row["at"]) == ("proposal.proposed", "P-1", T0)


@settings(max_examples=30, deadline=None)
@given(proposals)
def test_any_proposal_comes_back_from_the_store_as_it_went_in(p: Proposal) -> None:
    with Store.memory() as s:
        s.save_proposal(p)
        stored = s.get_proposal(p.id)
    assert stored is not None and stored.proposal == p
    assert [str(o.amount) for o in stored.proposal.orders] == [str(o.amount) for o in p.orders]


def test_saving_the_same_proposal_twice_is_refused(store: Store) -> None:
    store.save_proposal(make_proposal())
    store.transition("P-1", "proposed", "executed", T0, "engine", "engine")
    with pytest.raises(StoreError, match="already stored"):
        store.save_proposal(make_proposal())
    assert store.get_proposal("P-1").status == "executed"


def test_second_approval_of_the_same_proposal_loses_the_compare_and_set(store: Store) -> None:
    store.save_proposal(make_proposal())
    assert store.transition("P-1", "proposed", "approved", T0 + MIN, "alice", "telegram", chat_id=42)
    assert not store.transition("P-1", "proposed", "approved", T0 + MIN, "bob", "discord")
    stored = store.get_proposal("P-1")
    assert (stored.status, stored.decided_by, stored.decided_via) == ("approved", "alice", "telegram")
    approvals = [r for r in store.audit_log() if r["action"] == "proposal.approved"]
    assert [(r["actor"], r["chat_id"], r["detail"]) for r in approvals] == [
        ("alice", "42", "proposed → approved")
    ]


def test_concurrent_approvals_from_two_connections_let_exactly_one_win(db_path: Path) -> None:
    setup = Store.open(db_path)
    ids = [f"P-{i}" for i in range(20)]
    for pid in ids:
        setup.save_proposal(make_proposal(pid))
    stores = [setup, Store.open(db_path)]
    wins: list[list[str]] = [[], []]

    errors: list[BaseException] = []

    def approve(n: int, pid: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            if stores[n].transition(pid, {"proposed"}, "approved", T0, f"user{n}", "telegram"):
                wins[n].append(pid)
        except BaseException as exc:  # a "database is locked" would be a failure too
            errors.append(exc)

    for pid in ids:
        start = threading.Barrier(2)
        threads = [threading.Thread(target=approve, args=(n, pid, start)) for n in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert sorted(wins[0] + wins[1]) == sorted(ids)  # each proposal approved exactly once
    audit = [r for r in setup.audit_log(limit=500) if r["action"] == "proposal.approved"]
    assert sorted(r["subject"] for r in audit) == sorted(ids)
    for s in stores:
        s.close()


def test_a_transition_from_the_wrong_status_or_of_an_unknown_id_returns_false(store: Store) -> None:
    store.save_proposal(make_proposal())
    assert not store.transition("P-9", "proposed", "approved", T0, "alice", "telegram")
    assert not store.transition("P-1", {"approved", "executing"}, "executed", T0, "e", "engine")
    with pytest.raises(ValueError, match="unknown proposal status"):
        store.transition("P-1", "proposed", "aproved", T0, "alice", "telegram")


def test_execution_steps_keep_who_approved_and_record_the_latest_detail(store: Store) -> None:
    store.save_proposal(make_proposal())
    store.transition("P-1", "proposed", "approved", T0, "alice", "telegram")
    store.transition("P-1", "approved", "executing", T0 + MIN, "system", "engine")
    store.transition(
        "P-1", {"executing"}, "partially_executed", T0 + 2 * MIN, "system", "engine", "leg 1 rejected"
    )
    stored = store.get_proposal("P-1")
    assert (stored.status, stored.updated_at, stored.decided_by, stored.detail) == (
        "partially_executed",
        T0 + 2 * MIN,
        "alice",
        "leg 1 rejected",
    )
    assert store.audit_log(limit=1)[0]["detail"] == "executing → partially_executed: leg 1 rejected"


def test_open_proposals_are_the_undecided_unexpired_ones(store: Store) -> None:
    store.save_proposal(make_proposal("P-old", T0 - 30 * MIN))
    store.save_proposal(make_proposal("P-new", T0))
    store.save_proposal(make_proposal("P-done", T0))
    store.transition("P-done", "proposed", "rejected", T0, "alice", "console")
    assert [s.id for s in store.open_proposals(T0 + MIN)] == ["P-new"]
    assert [s.id for s in store.open_proposals(T0 + 15 * MIN)] == []  # expiry is exclusive


def test_expiry_moves_only_overdue_proposals_and_audits_each(store: Store) -> None:
    store.save_proposal(make_proposal("P-old", T0 - 30 * MIN))
    store.save_proposal(make_proposal("P-new", T0))
    assert store.expire_proposals(T0) == ["P-old"]
    assert store.expire_proposals(T0) == []
    assert store.get_proposal("P-old").status == "expired"
    assert store.get_proposal("P-new").status == "proposed"
    assert store.audit_log(limit=1)[0]["action"] == "proposal.expired"


def test_a_new_proposal_supersedes_the_open_ones(store: Store) -> None:
    for pid in ("P-1", "P-2", "P-3"):
        store.save_proposal(make_proposal(pid))
    store.transition("P-2", "proposed", "approved", T0, "alice", "telegram")
    assert store.supersede_open("P-3", T0 + MIN) == ["P-1"]
    assert [store.get_proposal(p).status for p in ("P-1", "P-2", "P-3")] == [
        "superseded",
        "approved",
        "proposed",
    ]


def test_recent_proposals_are_newest_first_and_limited(store: Store) -> None:
    for i in range(5):
        store.save_proposal(make_proposal(f"P-{i}", T0 + i * MIN))
    assert [s.id for s in store.recent_proposals(3)] == ["P-4", "P-3", "P-2"]


# ── orders ──────────────────────────────────────────────────────────────────────────────────


def test_record_order_refuses_a_duplicate_client_order_id(store: Store) -> None:
    store.save_proposal(make_proposal())
    assert store.record_order("P-1", 0, "pm-P-1-0", {"qty": "0.144"}, "submitted", T0)
    assert not store.record_order("P-1", 0, "pm-P-1-0", {"qty": "9"}, "pending", T0 + MIN)
    [order] = store.orders_for("P-1")
    assert (order["payload"], order["status"], order["created_at"]) == (
        {"qty": "0.144"},
        "submitted",
        T0,
    )


def test_order_updates_set_given_fields_keep_the_rest_and_merge_the_payload(store: Store) -> None:
    store.save_proposal(make_proposal())
    store.record_order("P-1", 1, "c-b", {"qty": "1", "side": "sell"}, "submitted", T0)
    store.record_order("P-1", 0, "c-a", {}, "submitted", T0)
    assert store.update_order(
        "c-b", "partially_filled", T0 + MIN, exchange_order_id="X1", filled=Decimal("0.50")
    )
    assert store.update_order(
        "c-b",
        "filled",
        T0 + 2 * MIN,
        filled=Decimal("1.00"),
        avg_price=Decimal("49975.0"),
        fee=Decimal("0.049975"),
        payload_patch={"qty": "1.00", "fills": 2},
    )
    assert not store.update_order("c-zzz", "filled", T0)
    a, b = store.orders_for("P-1")
    assert a["client_order_id"] == "c-a"
    assert b["exchange_order_id"] == "X1"
    assert (b["status"], b["filled"], b["avg_price"], b["fee"]) == (
        "filled",
        Decimal("1.00"),
        Decimal("49975.0"),
        Decimal("0.049975"),
    )
    assert str(b["filled"]) == "1.00"
    assert b["payload"] == {"qty": "1.00", "side": "sell", "fills": 2}
    assert (b["created_at"], b["updated_at"]) == (T0, T0 + 2 * MIN)


def test_orders_in_flight_are_those_an_exchange_may_still_hold(store: Store) -> None:
    store.save_proposal(make_proposal())
    for n, status in enumerate(["submitted", "pending", "open", "partially_filled", "filled", "canceled"]):
        store.record_order("P-1", n, f"c-{n}", {}, status, T0)
    assert [o["status"] for o in store.orders_in_flight()] == [
        "submitted",
        "pending",
        "open",
        "partially_filled",
    ]


def test_decimals_are_stored_as_exact_text(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.save_proposal(make_proposal())
        s.record_order("P-1", 0, "c-1", {}, "submitted", T0)
        s.update_order("c-1", "filled", T0, filled=Decimal("0.00010"))
        s.upsert_funding([("binance", "BTC/USDT:USDT", T0, Decimal("0.000100"))])
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT typeof(filled), filled FROM orders").fetchone() == ("text", "0.00010")
    assert raw.execute("SELECT rate, time FROM funding").fetchone() == (
        "0.000100",
        "2024-03-01T08:00:00.000000+00:00",
    )
    raw.close()


# ── audit log ───────────────────────────────────────────────────────────────────────────────


def test_the_audit_log_is_newest_first_and_keeps_the_chat(store: Store) -> None:
    store.audit(T0, "alice", "telegram", 12345, "pause", "engine", "going on holiday")
    store.audit(T0 + MIN, "bob", "discord", None, "refused", "/approve P-1", "not on allowlist")
    store.audit(T0 - MIN, "system", "scheduler", None, "feed_dead", "binance")
    rows = store.audit_log(limit=2)
    assert [(r["actor"], r["chat_id"], r["at"]) for r in rows] == [
        ("bob", None, T0 + MIN),
        ("alice", "12345", T0),
    ]
    assert rows[1]["detail"] == "going on holiday"


# ── outbox ──────────────────────────────────────────────────────────────────────────────────


def test_an_alert_with_the_same_key_is_dropped_within_the_cooldown_and_queued_after(
    store: Store,
) -> None:
    cool = timedelta(hours=4)
    first = store.enqueue_alert("funding_regime:BTC:high", "rule", {"apr": "0.12"}, T0, cool)
    assert first is not None
    assert store.enqueue_alert("funding_regime:BTC:high", "rule", {}, T0 + 3 * 60 * MIN, cool) is None
    assert store.enqueue_alert("funding_regime:ETH:high", "rule", {}, T0 + MIN, cool) is not None
    again = store.enqueue_alert("funding_regime:BTC:high", "rule", {}, T0 + cool, cool)
    assert again is not None and again > first
    keys = [a["key"] for a in store.pending_alerts("telegram", T0 + cool)]
    assert keys == ["funding_regime:BTC:high", "funding_regime:ETH:high", "funding_regime:BTC:high"]


def test_delivery_state_is_kept_per_transport(store: Store) -> None:
    a1 = store.enqueue_alert("k1", "rule", {"text": "BTC funding high"}, T0, MIN)
    a2 = store.enqueue_alert("k2", "rule", {}, T0 + MIN, MIN)
    store.mark_delivered(a1, "discord", T0 + MIN)
    store.mark_failed(a1, "telegram", "502 Bad Gateway", retry_at=T0 + 5 * MIN)

    assert [a["id"] for a in store.pending_alerts("discord", T0 + 2 * MIN)] == [a2]
    assert [a["id"] for a in store.pending_alerts("telegram", T0 + 2 * MIN)] == [a2]
    due = store.pending_alerts("telegram", T0 + 5 * MIN)
    assert [(a["id"], a["attempts"], a["last_error"]) for a in due] == [
        (a1, 1, "502 Bad Gateway"),
        (a2, 0, None),
    ]
    assert due[0]["payload"] == {"text": "BTC funding high"}
    assert due[0]["created_at"] == T0

    store.mark_delivered(a1, "telegram", T0 + 5 * MIN)
    store.mark_failed(a1, "telegram", "late duplicate failure", retry_at=T0)  # must not undo it
    assert [a["id"] for a in store.pending_alerts("telegram", T0 + 6 * MIN)] == [a2]


def test_failure_text_is_scrubbed_of_telegram_tokens(store: Store) -> None:
    a = store.enqueue_alert("k", "rule", {}, T0, MIN)
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    store.mark_failed(a, "telegram", f"POST https://api.telegram.org/bot{token}/sendMessage", T0)
    [pending] = store.pending_alerts("telegram", T0)
    assert token not in pending["last_error"] and "<token>" in pending["last_error"]


def test_delivery_marks_for_an_unknown_alert_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="not in the outbox"):
        store.mark_delivered(999, "telegram", T0)


def test_pending_alerts_can_skip_old_ones_and_respect_the_limit(store: Store) -> None:
    for i in range(5):
        store.enqueue_alert(f"k{i}", "rule", {}, T0 + i * 60 * MIN, MIN)
    now = T0 + 4 * 60 * MIN
    assert [a["key"] for a in store.pending_alerts("console", now, limit=2)] == ["k0", "k1"]
    recent = store.pending_alerts("console", now, max_age=timedelta(hours=2))
    assert [a["key"] for a in recent] == ["k2", "k3", "k4"]


def test_queued_alerts_survive_a_restart(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.enqueue_alert("feed_dead:binance", "feed", {"since": "08:00"}, T0, timedelta(hours=1))
    with Store.open(db_path) as s:
        [alert] = s.pending_alerts("telegram", T0)
        assert (alert["key"], alert["payload"]) == ("feed_dead:binance", {"since": "08:00"})


def test_subscriptions_are_per_transport_and_idempotent(store: Store) -> None:
    assert store.subscribe("telegram", 111, at=T0)
    assert not store.subscribe("telegram", "111")
    assert store.subscribe("telegram", -1002)
    assert store.subscribe("discord", 111)
    assert store.subscribers("telegram") == ["111", "-1002"]
    assert store.unsubscribe("telegram", 111)
    assert not store.unsubscribe("telegram", 111)
    assert store.subscribers("telegram") == ["-1002"]
    assert store.subscribers("discord") == ["111"]


# ── jobs, heartbeats, flags, markets ────────────────────────────────────────────────────────


def test_job_runs_keep_the_last_run_of_each_job_and_count_them(store: Store) -> None:
    store.record_job_run("poll", T0, T0 + MIN, "ok")
    store.record_job_run("poll", T0 + 5 * MIN, T0 + 6 * MIN, "error", "binance timed out")
    store.record_job_run("fear_greed", T0, T0, "ok")
    assert store.job_runs() == {
        "fear_greed": {"started": T0, "finished": T0, "outcome": "ok", "detail": "", "runs": 1},
        "poll": {
            "started": T0 + 5 * MIN,
            "finished": T0 + 6 * MIN,
            "outcome": "error",
            "detail": "binance timed out",
            "runs": 2,
        },
    }


def test_heartbeats_keep_the_latest_time(store: Store) -> None:
    assert store.last_heartbeat("scheduler") is None
    store.heartbeat("scheduler", T0)
    store.heartbeat("scheduler", T0 + MIN)
    assert store.last_heartbeat("scheduler") == T0 + MIN


def test_flags_are_set_replaced_and_cleared(store: Store) -> None:
    assert store.get_flag("paused") is None
    store.set_flag("paused", {"by": "alice", "until": None}, T0)
    store.set_flag("paused", {"by": "bob"}, T0 + MIN)
    assert store.get_flag("paused") == {"by": "bob"}
    assert store.clear_flag("paused")
    assert not store.clear_flag("paused")
    assert store.get_flag("paused") is None


def test_market_metadata_is_cached_with_its_time(store: Store) -> None:
    markets = {"BTC/USDT:USDT": {"contractSize": 1.0, "precision": {"amount": 0.001}, "info": {}}}
    assert store.load_markets("binanceusdm") is None
    store.save_markets("binanceusdm", markets, T0)
    assert store.load_markets("binanceusdm") == (markets, T0)


# ── paper book and transactions ─────────────────────────────────────────────────────────────


def test_the_paper_book_changes_with_its_proposal_or_not_at_all(store: Store) -> None:
    store.save_proposal(make_proposal())
    book0 = {"balances": {"USDT": "10000"}, "positions": []}
    store.put_paper_book(book0, T0)

    with pytest.raises(RuntimeError), store.transaction():
        assert store.transition("P-1", "proposed", "executed", T0, "system", "paper")
        store.put_paper_book({"balances": {"USDT": "0"}, "positions": []}, T0)
        raise RuntimeError("fill crashed half way")
    assert store.get_proposal("P-1").status == "proposed"
    assert store.get_paper_book() == book0

    with store.transaction():
        store.transition("P-1", "proposed", "executed", T0, "system", "paper")
        store.put_paper_book({"balances": {"USDT": "2800", "BTC": "0.144"}, "positions": []}, T0)
    assert store.get_proposal("P-1").status == "executed"
    assert store.get_paper_book()["balances"] == {"USDT": "2800", "BTC": "0.144"}


def test_a_failed_inner_block_rolls_back_only_itself(store: Store) -> None:
    with store.transaction():
        store.set_flag("outer", {}, T0)
        with pytest.raises(KeyError), store.transaction():
            store.set_flag("inner", {}, T0)
            raise KeyError("boom")
    assert store.get_flag("outer") == {}
    assert store.get_flag("inner") is None


def test_a_transaction_is_visible_to_another_connection_only_after_commit(db_path: Path) -> None:
    with Store.open(db_path) as writer, Store.open(db_path) as reader:
        with writer.transaction():
            writer.set_flag("paused", {"by": "alice"}, T0)
            assert reader.get_flag("paused") is None  # WAL: readers see the last commit
        assert reader.get_flag("paused") == {"by": "alice"}


async def test_many_tasks_can_share_one_store(store: Store) -> None:
    store.save_proposal(make_proposal())

    async def approve(n: int) -> bool:
        await asyncio.sleep(0)
        return store.transition("P-1", "proposed", "approved", T0, f"user{n}", "telegram")

    async def alert(n: int) -> int | None:
        await asyncio.sleep(0)
        return store.enqueue_alert("same-key", "rule", {"n": n}, T0, timedelta(hours=1))

    approvals = await asyncio.gather(*(approve(n) for n in range(10)))
    alerts = await asyncio.gather(*(alert(n) for n in range(10)))
    assert approvals.count(True) == 1
    assert sum(a is not None for a in alerts) == 1


async def test_a_task_cannot_slip_into_another_tasks_open_transaction(store: Store) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        with store.transaction():
            store.set_flag("mine", {}, T0)
            inside.set()
            await release.wait()  # the misuse the guard is there to catch

    task = asyncio.create_task(holder())
    await inside.wait()
    with pytest.raises(StoreError, match="do not await inside"):
        store.set_flag("theirs", {}, T0)
    release.set()
    await task
    assert store.get_flag("mine") == {}
    assert store.get_flag("theirs") is None


# ── history ─────────────────────────────────────────────────────────────────────────────────


def test_funding_upserts_are_idempotent_and_ranges_are_inclusive(store: Store) -> None:
    sym = "BTC/USDT:USDT"
    times = [T0 + timedelta(hours=8 * i) for i in range(4)]
    rows = [("binance", sym, t, Decimal("0.0001")) for t in times]
    assert store.upsert_funding(rows) == 4
    store.upsert_funding([("binance", sym, times[1], Decimal("0.00025"))])  # a corrected print
    store.upsert_funding([("bybit", sym, times[0], Decimal("-0.0001"))])
    assert store.funding_history(sym, times[1], times[2], exchange="binance") == [
        (times[1], Decimal("0.00025")),
        (times[2], Decimal("0.0001")),
    ]
    assert len(store.funding_history(sym, None, None, exchange="binance")) == 4
    assert len(store.funding_history(sym, None, times[0])) == 2  # both exchanges
    assert store.latest_funding_time("binance", sym) == times[3]
    assert store.latest_funding_time("okx", sym) is None


def test_closes_and_fear_greed_round_trip_by_day(store: Store) -> None:
    d = [date(2024, 2, 27) + timedelta(days=i) for i in range(4)]
    store.upsert_closes([("BTC", day, Decimal(f"6{i}000.5")) for i, day in enumerate(d)])
    store.upsert_closes([("BTC", d[0], Decimal("59999.99"))])
    assert store.closes("BTC", d[0], d[1]) == [(d[0], Decimal("59999.99")), (d[1], Decimal("61000.5"))]
    assert store.latest_close_day("BTC") == d[3]
    assert store.latest_close_day("ETH") is None

    store.upsert_fear_greed([(d[0], 22, "Extreme Fear"), (d[1], 50)])
    store.upsert_fear_greed([(d[1], 56)])
    assert store.fear_greed_history(d[0], None) == [(d[0], 22), (d[1], 56)]


def test_ohlcv_round_trips_exactly(store: Store) -> None:
    row = ("binance", "BTC/USDT", "1d", T0, *map(Decimal, ["1.0", "2.50", "0.5", "2", "1e3"]))
    store.upsert_ohlcv([row])
    assert store.ohlcv("binance", "BTC/USDT", "1d", T0, T0) == [row[3:]]


def test_history_coverage_reports_counts_and_ends_of_each_series(store: Store) -> None:
    empty = store.history_coverage()
    assert empty == {"funding": [], "closes": [], "ohlcv": [], "fear_greed": None}
    store.upsert_funding([("binance", "BTC/USDT:USDT", T0 + i * MIN, Decimal(0)) for i in range(3)])
    store.upsert_closes([("ETH", date(2024, 1, 1), Decimal(1)), ("ETH", date(2024, 1, 5), Decimal(2))])
    store.upsert_fear_greed([(date(2024, 1, 2), 40)])
    cov = store.history_coverage()
    assert cov["funding"] == [
        {"exchange": "binance", "symbol": "BTC/USDT:USDT", "count": 3, "first": T0, "last": T0 + 2 * MIN}
    ]
    assert cov["closes"] == [
        {"asset": "ETH", "count": 2, "first": date(2024, 1, 1), "last": date(2024, 1, 5)}
    ]
    assert cov["fear_greed"] == {"count": 1, "first": date(2024, 1, 2), "last": date(2024, 1, 2)}


# ── housekeeping ────────────────────────────────────────────────────────────────────────────


def test_prune_drops_old_operational_rows_but_keeps_what_proposals_need(store: Store) -> None:
    kept = store.save_snapshot(T0 - timedelta(days=40), {"used": True})
    store.save_snapshot(T0 - timedelta(days=40), {"used": False})
    fresh = store.save_snapshot(T0, {})
    store.save_signals(kept, T0 - timedelta(days=40), [{"asset": None, "name": "x", "value": "1"}])
    store.save_proposal(replace(make_proposal(), snapshot_id=kept))
    old_alert = store.enqueue_alert("k", "rule", {}, T0 - timedelta(days=40), MIN)
    store.mark_failed(old_alert, "telegram", "down", T0)
    store.audit(T0 - timedelta(days=400), "alice", "telegram", 1, "pause", "engine")

    assert store.prune(T0 - timedelta(days=30)) == {"signals": 1, "snapshots": 1, "alerts": 1}
    assert store.get_snapshot(kept) == {"used": True}
    assert store.get_snapshot(fresh) == {}
    assert store.pending_alerts("telegram", T0) == []
    assert any(r["action"] == "pause" for r in store.audit_log())
