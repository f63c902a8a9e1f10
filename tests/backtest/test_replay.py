"""A history frame replayed as the snapshots the live bot would have seen at each day's close."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

from core.evaluate import check_freshness, evaluate
from core.models import Portfolio
from core.replay import Replay, as_of_for, load_perp_closes, snapshot_for_day
from tests.backtest.helpers import START, frame, make_settings


def test_a_day_is_seen_at_its_close_with_the_prints_settled_by_then():
    rates = [f"0.000{k + 1}" for k in range(9)]  # three days of 8-hourly prints
    h = frame({"BTC": [100, 110, 120], "ETH": [10, 11, 12]}, funding={"BTC": rates})
    s = make_settings()
    snap = snapshot_for_day(h, START + timedelta(days=1), s)
    assert snap.as_of == datetime(2024, 1, 3, tzinfo=UTC) == as_of_for(date(2024, 1, 2))
    btc = snap.assets["BTC"]
    assert btc.spot.price == D(110) and btc.spot.timestamp == snap.as_of
    assert [c.price for c in btc.closes] == [D(100), D(110)]
    perp = btc.perp
    assert perp.symbol == "BTC/USDT:USDT"
    # Prints at 00, 08, 16 of both days and the one settled at the close itself (00:00 of the
    # 3rd); the 08:00 print of the 3rd is in the future.
    assert [p.rate for p in perp.funding_history] == [D(r) for r in rates[:7]]
    assert perp.funding_rate == D(rates[6]) and perp.funding_interval_hours == 8
    assert perp.mark == perp.index == D(110)
    assert snap.assets["ETH"].perp is None  # no ETH funding in this frame: no perpetual
    assert snap.fear_greed.value == 50
    assert not check_freshness(snap, s.staleness).any_spot_stale


def test_a_missing_close_repeats_the_last_one_as_stale_so_no_order_is_proposed():
    h = frame({"BTC": [100, None, 120], "ETH": [10, 11, 12]})
    s = make_settings()
    snap = Replay(h, s).snapshot(START + timedelta(days=1))
    assert snap.assets["BTC"].spot.price == D(100)
    assert snap.assets["BTC"].spot.timestamp == as_of_for(START)
    fresh = check_freshness(snap, s.staleness)
    assert fresh.stale_spot == {"BTC"}
    ev = evaluate(snap, Portfolio({"USDT": D(1000)}), s, {})
    assert ev.triggers and ev.freshness.any_spot_stale  # the planner proposes nothing from it


def test_an_asset_not_listed_yet_is_left_out_and_trading_days_start_when_all_have_closes():
    h = frame({"BTC": [100, 110, 120], "ETH": [None, 11, 12]})
    replay = Replay(h, make_settings())
    assert "ETH" not in replay.snapshot(START).assets
    assert replay.trading_days() == (START + timedelta(days=1), START + timedelta(days=2))


def test_perpetual_marks_come_from_perp_closes_when_given(shared_data):
    closes = load_perp_closes(shared_data, ["BTC"], date(2021, 3, 1), date(2021, 3, 3))
    assert set(closes["BTC"]) == {date(2021, 3, 1), date(2021, 3, 2), date(2021, 3, 3)}
    h = frame({"BTC": [45_000, 48_000, 50_000], "ETH": [1, 1, 1]}, funding={"BTC": [0.0001] * 9},
              start=date(2021, 3, 1))
    snap = Replay(h, make_settings(), closes).snapshot(date(2021, 3, 2))
    assert snap.assets["BTC"].perp.mark == closes["BTC"][date(2021, 3, 2)]
    assert snap.assets["BTC"].perp.index == D(48_000)
