"""Performance metrics over an equity curve: a date-ordered sequence of (day, value).

Values may be Decimal or float. Every metric here is a statistic, not money, so each returns a
`float` (fractions: 0.25 = 25%); amounts of money stay Decimal in the portfolio and backtest.
Returns are simple period returns between consecutive points, annualized with a 365-day year
because crypto trades every day; the curve is assumed to be daily.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise

Number = Decimal | float | int
Curve = Sequence[tuple[date, Number]]

DAYS_PER_YEAR = 365


def _values(curve: Curve) -> list[float]:
    """The values as floats, after checking the curve is ordered and positive."""
    values: list[float] = []
    previous: date | None = None
    for day, value in curve:
        if previous is not None and day <= previous:
            raise ValueError(f"equity curve is not in increasing date order at {day}")
        number = float(value)
        if not number > 0 or not math.isfinite(number):
            raise ValueError(f"equity on {day} is {value}; metrics need positive equity")
        values.append(number)
        previous = day
    return values


def returns(curve: Curve) -> list[float]:
    """Simple returns between consecutive points (one fewer than the points)."""
    values = _values(curve)
    return [b / a - 1 for a, b in pairwise(values)]


def cagr(curve: Curve) -> float:
    """Compound annual growth rate over calendar days: (last/first)^(365/days) − 1; 0 if < 1 day."""
    values = _values(curve)
    if len(values) < 2:
        return 0.0
    days = (curve[-1][0] - curve[0][0]).days
    try:
        return (values[-1] / values[0]) ** (DAYS_PER_YEAR / days) - 1
    except OverflowError:  # a huge gain over a few days: annualizing it has no finite answer
        return math.inf


def total_return(curve: Curve) -> float:
    """last / first − 1."""
    values = _values(curve)
    return values[-1] / values[0] - 1 if values else 0.0


def drawdown_series(curve: Curve) -> list[tuple[date, float]]:
    """Per day, the fall from the running peak as a fraction in [0, 1) (0 at a new high)."""
    peak = 0.0
    out: list[tuple[date, float]] = []
    for (day, _), value in zip(curve, _values(curve), strict=True):
        peak = max(peak, value)
        out.append((day, 1 - value / peak))
    return out


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall: depth as a fraction, the peak and trough days, and the day it recovered."""

    depth: float
    peak: date | None
    trough: date | None
    recovered: date | None


def max_drawdown(curve: Curve) -> Drawdown:
    """The maximum drawdown with its dates; depth 0 and no dates for a curve that never falls."""
    values = _values(curve)
    depth, peak_at, trough_at = 0.0, 0, 0
    peak_i = 0
    for i, value in enumerate(values):
        if value > values[peak_i]:
            peak_i = i
        fall = 1 - value / values[peak_i]
        if fall > depth:
            depth, peak_at, trough_at = fall, peak_i, i
    if depth == 0:
        return Drawdown(0.0, None, None, None)
    level = values[peak_at]
    back = next((j for j in range(trough_at, len(values)) if values[j] >= level), None)
    return Drawdown(
        depth, curve[peak_at][0], curve[trough_at][0], None if back is None else curve[back][0]
    )


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    mean = math.fsum(xs) / len(xs)
    var = math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var)


def volatility(curve: Curve, periods_per_year: int = DAYS_PER_YEAR) -> float:
    """Annualized volatility: sample stdev of simple returns × √periods; 0 with < 2 returns."""
    rs = returns(curve)
    if len(rs) < 2:
        return 0.0
    return _mean_std(rs)[1] * math.sqrt(periods_per_year)


def sharpe(curve: Curve, risk_free: float = 0.0, periods_per_year: int = DAYS_PER_YEAR) -> float:
    """Annualized Sharpe ratio of simple returns over an annual risk-free rate (default 0).

    0 with fewer than two returns; ±inf when returns do not vary but beat (or trail) the rate.
    """
    rs = returns(curve)
    if len(rs) < 2:
        return 0.0
    excess = [r - risk_free / periods_per_year for r in rs]
    mean, std = _mean_std(excess)
    # A tiny tolerance: float noise on a perfectly steady curve is not volatility.
    if std <= 1e-12 * max(1.0, abs(mean)):
        return 0.0 if abs(mean) <= 1e-15 else math.copysign(math.inf, mean)
    return mean / std * math.sqrt(periods_per_year)


def turnover(traded_notional: Iterable[Number], curve: Curve) -> float:
    """Sum of absolute traded notional divided by mean equity (1.0 = the book traded once)."""
    values = _values(curve)
    if not values:
        return 0.0
    traded = math.fsum(abs(float(n)) for n in traded_notional)
    return traded / (math.fsum(values) / len(values))


@dataclass(frozen=True, slots=True)
class Performance:
    """The usual summary of a backtest or a live book, all as floats (fractions)."""

    start: date
    end: date
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    max_drawdown: Drawdown
    turnover: float


def summarize(curve: Curve, traded_notional: Iterable[Number] = ()) -> Performance:
    """Every metric above at once; the curve needs at least one point."""
    if not curve:
        raise ValueError("equity curve is empty; nothing to summarize")
    return Performance(
        start=curve[0][0],
        end=curve[-1][0],
        total_return=total_return(curve),
        cagr=cagr(curve),
        volatility=volatility(curve),
        sharpe=sharpe(curve),
        max_drawdown=max_drawdown(curve),
        turnover=turnover(traded_notional, curve),
    )
