"""Replaying a `HistoryFrame` as the market snapshots the live bot would have seen, one per day.

Day D's snapshot is taken at the end of D (`as_of` = D+1 00:00 UTC): spot is D's close, the
perpetual carries the funding prints settled in the window up to and including `as_of` (its
rate is the latest print), closes and Fear & Greed cover the same window. A day with no close
for an asset repeats the last close with its own (old) timestamp, so evaluate() marks it stale
and no order is proposed from it. Nothing here reads files except `load_perp_closes`.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from core.config import Settings
from core.history_csv import BASIS_FILE, HistoryFrame, read_basis
from core.models import (
    AssetMarket,
    Close,
    FearGreed,
    FundingPrint,
    MarketSnapshot,
    PerpQuote,
    SpotQuote,
)
from core.signal_tables import CloseTable, PrintTable, in_time_order
from core.signals import ReplayedAssets, Unit, vol_ratios

EPSILON = timedelta(microseconds=1)
ONE_DAY = timedelta(days=1)
MIDNIGHT = time()
DEFAULT_INTERVAL = Decimal(8)
# A perpetual counts as listed on a day only if it printed funding within this time.
PERP_ALIVE = timedelta(hours=24)


def as_of_for(day: date) -> datetime:
    """The moment a day's snapshot is taken: the end of that UTC day (its close)."""
    return datetime.combine(day + ONE_DAY, MIDNIGHT, UTC)


def funding_days_needed(settings: Settings) -> int:
    """Days of funding prints the enabled persistence rules of the strategy look at, plus two."""
    r = settings.strategy.rules
    holds = [1]
    if r.funding_regime.enabled:
        holds += [r.funding_regime.hold_days, r.funding_regime.exit_hold_days]
    if r.recovery.enabled:
        holds.append(r.recovery.hold_days)
    if r.funding_extreme.enabled:
        holds.append(r.funding_extreme.hold_days)
    if r.negative_funding.enabled:
        holds.append(r.negative_funding.hold_days)
    if r.premium_regime.enabled:
        holds.append(r.premium_regime.hold_days)
    # One spare day so that the first print inside a window still has its predecessor, from
    # which its own interval is measured: verdicts are then the same as with a longer history.
    return max(holds) + 2


def closes_days_needed(settings: Settings) -> int:
    """Days of closes the enabled volatility and recovery rules look at, plus one."""
    r = settings.strategy.rules
    needs = [7]
    if r.volatility_spike.enabled:
        # The volatility baseline is the `long_days` before the short window (signals.vol_ratio).
        needs.append(r.volatility_spike.short_days + r.volatility_spike.long_days + 1)
    if r.recovery.enabled:  # its 60-day low, and volatility on the default 7/30 windows
        needs += [r.recovery.low_window_days, 7 + 30 + 1]
    return max(needs) + 1


def vol_windows(settings: Settings) -> set[tuple[int, int]]:
    """The (short_days, long_days) volatility ratios the enabled rules of the strategy read."""
    r = settings.strategy.rules
    windows = set()
    if r.volatility_spike.enabled:
        windows.add((r.volatility_spike.short_days, r.volatility_spike.long_days))
    if r.recovery.enabled:  # signals.vol_ratio's defaults
        windows.add((7, 30))
    return windows


def funding_units(settings: Settings) -> set[Unit]:
    """The units ("apr", "8h") in which the enabled persistence rules of the strategy read funding."""
    r = settings.strategy.rules
    units: set[Unit] = set()
    if r.funding_regime.enabled or r.recovery.enabled or r.premium_regime.enabled:
        units.add("apr")
    if r.funding_extreme.enabled or r.negative_funding.enabled:
        units.add("8h")
    return units


def window_days(settings: Settings) -> int:
    """What a live snapshot carries: `feeds.history_days`, widened to what the rules need."""
    return max(settings.feeds.history_days, funding_days_needed(settings), closes_days_needed(settings))


def load_perp_closes(
    folder: Path, assets: Sequence[str], start: date, end: date
) -> dict[str, dict[date, Decimal]]:
    """Daily perpetual closes per asset from perp_spot_basis_daily.csv (empty if the file is absent)."""
    folder = Path(folder)
    derived = folder / "derived" if (folder / "derived").is_dir() else folder
    path = derived / BASIS_FILE
    wanted = {a.upper() for a in assets}
    out: dict[str, dict[date, Decimal]] = {a: {} for a in wanted}
    if not path.is_file():
        return out
    for asset, day, _spot, perp, _basis in read_basis(path):
        if asset in wanted and start <= day <= end:
            out[asset][day] = perp
    return out


class Replay:
    """Per-day snapshots of one frame for one asset universe, built cheaply and cached.

    Each asset's closes and each perpetual's prints form one series with a signal table
    (core/signal_tables.py); a day's snapshot carries windows of them (bisected, not copied
    item by item), whose signals are looked up in tables worked out once for the whole history.
    The same snapshot object is reused by every run sharing this replay (all presets, baselines
    and sweeps).
    """

    def __init__(
        self,
        frame: HistoryFrame,
        settings: Settings,
        perp_closes: Mapping[str, Mapping[date, Decimal]] | None = None,
        *,
        funding_days: int | None = None,
        closes_days: int | None = None,
    ) -> None:
        self.frame = frame
        self.quote = settings.quote
        self.funding_days = funding_days or window_days(settings)
        self.closes_days = closes_days or window_days(settings)
        self.assets = tuple(a for a in settings.assets if a in frame.closes)
        self.perp_symbols = {
            a: s for a in self.assets if (s := settings.perp_symbol(a)) and s in frame.funding
        }
        self.perp_symbol_set = frozenset(self.perp_symbols.values())
        self.perp_closes = perp_closes or {}
        self._closes: dict[str, CloseTable] = {}
        self._close_days: dict[str, tuple[date, ...]] = {}
        self._spots: dict[str, list[SpotQuote | None]] = {}
        for asset in self.assets:
            series = tuple(
                Close(d, p) for d, p in zip(frame.days, frame.closes[asset], strict=True) if p is not None
            )
            self._closes[asset] = CloseTable(series)
            self._close_days[asset] = tuple(c.day for c in series)
            self._spots[asset] = [None] * len(series)  # the quote of each close, made when first seen
        # Prints out of time order (never from a feed) get no table: their windows are plain
        # tuples, worked out on demand as a live snapshot's are.
        self._prints: dict[str, PrintTable | None] = {
            s: PrintTable(frame.funding[s]) if in_time_order(frame.funding[s]) else None
            for s in self.perp_symbols.values()}
        self._funding_span = timedelta(days=self.funding_days) - EPSILON
        self._closes_span = timedelta(days=self.closes_days)
        self._fg_span = timedelta(days=self.funding_days)
        self._fg_days = tuple(sorted(frame.fear_greed))
        self._fg_pairs = tuple((d, frame.fear_greed[d]) for d in self._fg_days)
        self._cache: dict[date, MarketSnapshot] = {}
        # Every book of a lockstep run settles the same day's prints: look them up once.
        self._settled: dict[tuple[str, datetime, datetime], tuple[FundingPrint, ...]] = {}

    def trading_days(self, start: date | None = None, end: date | None = None) -> tuple[date, ...]:
        """Days in [start, end] from the first day on which every asset has a close."""
        first = max((t.closes[0].day for t in self._closes.values() if t.closes), default=None)
        if first is None or len(self._closes) < len(self.assets) or not self.assets:
            return ()
        lo = max(first, start) if start else first
        return tuple(d for d in self.frame.days if d >= lo and (end is None or d <= end))

    def prepare(self, days: Iterable[date], strategies: Iterable[Settings]) -> None:
        """Build the snapshots of `days` and the signal tables the strategies' rules read, now.

        Done before a fork, the work is shared by both processes (core/backtest_parallel.py).
        """
        collecting = gc.isenabled()
        # Tens of thousands of small acyclic objects: the collector would only walk them (and the
        # history) again and again while they are built.
        gc.disable()
        try:
            self._prepare(days, strategies)
        finally:
            if collecting:
                gc.enable()

    def _prepare(self, days: Iterable[date], strategies: Iterable[Settings]) -> None:
        windows: set[tuple[int, int]] = set()
        units: set[Unit] = set()
        for settings in strategies:
            windows |= vol_windows(settings)
            units |= funding_units(settings)
        for closes in self._closes.values():
            for short, long in sorted(windows):
                closes.ratios(short, long)
        for prints in filter(None, self._prints.values()):
            for unit in sorted(units):
                prints.converted(unit)
        for day in days:
            snap = self.snapshot(day)
            for short, long in windows:  # every asset's ratios, kept with the snapshot (core/signals.py)
                vol_ratios(snap, short, long)

    def _spot(self, asset: str, day: date) -> tuple[SpotQuote, tuple[Close, ...]] | None:
        days = self._close_days[asset]
        stop = bisect_right(days, day)
        if stop == 0:
            return None
        spots = self._spots[asset]
        table = self._closes[asset]
        spot = spots[stop - 1]
        if spot is None:
            last = table.closes[stop - 1]
            spot = spots[stop - 1] = SpotQuote(last.price, as_of_for(last.day))
        first = bisect_right(days, day - self._closes_span, 0, stop)
        return spot, table.window(first, stop)

    def _perp(self, asset: str, as_of: datetime, index: Decimal, day: date) -> PerpQuote | None:
        symbol = self.perp_symbols.get(asset)
        if symbol is None:
            return None
        table = self._prints[symbol]
        if table is None:
            prints = self.frame.funding_between(symbol, as_of - self._funding_span, as_of + EPSILON)
        else:  # the prints of (as_of − funding_days, as_of]
            lo = bisect_left(table.times, as_of - self._funding_span)
            prints = table.window(lo, bisect_left(table.times, as_of + EPSILON, lo))
        if not prints or prints[-1].time <= as_of - PERP_ALIVE:
            return None
        interval = DEFAULT_INTERVAL
        if len(prints) > 1:
            interval = _interval(prints[-1].time - prints[-2].time)
        mark = self.perp_closes.get(asset, {}).get(day, index)
        # symbol, mark, index, funding_rate, funding_interval_hours, timestamp, funding_history
        return PerpQuote(symbol, mark, index, prints[-1].rate, interval, as_of, prints)

    def _fear_greed(self, day: date) -> FearGreed | None:
        stop = bisect_right(self._fg_days, day)
        if stop == 0:
            return None
        first = bisect_right(self._fg_days, day - self._fg_span, 0, stop)
        last, value = self._fg_pairs[stop - 1]
        # alternative.me stamps each value at the start of its day.
        return FearGreed(value, datetime.combine(last, MIDNIGHT, UTC), self._fg_pairs[first:stop])

    def snapshot(self, day: date) -> MarketSnapshot:
        """The market as the bot would have seen it at the end of `day`."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        as_of = as_of_for(day)
        assets = ReplayedAssets()
        for asset in self.assets:
            found = self._spot(asset, day)
            if found is None:
                continue  # not listed yet: the asset is not part of this day's market
            spot, closes = found
            perp = self._perp(asset, as_of, spot.price, day)
            assets[asset] = AssetMarket(asset, spot, perp, (), closes)  # no dated futures in history
        snap = MarketSnapshot(as_of, self.quote, assets, self._fear_greed(day))
        self._cache[day] = snap
        return snap

    def funding_between(self, symbol: str, after: datetime, until: datetime) -> tuple[FundingPrint, ...]:
        """Prints of `symbol` settled in (after, until]: what a position held then pays or earns."""
        key = (symbol, after, until)
        prints = self._settled.get(key)
        if prints is None:
            if len(self._settled) > 64:
                self._settled.clear()
            prints = self._settled[key] = self.frame.funding_between(symbol, after + EPSILON,
                                                                     until + EPSILON)
        return prints


@lru_cache(maxsize=64)
def _interval(gap: timedelta) -> Decimal:
    """The funding interval a gap between the last two prints stands for (8 h if unusual)."""
    hours = Decimal(gap.total_seconds()) / 3600
    return hours.quantize(Decimal(1)) if 1 <= hours <= 8 else DEFAULT_INTERVAL


_last: tuple[HistoryFrame, Settings, Replay] | None = None


def snapshot_for_day(frame: HistoryFrame, day: date, settings: Settings) -> MarketSnapshot:
    """The market snapshot of `day` (taken at its end) for the assets of `settings`.

    Successive calls with the same frame and settings reuse one `Replay`, so a feed stepping
    through days pays the set-up once.
    """
    global _last
    if _last is None or _last[0] is not frame or _last[1] is not settings:
        _last = (frame, settings, Replay(frame, settings))
    return _last[2].snapshot(day)
