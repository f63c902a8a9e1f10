"""Backtests on two cores: the caller's process and one forked child, results back by pipe.

The child inherits the history frame through fork (nothing is pickled on the way in), and with
it the replay: every day's snapshot and the signal tables are built once, before the fork, for
both processes. The books (each preset's strategy and baselines) are split by their estimated
cost, so that both processes finish together. Without fork, or with one CPU, everything runs
here.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar

from core.backtest import (
    BASELINES,
    DEFAULT_INITIAL,
    STRATEGY,
    VARIANTS,
    BacktestResult,
    Progress,
    RunResult,
    by_preset,
    preset_settings,
    run_many,
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


def book_cost(settings: Settings, variant: str = STRATEGY) -> float:
    """The estimated cost of one book of a backtest (the strategy or a baseline), in book-days."""
    strategy = settings.strategy
    if variant == STRATEGY:
        rules = strategy.rules
        return BOOK_COST + sum(w for name, w in RULE_COSTS.items() if getattr(rules, name).enabled)
    legs = bool(strategy.allocation.hedged or strategy.allocation.futures)
    return BASELINES_COST[legs] / len(BASELINES)


def split_by_cost(costs: Sequence[float]) -> tuple[list[int], list[int]]:
    """The indices of `costs` in two groups whose costs add up as evenly as can be, each in order.

    Exact on costs rounded to a twentieth: every reachable sum is kept with the first set of
    items found to make it, so the same costs always split the same way. The first group is the
    lighter one (the caller's process also gathers the results).
    """
    units = [round(c * 20) for c in costs]
    made: dict[int, int] = {0: 0}  # a reachable sum → the items (a bit mask) that first made it
    for i, unit in enumerate(units):
        for total, items in list(made.items()):
            made.setdefault(total + unit, items | 1 << i)
    whole = sum(units)
    items = made[min(made, key=lambda t: (max(t, whole - t), t))]
    return ([i for i in range(len(costs)) if items >> i & 1],
            [i for i in range(len(costs)) if not items >> i & 1])


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
    """`run_presets` with its books split over this process and a forked child by estimated cost.

    The books of one preset (strategy and baselines) may run in different processes: each is
    stepped alone through the same days, so where it runs changes nothing in its results.
    """
    variants = VARIANTS if baselines else (STRATEGY,)
    if len(presets) * len(variants) < 2 or not can_fork():
        return run_presets(frame, settings, presets, start, end, initial_value=initial_value,
                           baselines=baselines, progress=progress, perp_closes=perp_closes)
    chosen = [preset_settings(settings, p) for p in presets]
    books = [(s, v) for s in chosen for v in variants]
    mine, theirs = split_by_cost([book_cost(s, v) for s, v in books])
    replay = shared_replay(frame, settings, presets, perp_closes)
    days, notes = trading_days(replay, start, end)
    replay.prepare(days, chosen)  # before the fork: both processes share the work

    def part(indices: Sequence[int]) -> Callable[[Progress], list[RunResult]]:
        return lambda tick: run_many(replay, [books[i] for i in indices], days, initial_value, tick)

    results = in_two(part(mine), part(theirs), (len(mine), len(theirs)), progress)
    in_order = [result for _, result in sorted(zip([*mine, *theirs], results, strict=True),
                                               key=lambda pair: pair[0])]
    return by_preset(presets, chosen, variants, in_order, days, frame.source, notes)
