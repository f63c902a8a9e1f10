"""Orders of a proposal: one row a client order id, updates that merge, decimals kept as exact text."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from core.store import Store
from tests.core.store import MIN, T0, make_proposal


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
