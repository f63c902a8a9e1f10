"""Snapshots, the signals computed from them, and rule states between cycles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from core.store import Store
from tests.core.store import MIN, T0


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
