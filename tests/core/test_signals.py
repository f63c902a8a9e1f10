"""The seeds' formulas, checked against their own worked numbers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.models import Close, FundingPrint, PerpQuote
from core.signals import (
    basis_apr,
    funding_8h_series,
    funding_apr,
    funding_apr_series,
    held,
    perp_premium,
    rate_per_8h,
    realized_vol,
    vol_ratio,
)
from core.strategy_config import Persistence

NOW = datetime(2025, 6, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rate", "hours", "apr"),
    [
        ("0.0001", 8, "0.1095"),
        ("0.0005", 8, "0.5475"),
        ("-0.0001", 8, "-0.1095"),
        ("0.0001", 4, "0.2190"),
        ("0.0001", 1, "0.8760"),
    ],
)
def test_funding_apr_uses_the_symbols_own_interval(rate, hours, apr):
    assert funding_apr(D(rate), D(hours)) == D(apr)


def test_a_4h_rate_restated_per_8h_doubles():
    assert rate_per_8h(D("0.00025"), D(4)) == D("0.0005")


def test_seed_002_basis_50000_spot_51500_future_90_days_is_12_17_pct_a_year():
    apr = basis_apr(D(51500), D(50000), NOW + timedelta(days=90), NOW)
    assert apr.quantize(D("0.0001")) == D("0.1217")


def test_compounded_basis_is_offered_and_is_a_little_higher_than_simple():
    simple = basis_apr(D(51500), D(50000), NOW + timedelta(days=90), NOW)
    compounded = basis_apr(D(51500), D(50000), NOW + timedelta(days=90), NOW, compounded=True)
    assert simple < compounded < simple + D("0.01")


def test_basis_is_suppressed_under_seven_days_to_expiry():
    assert basis_apr(D(50100), D(50000), NOW + timedelta(days=6), NOW) is None
    assert basis_apr(D(50100), D(50000), NOW + timedelta(days=8), NOW) is not None


def test_perp_premium_is_mark_over_index_minus_one():
    assert perp_premium(D(101), D(100)) == D("0.01")
    assert perp_premium(D(2950), D(3000)) < 0


def _closes(returns):
    import math

    price, out = 100.0, []
    for i, r in enumerate([0.0, *returns]):
        price *= math.exp(r)
        out.append(Close(NOW.date() - timedelta(days=len(returns) - i), D(str(price))))
    return out


def test_realized_vol_annualizes_with_a_365_day_year():
    closes = _closes([0.01, -0.01] * 15)
    vol = realized_vol(closes, 30)
    # stdev of ±1% alternating returns (sample) ≈ 0.010170, × √365
    assert abs(float(vol) - 0.0101695 * 365**0.5) < 1e-3


def test_volatility_doubling_over_seven_days_shows_a_ratio_near_two():
    calm, spike = [0.01, -0.01] * 15, [0.02, -0.02] * 3 + [0.02]
    assert D("1.9") < vol_ratio(_closes(calm + spike)) < D("2.3")
    assert vol_ratio(_closes(calm + calm[:7])) < D("1.1")


def test_too_few_closes_give_no_volatility():
    assert realized_vol(_closes([0.01, 0.02]), 7) is None


def _perp(rates, hours=8):
    prints = tuple(
        FundingPrint(NOW - timedelta(hours=hours * k), D(r))
        for k, r in reversed(list(enumerate(reversed(rates))))
    )
    return PerpQuote("BTC/USDT:USDT", D(1), D(1), D(rates[-1]), D(hours), NOW, prints)


def test_held_for_two_weeks_needs_the_whole_window_covered():
    every = Persistence(mode="every")
    two_weeks = funding_apr_series(_perp(["0.00015"] * 43))
    one_week = funding_apr_series(_perp(["0.00015"] * 21))
    assert held(two_weeks, NOW, 14, D("0.10"), "above", every).held
    assert not held(one_week, NOW, 14, D("0.10"), "above", every).held


def test_every_print_mode_fails_on_one_dip_while_mean_and_share_mode_tolerates_it():
    rates = ["0.00015"] * 43
    rates[20] = "0.00001"
    series = funding_apr_series(_perp(rates))
    assert not held(series, NOW, 14, D("0.10"), "above", Persistence(mode="every")).held
    assert held(series, NOW, 14, D("0.10"), "above", Persistence(mode="mean_share", min_share=D("0.8"))).held


def test_a_changed_funding_interval_is_read_from_the_gaps_between_prints():
    perp = _perp(["0.0001"] * 12, hours=4)
    series = funding_8h_series(perp)
    assert all(v == D("0.0002") for _, v in series)
