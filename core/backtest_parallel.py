"""Backtests on two cores: the caller's process and one forked child, results back by pipe.

The child inherits the history frame through fork (nothing is pickled on the way in), and with
it the replay: every day's snapshot and the signal tables are built once, before the fork, for
both processes. The presets are split by their estimated cost, so that both finish together.
Without fork, or with one CPU, everything runs here.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar

from core.backtest import (
    DEFAULT_INITIAL,
    BacktestResult,
    Progress,
    preset_settings,
    run_presets,
    shared_replay,
    trading_days,
)
from core.config import Settings
from core.history_csv import HistoryFrame

T = TypeVar("T")
# The child reports its progress every this many days.
PROGRESS_EVERY = 25


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


def in_two(mine: Callable[[Progress], list[T]], theirs: Callable[[Progress], list[T]],
           weights: tuple[int, int], progress: Progress | None = None) -> list[T]:
    """Run `theirs` in a forked child and `mine` here; their lists concatenated (mine first).

    Each side reports (day, days); `progress` gets the weighted sum of both sides' days.
    """
    ctx = multiprocessing.get_context("fork")
    done = ctx.Value("i", 0)
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        def tick(i: int, n: int) -> None:
            if i % PROGRESS_EVERY == 0 or i == n:
                done.value = i
        try:
            send.send(("ok", theirs(tick)))
        except BaseException as exc:  # handed to the parent, which raises it
            send.send(("error", exc))
        finally:
            send.close()

    proc = ctx.Process(target=child, daemon=True)
    days = 0

    def both(i: int, n: int) -> None:
        nonlocal days
        days = n
        if progress is not None:
            progress(i * weights[0] + done.value * weights[1], n * sum(weights))

    # Objects alive at the fork (the history, the prepared replay, the modules) need no
    # collecting in either process while the runs go on: frozen, the collector leaves them
    # alone here and in the child, whose copy-on-write pages it would otherwise touch.
    gc.freeze()
    try:
        proc.start()
        send.close()
        try:
            ours = mine(both)
            while not receive.poll(0.05):
                both(days, days)
            status, payload = receive.recv()
        finally:
            receive.close()
            proc.join(timeout=5)
    finally:
        gc.unfreeze()
    if status == "error":
        raise payload
    both(days, days)
    return [*ours, *payload]


# What a preset's books cost, in units of one book's day without rules of its own (settlement,
# valuation, drift and the volatility spike, which every preset has). Measured per book over
# 2020–2026 on five assets: the premium table judges every asset's funding window every day;
# the funding overlays read every asset's rate and trade more; a regime rule reads one asset.
# The three baselines (drift alone, traded at most monthly or on the band) cost about 1.4 books
# together when the allocation holds hedged or futures legs to settle, 0.8 without. Only how
# evenly the work is split depends on these numbers, never a result.
BOOK_COST = 1.0
RULE_COSTS = {"premium_regime": 0.7, "funding_extreme": 0.4, "negative_funding": 0.3,
              "correction_hedge": 0.3, "funding_regime": 0.25, "recovery": 0.15, "fear_greed": 0.0}
BASELINES_COST = {True: 1.4, False: 0.8}  # whether the allocation holds hedged or futures legs


def preset_cost(settings: Settings, baselines: bool = True) -> float:
    """The estimated cost of backtesting a strategy (and its baselines), in book-days."""
    strategy = settings.strategy
    cost = BOOK_COST + sum(w for name, w in RULE_COSTS.items() if getattr(strategy.rules, name).enabled)
    legs = bool(strategy.allocation.hedged or strategy.allocation.futures)
    return cost + (BASELINES_COST[legs] if baselines else 0.0)


def split_presets(settings: Settings, presets: Sequence[str], baselines: bool = True) -> list[list[str]]:
    """The presets in two groups of the most even estimated cost (`preset_cost`)."""
    return split_by_cost(presets, [preset_cost(preset_settings(settings, p), baselines) for p in presets])


def split_by_cost(names: Sequence[str], costs: Sequence[float]) -> list[list[str]]:
    """`names` in two groups whose costs add up most evenly, each group in the given order.

    Every split is tried (2^(n−1) for n names: 64 for seven presets); of equally even ones the
    first found wins, so the same names and costs always split the same way.
    """
    total, best, best_load = sum(costs), 0, math.inf
    for mask in range(1 << max(len(names) - 1, 0)):  # the last name always in the second group
        load = sum(c for i, c in enumerate(costs) if mask >> i & 1)
        heavier = max(load, total - load)
        if heavier < best_load - 1e-9:
            best, best_load = mask, heavier
    groups = [[n for i, n in enumerate(names) if best >> i & 1],
              [n for i, n in enumerate(names) if not best >> i & 1]]
    return [g for g in groups if g]


def run_presets_parallel(
    frame: HistoryFrame,
    settings: Settings,
    presets: Sequence[str],
    start: date | None,
    end: date | None,
    *,
    initial_value: Decimal = DEFAULT_INITIAL,
    baselines: bool = True,
    progress: Progress | None = None,
    perp_closes: Mapping[str, Mapping[date, Decimal]] | None = None,
) -> list[BacktestResult]:
    """`run_presets` split over this process and a forked child; results in `presets` order."""
    if len(presets) < 2 or not can_fork():
        return run_presets(frame, settings, presets, start, end, initial_value=initial_value,
                           baselines=baselines, progress=progress, perp_closes=perp_closes)
    chosen = [preset_settings(settings, p) for p in presets]
    groups = split_by_cost(presets, [preset_cost(s, baselines) for s in chosen])
    if len(groups) < 2:
        return run_presets(frame, settings, presets, start, end, initial_value=initial_value,
                           baselines=baselines, progress=progress, perp_closes=perp_closes)
    replay = shared_replay(frame, settings, presets, perp_closes)
    days, _ = trading_days(replay, start, end)
    replay.prepare(days, chosen)  # before the fork: both processes share the work
    mine, theirs = groups

    def part(names: Sequence[str]) -> Callable[[Progress | None], list[BacktestResult]]:
        return lambda tick: run_presets(frame, settings, names, start, end, initial_value=initial_value,
                                        baselines=baselines, replay=replay, progress=tick,
                                        perp_closes=perp_closes)

    results = in_two(part(mine), part(theirs), (len(mine), len(theirs)), progress)
    by_name = {r.preset: r for r in results}
    return [by_name[p] for p in presets]
