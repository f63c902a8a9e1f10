"""Parameter sweeps: one preset over many band widths and fee levels, all books in lockstep.

Every point replays the same days through the same snapshot objects, so a day's signals are
computed once for the whole sweep; only the books' own evaluations and trades repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.backtest import (
    DEFAULT_INITIAL,
    STRATEGY,
    Progress,
    RunResult,
    preset_settings,
    run_many,
    shared_replay,
    trading_days,
)
from core.backtest_parallel import can_fork, in_two
from core.config import Settings
from core.history_csv import HistoryFrame

# (spot fee, futures fee) in basis points: maker-like, the default taker, and a retail venue.
FEE_LEVELS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(2), Decimal(2)),
    (Decimal(10), Decimal(5)),
    (Decimal(25), Decimal(10)),
)


def default_bands(count: int = 50, step: Decimal = Decimal("0.5")) -> list[Decimal]:
    """`count` band widths in percentage points: 0.5, 1.0, … (50 → up to 25 pp)."""
    return [step * (i + 1) for i in range(count)]


@dataclass(frozen=True, slots=True)
class SweepPoint:
    band_pp: Decimal
    spot_fee_bps: Decimal
    futures_fee_bps: Decimal
    result: RunResult


Point = tuple[Decimal, Decimal, Decimal, Settings]


def sweep_settings(settings: Settings, preset: str, bands: Sequence[Decimal],
                   fee_levels: Sequence[tuple[Decimal, Decimal]]) -> list[Point]:
    """(band, spot fee, futures fee, settings) for every combination; allocation objects shared."""
    base = preset_settings(settings, preset)
    out = []
    for spot_fee, futures_fee in fee_levels:
        costs = base.costs.model_copy(update={"spot_fee_bps": spot_fee, "futures_fee_bps": futures_fee})
        for band in bands:
            if not 0 < band < 50:
                raise ValueError(f"band {band} pp is outside 0..50")
            strategy = base.strategy.model_copy(update={"band_pp": band})
            out.append((band, spot_fee, futures_fee,
                        base.model_copy(update={"strategy": strategy, "costs": costs})))
    return out


def run_sweep(
    frame: HistoryFrame,
    settings: Settings,
    preset: str,
    start: date | None,
    end: date | None,
    *,
    bands: Sequence[Decimal] | None = None,
    fee_levels: Sequence[tuple[Decimal, Decimal]] = FEE_LEVELS,
    variant: str = STRATEGY,
    initial_value: Decimal = DEFAULT_INITIAL,
    parallel: bool = True,
    progress: Progress | None = None,
    perp_closes: Mapping[str, Mapping[date, Decimal]] | None = None,
) -> list[SweepPoint]:
    """Every (band, fee level) of `preset` over [start, end]; on two cores when `parallel`."""
    points = sweep_settings(settings, preset, bands or default_bands(), fee_levels)
    replay = shared_replay(frame, settings, [preset], perp_closes)
    days, _ = trading_days(replay, start, end)

    def part(chunk: list) -> Callable[[Progress | None], list[RunResult]]:
        return lambda tick: run_many(replay, [(s, variant) for *_, s in chunk], days,
                                     initial_value, tick)

    if parallel and can_fork() and len(points) > 1:
        half = len(points) // 2
        results = in_two(part(points[:half]), part(points[half:]), (half, len(points) - half),
                         progress)
    else:
        results = part(points)(progress)
    return [SweepPoint(b, sf, ff, r) for (b, sf, ff, _), r in zip(points, results, strict=True)]
