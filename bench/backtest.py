"""Benchmark: the seven presets over 2020–2026 daily history of five assets, and a 150-run sweep.

Target: all seven presets in under 2 seconds on a 2-core machine. Figures are the best of a few
repeats (wall clock; the machine may be shared), with CPU seconds of this process beside them.
Run: `.venv/bin/python -m bench.backtest` (or `python -m bench backtest`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

ASSETS = {"BTC": "majors", "ETH": "majors", "BNB": "altcoins", "XRP": "altcoins", "ADA": "altcoins"}
START, END = date(2020, 1, 1), date(2026, 12, 31)
TARGET_S = 2.0
SWEEP_PRESET = "balanced-aggression"


def _best(work: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Best wall time of `repeats` runs, that run's CPU time in this process, and its result."""
    best = (float("inf"), 0.0, None)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if wall < best[0]:
            best = (wall, cpu, result)
    return best


def settings():
    from core.config import settings_from_dict

    return settings_from_dict({"assets": {a: {"bucket": b} for a, b in ASSETS.items()},
                               "strategy": {"preset": SWEEP_PRESET}})


def main(repeats: int = 3, sweep: bool = True) -> dict[str, Any]:
    from core.backtest import run_presets
    from core.backtest_data import csv_folder, from_csv
    from core.backtest_parallel import run_presets_parallel
    from core.backtest_sweep import run_sweep
    from core.config import load_presets
    from core.history_csv import default_data_dir

    if csv_folder(default_data_dir()) is None:
        return {"skipped": f"no history CSVs under {default_data_dir()} (set PREMIA_SHARED_DATA)"}
    s = settings()
    presets = list(load_presets())
    load_s, _, history = _best(lambda: from_csv(default_data_dir(), list(ASSETS), START, END), 1)
    frame, marks = history.frame, history.perp_closes
    days = len(frame.complete_days())

    def presets_run(parallel: bool, baselines: bool) -> Callable[[], Any]:
        runner = run_presets_parallel if parallel else run_presets
        return lambda: runner(frame, s, presets, None, None, baselines=baselines, perp_closes=marks)

    wall, _, results = _best(presets_run(True, False), repeats)
    serial, serial_cpu, _ = _best(presets_run(False, False), 1)
    with_base, _, _ = _best(presets_run(True, True), repeats)
    figures: dict[str, Any] = {
        "history": f"{frame.days[0]}..{frame.days[-1]}, {days} days, {', '.join(ASSETS)}",
        "load CSVs s": round(load_s, 3),
        "7 presets s (2 processes)": round(wall, 3),
        "7 presets target < 2 s": "met" if wall < TARGET_S else "NOT met",
        "7 presets s (1 process)": round(serial, 3),
        "7 presets CPU s (1 process)": round(serial_cpu, 3),
        "7 presets + 3 baselines each s (2 processes)": round(with_base, 3),
        "evaluations / s (1 process)": round(days * len(presets) / serial),
        "best preset by Sharpe": max(results, key=lambda r: r.strategy.performance.sharpe).preset,
    }
    if sweep:
        for variant in ("bands-only", "strategy"):
            took, _, points = _best(lambda v=variant: run_sweep(frame, s, SWEEP_PRESET, None, None,
                                                                variant=v, perp_closes=marks), 1)
            best = max(points, key=lambda p: p.result.performance.sharpe)
            label = f"sweep 150 ({SWEEP_PRESET} {variant}: 50 bands x 3 fees)"
            figures[f"{label} s"] = round(took, 2)
            figures[f"{label} best"] = (f"band {best.band_pp} pp, fees {best.spot_fee_bps} bps: "
                                        f"Sharpe {best.result.performance.sharpe:.2f}")
    return figures


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key:55s} {value}")
