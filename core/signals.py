"""Market signals as pure functions: funding APR, basis, premium, volatility, persistence."""

from __future__ import annotations

import functools
import itertools
import math
import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from core.models import ZERO, AssetMarket, Close, FundingPrint, FutureQuote, MarketSnapshot, PerpQuote
from core.strategy_config import Persistence

HOURS_PER_YEAR = Decimal(8760)
DAYS_PER_YEAR = Decimal(365)
MIN_DAYS_TO_EXPIRY = Decimal(7)
EIGHT_HOURS = Decimal(8)
_TIME = operator.attrgetter("time")
_RATE = operator.attrgetter("rate")
_VALUE = operator.itemgetter(1)


class SeriesWindow(tuple[Any, ...]):
    """Items `start:stop` of a longer series, carrying a table that answers for any window of it.

    A replay hands out each day's closes and funding prints as such windows, with tables worked
    out once for the whole history (core/signal_tables.py): the functions below ask the table.
    A plain tuple or list (a live snapshot's) is worked from its items, with the same results.
    """

    # A tuple subclass cannot have __slots__: these live in the instance's __dict__.
    table: Any
    start: int
    stop: int

    @classmethod
    def of(cls, series: tuple, start: int, stop: int, table: Any) -> SeriesWindow:
        """series[start:stop], answering from `table`."""
        window = cls(series[start:stop])
        window.table, window.start, window.stop = table, start, stop
        return window

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled or copied, a window is the plain tuple of its items: the table stays behind.
        return tuple, (tuple(self),)


class ReplayedAssets(dict[str, AssetMarket]):
    """A replayed snapshot's assets, keeping the answers about the whole snapshot once worked out.

    Every run of a backtest reads the same snapshot of a day: `vol_ratios` is worked out for the
    first one and kept here, with the snapshot (read-only: the runs share it).
    """

    __slots__ = ("answers",)

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple, Any] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled or copied, these are the plain assets: the answers stay behind.
        return dict, (dict(self),)


def funding_apr(rate: Decimal, interval_hours: Decimal) -> Decimal:
    """Annualize a funding rate paid every `interval_hours` (0.01%/8h → 10.95%)."""
    if interval_hours <= 0:
        raise ValueError("funding interval must be positive")
    return rate * HOURS_PER_YEAR / interval_hours


def rate_per_8h(rate: Decimal, interval_hours: Decimal) -> Decimal:
    """Restate a funding rate per 8 hours, the unit the seeds' thresholds use."""
    return rate * EIGHT_HOURS / interval_hours


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
    """The daily log returns of consecutive closes; a pair with a price that is not positive has none."""
    prices = [float(c.price) for c in closes]
    return [math.log(b / a) for a, b in itertools.pairwise(prices) if a > 0 and b > 0]


def realized_vol(closes: Sequence[Close], days: int) -> Decimal | None:
    """Annualized stdev of the last `days` daily log returns (365-day year); None if too short."""
    returns = log_returns(closes[-(days + 1) :])
    if len(returns) < max(2, days - 1):
        return None
    mean = sum(returns) / len(returns)
    variance = sum([(r - mean) ** 2 for r in returns]) / (len(returns) - 1)
    return Decimal(str(round(math.sqrt(variance) * math.sqrt(365), 10)))


def vol_ratio(closes: Sequence[Close], short_days: int = 7, long_days: int = 30) -> Decimal | None:
    """Short-window volatility over the baseline of the `long_days` before it (2 = doubled).

    The baseline excludes the short window so that a spike is compared with what came before it.
    """
    if isinstance(closes, SeriesWindow):
        return closes.table.vol_ratio(closes, short_days, long_days)
    return computed_vol_ratio(closes, short_days, long_days)


def vol_ratios(snapshot: MarketSnapshot, short_days: int = 7,
               long_days: int = 30) -> Mapping[str, Decimal | None]:
    """`vol_ratio` of every asset's closes in the snapshot."""
    assets = snapshot.assets
    if not isinstance(assets, ReplayedAssets):
        return {a: vol_ratio(m.closes, short_days, long_days) for a, m in assets.items()}
    key = ("vol_ratios", short_days, long_days)
    found = assets.answers.get(key)
    if found is None:
        found = assets.answers[key] = MappingProxyType(
            {a: vol_ratio(m.closes, short_days, long_days) for a, m in assets.items()})
    return found


def computed_vol_ratio(closes: Sequence[Close], short_days: int, long_days: int) -> Decimal | None:
    """`vol_ratio` worked out from the closes themselves (what a table must agree with)."""
    short = realized_vol(closes, short_days)
    long = realized_vol(closes[:-short_days], long_days)
    if short is None or long is None or long == 0:
        return None
    return short / long


def print_intervals(perp: PerpQuote) -> list[tuple[FundingPrint, Decimal]]:
    """Each settled print with its own interval: the gap to the previous print, else the quote's."""
    out: list[tuple[FundingPrint, Decimal]] = []
    previous: datetime | None = None
    for p in sorted(perp.funding_history, key=_TIME):
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


Direction = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class PrintWindow:
    """The settled values of one persistence window, ready to be judged against any threshold."""

    values: tuple[Decimal, ...]
    mean: Decimal | None
    # Enough prints, and the window covered: one that only started filling has not "held".
    complete: bool
    rule: Persistence

    def held(self, threshold: Decimal, direction: Direction) -> Held:
        """Whether the values stayed above/below `threshold` over the window, per the rule."""
        values = self.values
        if not values:
            return Held(False, 0, ZERO, None)
        share = self._share(threshold, direction)
        mean = self.mean
        if not self.complete or mean is None:
            return Held(False, len(values), share, mean)
        mean_ok = mean > threshold if direction == "above" else mean < threshold
        ok = share == 1 if self.rule.mode == "every" else (mean_ok and share >= self.rule.min_share)
        return Held(ok, len(values), share, mean)

    def holds(self, threshold: Decimal, direction: Direction) -> bool:
        """`held(threshold, direction).held`, without working out the numbers it does not need."""
        mean, values = self.mean, self.values
        if not self.complete or mean is None:
            return False
        if self.rule.mode == "every":
            if direction == "above":
                return all(v > threshold for v in values)
            return all(v < threshold for v in values)
        if not (mean > threshold if direction == "above" else mean < threshold):
            return False
        return self._share(threshold, direction) >= self.rule.min_share

    def _share(self, threshold: Decimal, direction: Direction) -> Decimal:
        """The share of (non-empty) values beyond `threshold` in `direction`."""
        values = self.values
        if direction == "above":
            passing = sum(1 for v in values if v > threshold)
        else:
            passing = sum(1 for v in values if v < threshold)
        return Decimal(passing) / Decimal(len(values))


def print_window(
    values: Sequence[tuple[datetime, Decimal]], now: datetime, window_days: int, rule: Persistence
) -> PrintWindow:
    """The values of (now − window_days, now], their mean and whether the window is complete."""
    start = now - timedelta(days=window_days)
    inside = [(t, v) for t, v in values if start < t <= now]
    return judged(inside, min((t for t, _ in inside), default=now), now, window_days, rule)


def judged(inside: Sequence[tuple[datetime, Decimal]], first: datetime, now: datetime,
           window_days: int, rule: Persistence) -> PrintWindow:
    """The window of `inside` (values of the window, the earliest at `first`)."""
    return judged_values(tuple(map(_VALUE, inside)), first, now, window_days, rule)


def judged_values(kept: tuple[Decimal, ...], first: datetime, now: datetime, window_days: int,
                  rule: Persistence) -> PrintWindow:
    """`judged` of the window's values alone."""
    if not kept:
        return PrintWindow((), None, False, rule)
    mean = sum(kept, ZERO) / len(kept)
    covered = (now - first) >= _coverage(window_days)
    return PrintWindow(kept, mean, len(kept) >= rule.min_prints and covered, rule)


@functools.lru_cache(maxsize=64)
def _coverage(window_days: int) -> timedelta:
    """How much of a window its prints must span for it to count as complete: 80%."""
    return timedelta(days=window_days * 0.8)


def held(
    values: Sequence[tuple[datetime, Decimal]],
    now: datetime,
    window_days: int,
    threshold: Decimal,
    direction: Direction,
    rule: Persistence,
) -> Held:
    """Whether `values` stayed above/below `threshold` over the last `window_days`, per `rule`."""
    return print_window(values, now, window_days, rule).held(threshold, direction)


def funding_apr_series(perp: PerpQuote) -> list[tuple[datetime, Decimal]]:
    """Settled prints as APRs, each annualized with its own interval."""
    return [(p.time, funding_apr(p.rate, iv)) for p, iv in print_intervals(perp)]


def funding_8h_series(perp: PerpQuote) -> list[tuple[datetime, Decimal]]:
    """Settled prints restated per 8 hours, each with its own interval."""
    return [(p.time, rate_per_8h(p.rate, iv)) for p, iv in print_intervals(perp)]


Unit = Literal["apr", "8h"]
CONVERT: dict[str, Callable[[Decimal, Decimal], Decimal]] = {"apr": funding_apr, "8h": rate_per_8h}


def funding_window(perp: PerpQuote, now: datetime, days: float, unit: Unit) -> list[tuple[datetime, Decimal]]:
    """The settled prints of (now − days, now], as APRs or per 8 hours: what `held` judges.

    The same values as the whole series (`funding_apr_series`, `funding_8h_series`) cut to the
    window, but only the window's prints are converted: a live snapshot carries weeks of prints
    and a persistence rule looks at a few days of them. A print's interval is still the gap to
    the print before it, so the print just before the window is read too.
    """
    history = perp.funding_history
    if isinstance(history, SeriesWindow):
        return history.table.values_in(perp, now, days, unit)
    return _window(perp, now, days, unit)


def funding_held_window(perp: PerpQuote, now: datetime, days: int, unit: Unit,
                        rule: Persistence) -> PrintWindow:
    """print_window(funding_window(...)): the window judged by `rule`."""
    history = perp.funding_history
    if isinstance(history, SeriesWindow):
        return history.table.held_window(perp, now, days, unit, rule)
    inside = _window(perp, now, days, unit)
    # The window is in time order: its first print is the earliest.
    return judged(inside, inside[0][0] if inside else now, now, days, rule)


def _window(perp: PerpQuote, now: datetime, days: float, unit: Unit) -> list[tuple[datetime, Decimal]]:
    """The converted prints of (now − days, now]; only those (and the one before) are converted."""
    prints = perp.funding_history
    times = list(map(_TIME, prints))
    if sorted(times) != times:  # out of order: put in order, as the whole series does
        prints = sorted(prints, key=_TIME)
        times = list(map(_TIME, prints))
    lo, hi = bisect_right(times, now - timedelta(days=days)), bisect_right(times, now)
    return convert_run(prints, lo, hi, perp.funding_interval_hours, CONVERT[unit])


def convert_run(prints: Sequence[FundingPrint], lo: int, hi: int, fallback: Decimal,
                convert: Callable[[Decimal, Decimal], Decimal]) -> list[tuple[datetime, Decimal]]:
    """prints[lo:hi] (in time order) converted, each with the interval from its predecessor.

    The first print of `prints` has none: it takes `fallback`, as an unusual gap does.
    """
    times = list(map(_TIME, prints[max(lo - 1, 0):hi]))
    intervals = [interval_of(d, fallback) for d in map(operator.sub, times[1:], times)]
    if lo == 0 and hi > 0:
        intervals.insert(0, fallback)
        times.insert(0, times[0])
    return list(zip(times[1:], map(convert, map(_RATE, prints[lo:hi]), intervals), strict=True))


def interval_of(gap: timedelta, fallback: Decimal) -> Decimal:
    """The interval a gap between prints stands for (1–8 whole hours), else `fallback`."""
    hours = gap_hours(gap)
    return fallback if hours is None else hours


def gap_hours(gap: timedelta) -> Decimal | None:
    """The whole-hour interval a gap between prints stands for, if it is 1–8 hours."""
    hours = _GAPS.get(gap, _UNKNOWN)
    if hours is _UNKNOWN:
        if len(_GAPS) >= 1024:
            _GAPS.clear()
        hours = _GAPS[gap] = _gap_interval(gap.total_seconds())
    return hours


# Gaps between prints → the interval they stand for (a handful of distinct gaps in practice).
_GAPS: dict[timedelta, Decimal | None] = {}
_UNKNOWN: Any = object()
