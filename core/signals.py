"""Market signals as pure functions: funding APR, basis, premium, volatility, persistence."""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from core.config import Persistence
from core.memo import SameInputMemo
from core.models import ZERO, AssetMarket, Close, FundingPrint, FutureQuote, PerpQuote

HOURS_PER_YEAR = Decimal(8760)
DAYS_PER_YEAR = Decimal(365)
MIN_DAYS_TO_EXPIRY = Decimal(7)


# Replayed snapshots are shared by every run of a backtest: see core/memo.py.
_VOL_RATIOS: SameInputMemo[Decimal | None] = SameInputMemo()
_FUNDING_SERIES: SameInputMemo[tuple] = SameInputMemo()
_INTERVALS: SameInputMemo[list] = SameInputMemo()
_TIME = operator.attrgetter("time")


def funding_apr(rate: Decimal, interval_hours: Decimal) -> Decimal:
    """Annualize a funding rate paid every `interval_hours` (0.01%/8h → 10.95%)."""
    if interval_hours <= 0:
        raise ValueError("funding interval must be positive")
    return rate * HOURS_PER_YEAR / interval_hours


def rate_per_8h(rate: Decimal, interval_hours: Decimal) -> Decimal:
    """Restate a funding rate per 8 hours, the unit the seeds' thresholds use."""
    return rate * Decimal(8) / interval_hours


def basis_apr(
    future_price: Decimal,
    spot_price: Decimal,
    expiry: datetime,
    now: datetime,
    *,
    compounded: bool = False,
    min_days: Decimal = MIN_DAYS_TO_EXPIRY,
) -> Decimal | None:
    """Annualized basis of a dated future, or None under `min_days` to expiry (too noisy)."""
    days = Decimal((expiry - now).total_seconds()) / Decimal(86_400)
    if days < min_days:
        return None
    ratio = future_price / spot_price
    if compounded:
        return Decimal(str(math.pow(float(ratio), float(DAYS_PER_YEAR / days)) - 1))
    return (ratio - 1) * DAYS_PER_YEAR / days


def perp_premium(mark: Decimal, index: Decimal) -> Decimal:
    """Perpetual premium = mark / index − 1."""
    return mark / index - 1


def nearest_future(
    futures: Sequence[FutureQuote], now: datetime, min_days: Decimal = MIN_DAYS_TO_EXPIRY
) -> FutureQuote | None:
    """The nearest dated future with at least `min_days` left."""
    eligible = [f for f in futures if (f.expiry - now) >= timedelta(days=float(min_days))]
    return min(eligible, key=lambda f: f.expiry, default=None)


def annualized_premium(market: AssetMarket, now: datetime) -> tuple[Decimal, str] | None:
    """Seed 002's premium: the nearest dated future's basis, else the perp funding annualized."""
    if market.spot is not None:
        future = nearest_future(market.futures, now)
        if future is not None:
            apr = basis_apr(future.price, market.spot.price, future.expiry, now)
            if apr is not None:
                return apr, f"basis of {future.symbol}"
    if market.perp is not None:
        return funding_apr(market.perp.funding_rate, market.perp.funding_interval_hours), (
            f"funding of {market.perp.symbol}"
        )
    return None


def log_returns(closes: Sequence[Close]) -> list[float]:
    if not isinstance(closes, tuple):
        prices = [float(c.price) for c in closes]
        return [math.log(b / a) for a, b in itertools.pairwise(prices) if a > 0 and b > 0]
    # Consecutive replayed days share all but one close: each pair's return is computed once.
    out = []
    for a, b in itertools.pairwise(closes):
        hit = _PAIR_RETURNS.get(id(b))
        if hit is None or hit[0] is not a:
            x, y = float(a.price), float(b.price)
            if len(_PAIR_RETURNS) >= _PAIR_RETURNS_SIZE:
                _PAIR_RETURNS.clear()
            # The entry keeps both closes alive, so id(b) stays b's while it is remembered.
            hit = _PAIR_RETURNS[id(b)] = (a, b, math.log(y / x) if x > 0 and y > 0 else None)
        if hit[2] is not None:
            out.append(hit[2])
    return out


_PAIR_RETURNS: dict[int, tuple[Close, Close, float | None]] = {}
_PAIR_RETURNS_SIZE = 16384


def realized_vol(closes: Sequence[Close], days: int) -> Decimal | None:
    """Annualized stdev of the last `days` daily log returns (365-day year); None if too short."""
    returns = log_returns(closes[-(days + 1) :])
    if len(returns) < max(2, days - 1):
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return Decimal(str(round(math.sqrt(variance) * math.sqrt(365), 10)))


def vol_ratio(closes: Sequence[Close], short_days: int = 7, long_days: int = 30) -> Decimal | None:
    """Short-window volatility over the baseline of the `long_days` before it (2 = doubled).

    The baseline excludes the short window so that a spike is compared with what came before it.
    """
    if isinstance(closes, tuple):  # immutable: safe to remember by identity
        return _VOL_RATIOS.get((closes,), (short_days, long_days),
                               lambda: _vol_ratio(closes, short_days, long_days))
    return _vol_ratio(closes, short_days, long_days)


def _vol_ratio(closes: Sequence[Close], short_days: int, long_days: int) -> Decimal | None:
    short = realized_vol(closes, short_days)
    long = realized_vol(closes[:-short_days], long_days)
    if short is None or long is None or long == 0:
        return None
    return short / long


def print_intervals(perp: PerpQuote) -> list[tuple[FundingPrint, Decimal]]:
    """Each settled print with its own interval: the gap to the previous print, else the quote's."""
    if not isinstance(perp.funding_history, tuple):  # only an immutable history is remembered
        return _print_intervals(perp)
    return list(_INTERVALS.get((perp,), (), lambda: _print_intervals(perp)))


def _print_intervals(perp: PerpQuote) -> list[tuple[FundingPrint, Decimal]]:
    out: list[tuple[FundingPrint, Decimal]] = []
    previous: datetime | None = None
    for p in sorted(perp.funding_history, key=lambda p: p.time):
        interval = perp.funding_interval_hours
        if previous is not None:
            gap = _gap_interval((p.time - previous).total_seconds())
            if gap is not None:
                interval = gap
        out.append((p, interval))
        previous = p.time
    return out


@functools.lru_cache(maxsize=256)
def _gap_interval(seconds: float) -> Decimal | None:
    """The whole-hour interval a gap between prints stands for, if it is 1-8 hours."""
    gap = Decimal(seconds) / Decimal(3600)
    return gap.quantize(Decimal(1)) if Decimal(1) <= gap <= Decimal(8) else None


@dataclass(frozen=True, slots=True)
class Held:
    """The verdict on "held for N days": whether it held, and the numbers behind it."""

    held: bool
    prints: int
    share: Decimal
    mean: Decimal | None

    def describe(self, unit: str = "") -> str:
        mean = "n/a" if self.mean is None else f"{self.mean:.4%}".replace("%", "%" + unit)
        return f"{self.prints} prints, {self.share:.0%} past the threshold, mean {mean}"


def held(
    values: Sequence[tuple[datetime, Decimal]],
    now: datetime,
    window_days: int,
    threshold: Decimal,
    direction: Literal["above", "below"],
    rule: Persistence,
) -> Held:
    """Whether `values` stayed above/below `threshold` over the last `window_days`, per `rule`."""
    start = now - timedelta(days=window_days)
    window = [v for t, v in values if start < t <= now]
    if not window:
        return Held(False, 0, ZERO, None)
    passing = [v for v in window if (v > threshold if direction == "above" else v < threshold)]
    share = Decimal(len(passing)) / Decimal(len(window))
    mean = sum(window, ZERO) / len(window)
    # A window that only started filling cannot have "held for two weeks".
    covered = (now - min(t for t, _ in values if start < t <= now)) >= timedelta(
        days=window_days * 0.8
    )
    if len(window) < rule.min_prints or not covered:
        return Held(False, len(window), share, mean)
    mean_ok = mean > threshold if direction == "above" else mean < threshold
    ok = share == 1 if rule.mode == "every" else (mean_ok and share >= rule.min_share)
    return Held(ok, len(window), share, mean)


def funding_apr_series(perp: PerpQuote) -> list[tuple[datetime, Decimal]]:
    """Settled prints as APRs, each annualized with its own interval."""
    if not isinstance(perp.funding_history, tuple):
        return [(p.time, funding_apr(p.rate, iv)) for p, iv in print_intervals(perp)]
    series = _FUNDING_SERIES.get((perp,), ("apr",), lambda: _print_series(perp, funding_apr))
    return list(series)  # a fresh list every call: the remembered tuple is never handed out


def funding_8h_series(perp: PerpQuote) -> list[tuple[datetime, Decimal]]:
    """Settled prints restated per 8 hours, each with its own interval."""
    if not isinstance(perp.funding_history, tuple):
        return [(p.time, rate_per_8h(p.rate, iv)) for p, iv in print_intervals(perp)]
    return list(_FUNDING_SERIES.get((perp,), ("8h",), lambda: _print_series(perp, rate_per_8h)))


# (print, previous print, fallback interval, conversion) → (print, previous, fallback, value).
# Replayed days share most of their prints with the day before: each print is converted once.
_PRINT_VALUES: dict[tuple[int, int, int, object], tuple[object, object, object, tuple]] = {}
_PRINT_VALUES_SIZE = 8192


def _print_series(perp: PerpQuote, convert: Callable[[Decimal, Decimal], Decimal]) -> tuple:
    """print_intervals(perp) converted print by print, as the series functions define it."""
    fallback = perp.funding_interval_hours
    out = []
    previous: FundingPrint | None = None
    for p in sorted(perp.funding_history, key=_TIME):
        key = (id(p), id(previous), id(fallback), convert)
        hit = _PRINT_VALUES.get(key)
        if hit is None:
            interval = fallback
            if previous is not None:
                gap = _gap_interval((p.time - previous.time).total_seconds())
                if gap is not None:
                    interval = gap
            if len(_PRINT_VALUES) >= _PRINT_VALUES_SIZE:
                _PRINT_VALUES.clear()
            # The entry keeps the print, its predecessor and the fallback alive: ids stay theirs.
            hit = _PRINT_VALUES[key] = (p, previous, fallback, (p.time, convert(p.rate, interval)))
        out.append(hit[3])
        previous = p
    return tuple(out)
