"""A replay's signal tables: the answers about each long series, worked out once for all its days.

Every replayed day carries windows of the same series (an asset's last 61 closes, a perpetual's
last 16 days of funding prints), and every preset asks the same questions of them. A table
answers for any window of its series (core/signals.py `SeriesWindow`): volatility ratios come
from arrays computed with numpy for every end of the close series, funding windows from the
series' prints converted once. Each answer is the one the plain functions give for the window's
items; where a table cannot vouch for that (a window cut short by the start of the history or a
gap, a close that is not positive, a volatility too near a rounding edge, a print whose interval
falls back to the quote's), the answer is worked out from the window itself.
"""

from __future__ import annotations

import functools
import itertools
import math
from bisect import bisect_right
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.models import Close, FundingPrint, PerpQuote
from core.signals import (
    CONVERT,
    PrintWindow,
    SeriesWindow,
    Unit,
    computed_vol_ratio,
    convert_run,
    gap_hours,
    judged,
    judged_values,
)
from core.strategy_config import Persistence

# realized_vol rounds to 10 places. Numpy sums in another order than Python, so a volatility
# within this many units of the 10th place from a rounding edge is worked out in Python instead
# (over 2020–2026 the two orders differ by 1.3e-5 of a unit at most).
ROUNDING_MARGIN = 0.001
SQRT_YEAR = math.sqrt(365)


class CloseTable:
    """Volatility ratios of one asset's close series, for a window ending anywhere in it."""

    def __init__(self, closes: tuple[Close, ...]) -> None:
        self.closes = closes
        self._ratios: dict[tuple[int, int], list[Decimal | None]] = {}

    def window(self, start: int, stop: int) -> SeriesWindow:
        """closes[start:stop], answering from this table."""
        return SeriesWindow.of(self.closes, start, stop, self)

    def vol_ratio(self, window: SeriesWindow, short_days: int, long_days: int) -> Decimal | None:
        """`computed_vol_ratio` of the window: it reads only the window's last short + long + 1 closes."""
        if window.stop - window.start < short_days + long_days + 1 or min(short_days, long_days) < 2:
            return computed_vol_ratio(window, short_days, long_days)
        return self.ratios(short_days, long_days)[window.stop]

    def ratios(self, short_days: int, long_days: int) -> list[Decimal | None]:
        """The ratio of the closes before each end `stop` (entries before the first full window unset)."""
        found = self._ratios.get((short_days, long_days))
        if found is None:
            found = self._ratios[(short_days, long_days)] = self._build(short_days, long_days)
        return found

    def _build(self, short_days: int, long_days: int) -> list[Decimal | None]:
        closes, need = self.closes, short_days + long_days + 1
        out: list[Decimal | None] = [None] * (len(closes) + 1)
        if len(closes) < need:
            return out
        prices = [float(c.price) for c in closes]
        # Returns as log_returns computes them (math.log, not numpy's); NaN marks a pair with a
        # price that is not positive, which log_returns leaves out.
        returns = np.array([math.log(b / a) if a > 0 and b > 0 else math.nan
                            for a, b in itertools.pairwise(prices)])
        # For the window ending at `stop`, the short run of returns ends with it and the baseline's
        # run ends where the short one starts: entries stop − short − 1 and stop − need.
        short = _rolling_vol(returns, short_days)[long_days:]
        long = _rolling_vol(returns, long_days)[: len(closes) - need + 1]
        sure = (_sure(short) & _sure(long)).tolist()
        for stop, s, lv, ok in zip(range(need, len(closes) + 1), short.tolist(), long.tolist(), sure,
                                   strict=True):
            if not ok:
                out[stop] = computed_vol_ratio(closes[stop - need:stop], short_days, long_days)
                continue
            low = _decimal(lv)
            out[stop] = None if low == 0 else _decimal(s) / low
        return out


def _rolling_vol(returns: np.ndarray, days: int) -> np.ndarray:
    """realized_vol's float for every run of `days` returns: entry k is that of returns[k:k + days]."""
    runs = sliding_window_view(returns, days)
    mean = runs.sum(axis=1) / days
    variance = ((runs - mean[:, None]) ** 2).sum(axis=1) / (days - 1)
    return np.sqrt(variance) * SQRT_YEAR


def _sure(vols: np.ndarray) -> np.ndarray:
    """Numbers (not NaN: no close that is not positive) clear of a rounding edge of the 10th place."""
    return np.abs((vols * 1e10) % 1 - 0.5) >= ROUNDING_MARGIN


def _decimal(vol: float) -> Decimal:
    """Decimal(str(round(vol, 10))), as realized_vol builds it, in half the time.

    "%.10f" rounds to the same 10 places as round(); str() of the rounded float shows those
    digits without trailing zeros but with at least one decimal ("2.0").
    """
    digits = f"{vol:.10f}".rstrip("0")
    return Decimal(digits + "0" if digits[-1] == "." else digits)


class PrintTable:
    """Funding windows of one perpetual's print series (in time order), each judged once per rule."""

    def __init__(self, prints: tuple[FundingPrint, ...]) -> None:
        self.prints = prints
        self.times = [p.time for p in prints]
        intervals = [None, *(gap_hours(b - a) for a, b in itertools.pairwise(self.times))]
        # A print's value is its own wherever its interval is read from the gap to the print
        # before it; elsewhere (the first print, an unusual gap) the quote's interval stands in.
        self._intervals: list[Decimal | None] = intervals
        # _odd[i]: how many of the first i prints take the quote's interval.
        self._odd = list(itertools.accumulate((iv is None for iv in intervals), initial=0))
        self._values: dict[str, tuple[list[tuple[datetime, Decimal] | None], list[Decimal | None]]] = {}
        self._held: dict[tuple, PrintWindow] = {}

    def window(self, start: int, stop: int) -> SeriesWindow:
        """prints[start:stop], answering from this table."""
        return SeriesWindow.of(self.prints, start, stop, self)

    def held_window(self, perp: PerpQuote, now: datetime, days: int, unit: Unit,
                    rule: Persistence) -> PrintWindow:
        """`funding_held_window` of a perpetual whose history is a window of this table."""
        history: SeriesWindow = perp.funding_history  # type: ignore[assignment]
        # Keyed by the rule's values: presets with equal persistence rules share the verdicts.
        key = (history.start, history.stop, perp.funding_interval_hours, now, days, unit,
               rule.mode, rule.min_share, rule.min_prints)
        found = self._held.get(key)
        if found is None:
            lo, hi = self._bounds(history, now, days)
            if self._own_values(history, lo, hi):
                values = tuple(self.converted(unit)[1][lo:hi])
                # The window is in time order: its first print is the earliest.
                found = judged_values(values, self.times[lo] if values else now, now, days, rule)
            else:
                inside = self.values_in(perp, now, days, unit)
                found = judged(inside, inside[0][0] if inside else now, now, days, rule)
            self._held[key] = found
        return found

    def values_in(self, perp: PerpQuote, now: datetime, days: float,
                  unit: Unit) -> list[tuple[datetime, Decimal]]:
        """`funding_window` of a perpetual whose history is a window of this table."""
        history: SeriesWindow = perp.funding_history  # type: ignore[assignment]
        lo, hi = self._bounds(history, now, days)
        if self._own_values(history, lo, hi):
            return self.converted(unit)[0][lo:hi]  # type: ignore[return-value]
        start = history.start
        return convert_run(history, lo - start, hi - start, perp.funding_interval_hours, CONVERT[unit])

    def _bounds(self, history: SeriesWindow, now: datetime, days: float) -> tuple[int, int]:
        """Where the prints of (now − days, now] in the history start and stop in the series."""
        start, stop = history.start, history.stop
        return (bisect_right(self.times, now - _days(days), start, stop),
                bisect_right(self.times, now, start, stop))

    def _own_values(self, history: SeriesWindow, lo: int, hi: int) -> bool:
        """Whether prints[lo:hi] all have the values of the table, as the history converts them.

        The window's first print reads its interval from the print before it, which must be in
        the history too; no print inside may fall back to the quote's interval.
        """
        return lo > history.start and self._odd[hi] == self._odd[lo]

    def converted(self, unit: Unit) -> tuple[list[tuple[datetime, Decimal] | None], list[Decimal | None]]:
        """Each print's (time, value) in `unit`, and the values alone; None where the quote's
        interval stands in."""
        found = self._values.get(unit)
        if found is None:
            convert = CONVERT[unit]
            pairs = [None if iv is None else (p.time, convert(p.rate, iv))
                     for p, iv in zip(self.prints, self._intervals, strict=True)]
            found = self._values[unit] = (pairs, [None if v is None else v[1] for v in pairs])
        return found


@functools.lru_cache(maxsize=64)
def _days(days: float) -> timedelta:
    return timedelta(days=days)


def in_time_order(prints: tuple[FundingPrint, ...]) -> bool:
    """Whether the prints are in time order, as a table (and bisecting) needs them."""
    return all(a.time <= b.time for a, b in itertools.pairwise(prints))
