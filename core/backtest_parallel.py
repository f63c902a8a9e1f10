"""Backtests on two cores: the caller's process and one forked child, results back by pipe.

The child inherits the history frame through fork (nothing is pickled on the way in). Presets
that read the same funding series are kept in one process so that each process computes a
day's signals once for all of its runs. Without fork, or with one CPU, everything runs here.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar

from core.backtest import DEFAULT_INITIAL, BacktestResult, Progress, preset_settings, run_presets
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
    # Objects alive at the fork (the history, the modules) need no collecting in either process:
    # freezing them keeps the collector off them, and off the child's copy-on-write pages.
    gc.freeze()
    try:
        proc.start()
    finally:
        gc.unfreeze()
    send.close()
    days = 0

    def both(i: int, n: int) -> None:
        nonlocal days
        days = n
        if progress is not None:
            progress(i * weights[0] + done.value * weights[1], n * sum(weights))

    try:
        ours = mine(both)
        while not receive.poll(0.05):
            both(days, days)
        status, payload = receive.recv()
    finally:
        receive.close()
        proc.join(timeout=5)
    if status == "error":
        raise payload
    both(days, days)
    return [*ours, *payload]


def signal_family(settings: Settings) -> tuple[bool, bool]:
    """Which funding series a strategy's rules read: (APR series, per-8h series)."""
    r = settings.strategy.rules
    return (r.funding_regime.enabled or r.recovery.enabled,
            r.funding_extreme.enabled or r.negative_funding.enabled)


def split_presets(settings: Settings, presets: Sequence[str], parts: int = 2) -> list[list[str]]:
    """Presets in `parts` groups of similar size; presets reading a funding series stay together.

    Presets that read no funding series cost the same anywhere, so they fill the gaps last.
    """
    families: dict[tuple[bool, bool], list[str]] = {}
    loose: list[str] = []
    for p in presets:
        family = signal_family(preset_settings(settings, p))
        (families.setdefault(family, []) if any(family) else loose).append(p)
    groups: list[list[str]] = [[] for _ in range(parts)]
    for members in sorted(families.values(), key=len, reverse=True):
        min(groups, key=len).extend(members)
    for p in loose:
        min(groups, key=len).append(p)
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
    groups = split_presets(settings, presets) if len(presets) > 1 and can_fork() else [list(presets)]

    def part(names: Sequence[str]) -> Callable[[Progress | None], list[BacktestResult]]:
        return lambda tick: run_presets(frame, settings, names, start, end, initial_value=initial_value,
                                        baselines=baselines, progress=tick, perp_closes=perp_closes)

    if len(groups) == 1:
        return part(presets)(progress)
    mine, theirs = groups

    results = in_two(part(mine), part(theirs), (len(mine), len(theirs)), progress)
    by_name = {r.preset: r for r in results}
    return [by_name[p] for p in presets]
