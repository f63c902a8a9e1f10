"""The backtest engine on hand-checkable histories: buy-and-hold, fees, funding, margin, variants."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.backtest import (
    BASELINES,
    STRATEGY,
    BacktestError,
    backtest_reply_data,
    result_json,
    run_backtest,
    variant_strategy,
)
from tests.backtest.helpers import ZERO_COSTS, frame, make_settings

ONE_ASSET = {"BTC": {}}


def spot_only(band: int = 10, costs=ZERO_COSTS, allocation=None):
    """premium-daa's single spot bucket, its premium table and the volatility rule switched off."""
    return make_settings(
        ONE_ASSET,
        {"preset": "premium-daa", "band_pp": band,
         "allocation": allocation or {"spot": 0.5, "stable": 0.5},
         "rules": {"premium_regime": {"enabled": False}, "volatility_spike": {"enabled": False}}},
        costs,
    )


def test_no_rule_firing_reproduces_buy_and_hold_exactly():
    s = spot_only()
    h = frame({"BTC": [100, 110, 105, 120, 115]})
    result = run_backtest(h, s, "premium-daa", None, None, initial_value=D(10_000))
    # Day one buys 50 BTC at 100 with half of 10,000; the ±10 pp band never fires again.
    expected = [D(10_000), D(10_500), D(10_250), D(11_000), D(10_750)]
    for run in result.runs.values():
        assert [v for _, v in run.equity] == expected
    assert result.strategy.rebalances == 1
    assert result.strategy.fees == 0
    assert result.strategy.final_value == D(10_750)
    assert result.strategy.performance.total_return == pytest.approx(0.075)


def test_fees_are_counted_and_paid_from_the_book():
    s = spot_only(costs={**ZERO_COSTS, "spot_fee_bps": 10})
    h = frame({"BTC": [100, 110, 105, 120, 115]})
    run = run_backtest(h, s, "premium-daa", None, None, initial_value=D(10_000), baselines=False).strategy
    assert run.fees == D(5)  # 10 bps of the 5,000 bought on day one
    assert run.equity[0][1] == D(9_995)
    assert run.final_value == D(4_995) + 50 * D(115)
    assert run.traded == D(5_000)


def test_funding_on_a_hedged_position_is_the_sum_of_its_payments():
    s = spot_only(allocation={"spot": 0.1, "hedged": 0.4, "stable": 0.5})
    rates = [0.0001, 0.0002, -0.0001, 0.0003, 0.0001, 0.00005,
             -0.0002, 0.0004, 0.0001, 0.0002, 0.0001, 0.0003]
    prices = [100, 101, 99, 102]
    h = frame({"BTC": prices}, funding={"BTC": rates})
    run = run_backtest(h, s, "premium-daa", None, None, initial_value=D(10_000), baselines=False).strategy
    assert run.rebalances == 1  # day one: 50 BTC spot and a 40 BTC short perpetual
    # The short opens at the end of day one (after the print at its midnight) and receives
    # 40 × mark × rate at every later print: the mark is the day's close.
    later = [D(str(r)) for r in rates[4:]]
    marks = [D(101)] * 3 + [D(99)] * 3 + [D(102)] * 2
    expected = sum((40 * m * r for m, r in zip(marks, later, strict=True)), D(0))
    assert run.funding == expected
    assert run.futures_pnl == -40 * (D(102) - D(100))  # variation margin of the short
    # Delta-neutral but for the 10% core spot: 10 BTC of net exposure.
    assert run.final_value == D(10_000) + 10 * (D(102) - D(100)) + expected


def test_a_losing_short_is_covered_by_a_counted_margin_call_and_balances_stay_positive():
    s = spot_only(allocation={"spot": 0.1, "hedged": 0.8, "stable": 0.1})
    h = frame({"BTC": [100, 130, 170, 200]}, funding={"BTC": [0.0001] * 12})
    result = run_backtest(h, s, "premium-daa", None, None, initial_value=D(10_000))
    hold = result.runs["buy-and-hold"]
    assert hold.margin_calls >= 1
    assert hold.final_value > 0
    assert all(v > 0 for _, v in hold.equity)


def test_the_variants_are_the_preset_allocation_with_the_drift_rule_alone():
    s = make_settings()
    for variant in BASELINES:
        v = variant_strategy(s.strategy, variant)
        assert v.allocation is s.strategy.allocation
        assert v.rules.drift.enabled and not v.rules.volatility_spike.enabled
        assert not v.rules.fear_greed.enabled
    assert variant_strategy(s.strategy, "bands-only").band_pp == s.strategy.band_pp
    assert variant_strategy(s.strategy, STRATEGY) is s.strategy
    with pytest.raises(BacktestError):
        variant_strategy(s.strategy, "yolo")


def test_dates_outside_the_data_are_refused_with_the_range_the_data_covers():
    h = frame({"BTC": [100, 110, 105]})
    with pytest.raises(BacktestError, match="covers 2024-01-01 to 2024-01-03"):
        run_backtest(h, spot_only(), "premium-daa", h.end.replace(year=2030), None)


def test_reply_data_and_json_for_the_chat_command():
    h = frame({"BTC": [100, 110, 105, 120, 115]})
    result = run_backtest(h, spot_only(), "premium-daa", None, None, initial_value=D(10_000))
    rows, curves = backtest_reply_data(result)
    assert [r[1] for r in rows] == ["strategy", "buy-and-hold", "monthly", "bands-only"]
    assert rows[0][0] == "premium-daa" and rows[0][2] == "10,750"
    assert set(curves) == {"premium-daa", "buy-and-hold", "monthly", "bands-only"}
    assert curves["premium-daa"][-1] == (h.end, 10_750.0)
    data = result_json(result)
    assert data["runs"]["strategy"]["final_value"] == "10750.00"
    assert data["runs"]["strategy"]["rebalances"] == 1
