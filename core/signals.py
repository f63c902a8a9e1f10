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

from core.memo import PairChains, SameInputMemo
from core.models import ZERO, AssetMarket, Close, FundingPrint, FutureQuote, MarketSnapshot, PerpQuote
from core.strategy_config import Persistence

HOURS_PER_YEAR = Decimal(8760)
DAYS_PER_YEAR = Decimal(365)
MIN_DAYS_TO_EXPIRY = Decimal(7)
EIGHT_HOURS = Decimal(8)


# Replayed snapshots are shared by every run of a backtest: see core/memo.py.
_VOL_RATIOS: SameInputMemo[Decimal | None] = SameInputMemo(128)
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
    if not isinstance(closes, tuple):
        prices = [float(c.price) for c in closes]
        return [math.log(b / a) for a, b in itertools.pairwise(prices) if a > 0 and b > 0]
    # Replayed days show the same closes as a window moved on by a day: each close is converted
    # and each pair's return computed once, along a chain of closes (see core/memo.py).
    values = _CLOSE_RETURNS.values(closes)
    if _CLOSE_RETURNS.has_none and None in values:
        return [v for v in values if v is not None]
    return values


def _pair_returns(closes: Sequence[Close]) -> list[float | None]:
    """The log return of each two consecutive closes; None where a price is not positive."""
    prices = [float(c.price) for c in closes]
    return [math.log(b / a) if a > 0 and b > 0 else None for a, b in itertools.pairwise(prices)]


_CLOSE_RETURNS: PairChains[float | None] = PairChains(_pair_returns, 16_384)
_UNKNOWN: Any = object()


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
    if isinstance(closes, tuple):  # immutable: safe to remember by identity
        return _VOL_RATIOS.get((closes,), (short_days, long_days),
                               lambda: _vol_ratio(closes, short_days, long_days))
    return _vol_ratio(closes, short_days, long_days)


def vol_ratios(snapshot: MarketSnapshot, short_days: int = 7,
               long_days: int = 30) -> Mapping[str, Decimal | None]:
    """`vol_ratio` of every asset's closes in the snapshot, worked out once per snapshot."""
    return _SNAPSHOT_VOLS.get((snapshot,), (short_days, long_days), lambda: MappingProxyType(
        {a: vol_ratio(m.closes, short_days, long_days) for a, m in snapshot.assets.items()}))


_SNAPSHOT_VOLS: SameInputMemo[Mapping[str, Decimal | None]] = SameInputMemo(64)


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
        if direction == "above":
            passing = sum(1 for v in values if v > threshold)
        else:
            passing = sum(1 for v in values if v < threshold)
        share = Decimal(passing) / Decimal(len(values))
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
        if direction == "above":
            passing = sum(1 for v in values if v > threshold)
        else:
            passing = sum(1 for v in values if v < threshold)
        return Decimal(passing) / Decimal(len(values)) >= self.rule.min_share


def print_window(
    values: Sequence[tuple[datetime, Decimal]], now: datetime, window_days: int, rule: Persistence
) -> PrintWindow:
    """The values of (now − window_days, now], their mean and whether the window is complete."""
    start = now - timedelta(days=window_days)
    inside = [(t, v) for t, v in values if start < t <= now]
    return _judged(inside, min((t for t, _ in inside), default=now), now, window_days, rule)


def _judged(inside: Sequence[tuple[datetime, Decimal]], first: datetime, now: datetime,
            window_days: int, rule: Persistence) -> PrintWindow:
    """The window of `inside` (values of the window, the earliest at `first`)."""
    if not inside:
        return PrintWindow((), None, False, rule)
    kept = tuple(v for _, v in inside)
    mean = sum(kept, ZERO) / len(kept)
    covered = (now - first) >= timedelta(days=window_days * 0.8)
    return PrintWindow(kept, mean, len(kept) >= rule.min_prints and covered, rule)


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
    if not isinstance(perp.funding_history, tuple):
        return [(p.time, funding_apr(p.rate, iv)) for p, iv in print_intervals(perp)]
    series = _FUNDING_SERIES.get((perp,), ("apr",), lambda: _print_series(perp, funding_apr))
    return list(series)  # a fresh list every call: the remembered tuple is never handed out


def funding_8h_series(perp: PerpQuote) -> list[tuple[datetime, Decimal]]:
    """Settled prints restated per 8 hours, each with its own interval."""
    if not isinstance(perp.funding_history, tuple):
        return [(p.time, rate_per_8h(p.rate, iv)) for p, iv in print_intervals(perp)]
    return list(_FUNDING_SERIES.get((perp,), ("8h",), lambda: _print_series(perp, rate_per_8h)))


Unit = Literal["apr", "8h"]
_CONVERT: dict[str, Callable[[Decimal, Decimal], Decimal]] = {"apr": funding_apr, "8h": rate_per_8h}


def funding_window(perp: PerpQuote, now: datetime, days: float, unit: Unit) -> list[tuple[datetime, Decimal]]:
    """The settled prints of (now − days, now], as APRs or per 8 hours: what `held` judges.

    The same values as the whole series (`funding_apr_series`, `funding_8h_series`) cut to the
    window, but only the window's prints are converted: a live snapshot carries weeks of prints
    and a persistence rule looks at a few days of them. A print's interval is still the gap to
    the print before it, so the print just before the window is read too.
    """
    return list(_window(perp, now, days, unit))


def funding_held_window(perp: PerpQuote, now: datetime, days: int, unit: Unit,
                        rule: Persistence) -> PrintWindow:
    """print_window(funding_window(...)): the window judged by `rule`, once per snapshot."""
    if not isinstance(perp.funding_history, tuple):
        return print_window(_window(perp, now, days, unit), now, days, rule)
    # Keyed by the rule's values: presets with equal persistence rules share the verdicts.
    return _HELD.get((perp,), (now, days, unit, rule.mode, rule.min_share, rule.min_prints),
                     lambda: _judge(perp, now, days, unit, rule))


def _judge(perp: PerpQuote, now: datetime, days: int, unit: Unit, rule: Persistence) -> PrintWindow:
    inside = _cut(perp, now - timedelta(days=days), now, _CONVERT[unit])
    # The cut is in time order and holds only the window: its first print is the earliest.
    return _judged(inside, inside[0][0] if inside else now, now, days, rule)


_WINDOWS: SameInputMemo[tuple] = SameInputMemo(256)
_HELD: SameInputMemo[PrintWindow] = SameInputMemo(256)
_ORDERED: SameInputMemo[list[datetime] | None] = SameInputMemo(128)


def _window(perp: PerpQuote, now: datetime, days: float, unit: Unit) -> Sequence[tuple[datetime, Decimal]]:
    since = now - timedelta(days=days)
    if not isinstance(perp.funding_history, tuple):
        full = funding_apr_series(perp) if unit == "apr" else funding_8h_series(perp)
        return [v for v in full if since < v[0] <= now]
    return _WINDOWS.get((perp,), (since, now, unit), lambda: _cut(perp, since, now, _CONVERT[unit]))


def _ordered_times(history: tuple[FundingPrint, ...]) -> list[datetime] | None:
    """The prints' times when the history is already in time order (feeds deliver it so), else None."""
    times = list(map(_TIME, history))
    return times if sorted(times) == times else None


def _cut(perp: PerpQuote, since: datetime, until: datetime,
         convert: Callable[[Decimal, Decimal], Decimal]) -> tuple:
    """The converted prints of (since, until]; only those (and the one before) are read."""
    history = perp.funding_history
    times = _ORDERED.get((history,), (), lambda: _ordered_times(history))
    if times is None:  # out of order: sort it all, as the whole series does
        series = _print_series(perp, convert)
        return tuple(v for v in series if since < v[0] <= until)
    lo, hi = bisect_right(times, since), bisect_right(times, until)
    return _convert_run(history, lo, hi, perp.funding_interval_hours, convert)


def _print_series(perp: PerpQuote, convert: Callable[[Decimal, Decimal], Decimal]) -> tuple:
    """print_intervals(perp) converted print by print, as the series functions define it."""
    prints = sorted(perp.funding_history, key=_TIME)
    return _convert_run(prints, 0, len(prints), perp.funding_interval_hours, convert)


# Per conversion: id(print) → (print, previous print, fallback interval, (time, value)).
# Replayed days share most of their prints with the day before: each print is converted once.
_PRINT_VALUES: dict[object, dict[int, tuple[FundingPrint, FundingPrint | None, Decimal, tuple]]] = {
    funding_apr: {}, rate_per_8h: {}}
_PRINT_VALUES_SIZE = 8192


def _convert_run(prints: Sequence[FundingPrint], lo: int, hi: int, fallback: Decimal,
                 convert: Callable[[Decimal, Decimal], Decimal]) -> tuple:
    """prints[lo:hi] (in time order) converted, each with the interval from its predecessor."""
    remembered = _PRINT_VALUES[convert]
    window = prints[lo:hi]
    if not any(map(remembered.__contains__, map(id, window))):
        # A window never seen (a live snapshot's, a replay's first day): converted in one pass,
        # and only its newest print is remembered; once that one is met again (the next
        # replayed day), the window's new prints are all remembered.
        out = _convert_all(prints, lo, hi, fallback, convert)
        if out:
            _remember_prints(remembered, [(window[-1], prints[hi - 2] if hi - 1 > 0 else None,
                                           fallback, out[-1])])
        return tuple(out)
    values, new = [], []
    previous: FundingPrint | None = prints[lo - 1] if lo > 0 else None
    for p in window:
        hit = remembered.get(id(p))
        if hit is None or hit[1] is not previous or hit[2] is not fallback:
            interval = fallback if previous is None else _interval_of(p.time - previous.time, fallback)
            # The entry keeps the print, its predecessor and the fallback alive: ids stay theirs.
            hit = (p, previous, fallback, (p.time, convert(p.rate, interval)))
            new.append(hit)
        values.append(hit[3])
        previous = p
    _remember_prints(remembered, new)
    return tuple(values)


def _convert_all(prints: Sequence[FundingPrint], lo: int, hi: int, fallback: Decimal,
                 convert: Callable[[Decimal, Decimal], Decimal]) -> list[tuple[datetime, Decimal]]:
    times = list(map(_TIME, prints[max(lo - 1, 0):hi]))
    intervals = [_interval_of(d, fallback) for d in map(operator.sub, times[1:], times)]
    if lo == 0 and hi > 0:
        intervals.insert(0, fallback)  # the first print has no predecessor
        times.insert(0, times[0])
    return list(zip(times[1:], map(convert, map(_RATE, prints[lo:hi]), intervals), strict=True))


def _remember_prints(remembered: dict, entries: list) -> None:
    if not entries:
        return
    if len(remembered) + len(entries) > _PRINT_VALUES_SIZE:
        remembered.clear()
    remembered.update((id(entry[0]), entry) for entry in entries)


def _interval_of(gap: timedelta, fallback: Decimal) -> Decimal:
    """The interval a gap between prints stands for (1–8 whole hours), else `fallback`."""
    hours = _GAPS.get(gap, _UNKNOWN)
    if hours is _UNKNOWN:
        if len(_GAPS) >= 1024:
            _GAPS.clear()
        hours = _GAPS[gap] = _gap_interval(gap.total_seconds())
    return fallback if hours is None else hours


# Gaps between prints → the interval they stand for (a handful of distinct gaps in practice).
_GAPS: dict[timedelta, Decimal | None] = {}
_RATE = operator.attrgetter("rate")
