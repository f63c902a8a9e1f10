"""Performance metrics: hand-computed small curves and hypothesis properties."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.metrics import (
    Drawdown,
    cagr,
    drawdown_series,
    max_drawdown,
    returns,
    sharpe,
    summarize,
    total_return,
    turnover,
    volatility,
)

D0 = date(2024, 1, 1)


def curve_of(values: list) -> list[tuple[date, object]]:
    return [(D0 + timedelta(days=i), v) for i, v in enumerate(values)]


# 100 → 110 (+10%) → 99 (−10%) → 121 (+22.2%): every figure below is worked by hand.
SMALL = curve_of([Decimal(100), Decimal(110), Decimal(99), Decimal(121)])


def test_small_curve_by_hand() -> None:
    assert returns(SMALL) == pytest.approx([0.1, -0.1, 22 / 99])
    assert total_return(SMALL) == pytest.approx(0.21)
    assert [dd for _, dd in drawdown_series(SMALL)] == pytest.approx([0, 0, 0.1, 0])
    assert max_drawdown(SMALL) == Drawdown(
        pytest.approx(0.1), date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)
    )
    # mean 0.0740741, sample stdev 0.1626681 → vol 0.1626681 × √365, Sharpe mean/stdev × √365.
    assert volatility(SMALL) == pytest.approx(3.107769, rel=1e-6)
    assert sharpe(SMALL) == pytest.approx(8.699821, rel=1e-6)
    # 3.65% a year risk-free is 0.01% a day off every return.
    assert sharpe(SMALL, risk_free=0.0365) == pytest.approx(8.688076, rel=1e-6)
    # (50 + 30) traded over mean equity (100 + 110 + 99 + 121) / 4 = 107.5.
    assert turnover([Decimal(50), Decimal(-30)], SMALL) == pytest.approx(80 / 107.5)


def test_cagr_over_whole_years() -> None:
    assert cagr([(date(2021, 1, 1), 100.0), (date(2022, 1, 1), 150.0)]) == pytest.approx(0.5)
    assert cagr([(date(2021, 1, 1), 100), (date(2023, 1, 1), 144)]) == pytest.approx(0.2)
    assert cagr([(date(2021, 1, 1), 100)]) == 0.0


def test_drawdown_without_recovery_and_without_fall() -> None:
    falling = curve_of([100.0, 80.0, 60.0, 90.0])
    assert max_drawdown(falling) == Drawdown(
        pytest.approx(0.4), date(2024, 1, 1), date(2024, 1, 3), None
    )
    assert max_drawdown(curve_of([1, 2, 3])) == Drawdown(0.0, None, None, None)


def test_degenerate_curves() -> None:
    assert sharpe(curve_of([100, 101])) == 0.0  # one return: no dispersion to measure
    assert volatility(curve_of([100])) == 0.0
    steady = curve_of([100 * 1.001**i for i in range(30)])
    assert sharpe(steady) == math.inf and volatility(steady) == pytest.approx(0, abs=1e-9)
    assert turnover([], []) == 0.0


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        ([(D0, 100), (D0, 101)], "increasing date order"),
        ([(D0 + timedelta(days=1), 100), (D0, 101)], "increasing date order"),
        (curve_of([100, 0]), "positive equity"),
        (curve_of([100, float("nan")]), "positive equity"),
    ],
)
def test_bad_curves_are_refused(curve: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        summarize(curve)


def test_summarize() -> None:
    perf = summarize(SMALL, [Decimal(50)])
    assert (perf.start, perf.end) == (date(2024, 1, 1), date(2024, 1, 4))
    assert perf.max_drawdown.depth == pytest.approx(0.1)
    assert perf.turnover == pytest.approx(50 / 107.5)
    assert isinstance(perf.cagr, float) and isinstance(perf.sharpe, float)
    with pytest.raises(ValueError, match="empty"):
        summarize([])


# ── properties ──────────────────────────────────────────────────────────────────────────────

positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
values = st.lists(positive, min_size=1, max_size=60)


@given(values)
def test_drawdown_is_a_fraction_and_max_is_its_peak(vs: list[float]) -> None:
    curve = curve_of(vs)
    series = [dd for _, dd in drawdown_series(curve)]
    assert all(0 <= dd < 1 for dd in series)
    assert max_drawdown(curve).depth == pytest.approx(max(series))


@given(positive, st.integers(min_value=1, max_value=2000))
def test_constant_curve_has_no_growth_risk_or_drawdown(value: float, days: int) -> None:
    curve = curve_of([value] * (days + 1))
    assert cagr(curve) == 0.0
    assert volatility(curve) == 0.0 and sharpe(curve) == 0.0
    assert max_drawdown(curve).depth == 0.0


@given(values, st.floats(min_value=1e-3, max_value=1e3))
def test_metrics_do_not_depend_on_scale(vs: list[float], k: float) -> None:
    a, b = curve_of(vs), curve_of([v * k for v in vs])
    assert cagr(a) == pytest.approx(cagr(b), rel=1e-6, abs=1e-9)
    assert max_drawdown(a).depth == pytest.approx(max_drawdown(b).depth, abs=1e-9)
    assert volatility(a) == pytest.approx(volatility(b), rel=1e-6, abs=1e-9)


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=40))
def test_rising_curve_never_draws_down_and_grows(steps: list[float]) -> None:
    vs = [100.0]
    for s in steps:
        vs.append(vs[-1] * (1 + s))
    curve = curve_of(vs)
    assert max_drawdown(curve).depth == 0.0
    assert cagr(curve) >= 0.0


@given(values)
def test_cagr_has_the_sign_of_the_total_return(vs: list[float]) -> None:
    curve = curve_of(vs)
    growth, total = cagr(curve), total_return(curve)
    assert math.isfinite(growth) or total > 0
    if total > 1e-12:
        assert growth > 0
    elif total < -1e-12:
        assert growth < 0
