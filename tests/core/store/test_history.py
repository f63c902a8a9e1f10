"""Market history: funding, closes, fear & greed and OHLCV upserts, ranges, and coverage."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from core.store import Store
from tests.core.store import MIN, T0


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
