"""The operational records: audit log, job runs, heartbeats, flags, market metadata, and pruning."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core.store import Store
from tests.core.store import MIN, T0, make_proposal


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
