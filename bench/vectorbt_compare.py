"""Benchmark: Premia's backtest against vectorbt on the same threshold-rebalancing workload.

Workload: BTC, ETH, BNB, XRP, ADA spot, 18% each and 10% USDT, rebalanced back to target when
any asset drifts more than 5 percentage points, 10 bps fees, no slippage, daily closes
2020-01-01..2025-12-31, 100,000 USDT. Premia runs it through evaluate → plan → paper_fill (its
bands-only variant); vectorbt runs the planner's sizing rules (sells first, amounts floored to
1e-8, 10 USDT minimum, buys scaled to the cash) in a numba order function. The equity curves
must agree to the cent; the figure is the time ratio.

vectorbt is a benchmark-only extra, never a runtime dependency: install it in a separate bench
environment outside the repository (`python -m venv ../premia-bench && ../premia-bench/bin/pip
install -c constraints.txt -e '.[bench]'`) and run `../premia-bench/bin/python -m
bench.vectorbt_compare`. Checked here: vectorbt 1.2.0 (numba 0.68.1, numpy 2.4.6, pandas 3.1.1)
installs on Python 3.11. Without it, this benchmark reports itself skipped and says why.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

ASSETS = ("ADA", "BNB", "BTC", "ETH", "XRP")  # sorted: the planner's order within sells and buys
START, END = date(2020, 1, 1), date(2025, 12, 31)
WEIGHT, BAND_PP, FEE_BPS, MIN_NOTIONAL, INITIAL = 0.18, 5.0, 10.0, 10.0, 100_000.0
STEP = 1e-8  # amount precision (orders.amount_decimals = 8)


def premia_settings():
    from core.config import settings_from_dict

    return settings_from_dict({
        "assets": {a: {} for a in ASSETS},
        "strategy": {"preset": "premium-daa", "band_pp": BAND_PP,
                     "allocation": {"spot": WEIGHT * len(ASSETS), "stable": 0.1},
                     "rules": {"premium_regime": {"enabled": False},
                               "volatility_spike": {"enabled": False}}},
        "costs": {"spot_fee_bps": FEE_BPS, "futures_fee_bps": 0, "slippage_bps": 0,
                  "limit_offset_bps": 0},
        "orders": {"min_notional": MIN_NOTIONAL, "max_order_notional": 10**12},
    })


def run_premia(frame) -> tuple[float, list[tuple[date, Decimal]]]:
    from core.backtest import run_many, shared_replay, trading_days

    settings = premia_settings()
    started = time.perf_counter()
    replay = shared_replay(frame, settings, [settings.strategy.name])
    days, _ = trading_days(replay, START, END)
    [run] = run_many(replay, [(settings, "bands-only")], days, Decimal(int(INITIAL)))
    return time.perf_counter() - started, list(run.equity)


def _order_func():
    """The numba callbacks: plan the day's orders in pre_segment, emit them one by one."""
    import numpy as np
    from numba import njit
    from vectorbt.portfolio import nb
    from vectorbt.portfolio.enums import NoOrder

    @njit
    def floor_step(x):
        return np.floor(x / STEP) * STEP

    @njit
    def pre_segment(c, plan_col, plan_size, plan_n):
        i, cash = c.i, c.last_cash[c.group]
        n = c.to_col - c.from_col
        value = cash
        for k in range(n):
            value += c.last_position[c.from_col + k] * c.close[i, c.from_col + k]
        plan_n[0] = 0
        fire = False
        for k in range(n):
            col = c.from_col + k
            if abs(c.last_position[col] * c.close[i, col] / value - WEIGHT) * 100 > BAND_PP:
                fire = True
        if not fire:
            return ()
        cost = FEE_BPS / 10_000
        proceeds, need = cash, 0.0
        buys = np.zeros(n)
        for k in range(n):  # sells first, in asset order
            col = c.from_col + k
            price, held = c.close[i, col], c.last_position[col]
            delta = WEIGHT * value - held * price
            if delta < 0:
                amount = floor_step(min(-delta / price, held))
                if amount > 0 and amount * price >= MIN_NOTIONAL:
                    plan_col[plan_n[0]], plan_size[plan_n[0]] = col, -amount
                    plan_n[0] += 1
                    proceeds += amount * price * (1 - cost)
            elif delta > 0:
                amount = floor_step(delta / price)
                if amount > 0 and amount * price >= MIN_NOTIONAL:
                    buys[k] = amount
                    need += amount * price * (1 + cost)
        scale = 1.0 if need <= proceeds or need == 0 else max(0.0, proceeds) / need
        for k in range(n):
            if buys[k] > 0:
                price = c.close[i, c.from_col + k]
                amount = buys[k] if scale == 1.0 else floor_step(buys[k] * scale)
                if amount > 0 and amount * price >= MIN_NOTIONAL:
                    plan_col[plan_n[0]], plan_size[plan_n[0]] = c.from_col + k, amount
                    plan_n[0] += 1
        return ()

    @njit
    def flex_order(c, plan_col, plan_size, plan_n):
        if c.call_idx >= plan_n[0]:
            return -1, NoOrder
        col = plan_col[c.call_idx]
        return col, nb.order_nb(size=plan_size[c.call_idx], price=c.close[c.i, col], fees=FEE_BPS / 10_000)

    return pre_segment, flex_order


def run_vectorbt(frame) -> tuple[float, float, list[float]]:
    """(seconds including numba compilation, seconds once compiled, value per day)."""
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    days = [d for d in frame.complete_days() if START <= d <= END]
    index = {d: i for i, d in enumerate(frame.days)}
    close = pd.DataFrame({a: [float(frame.closes[a][index[d]]) for d in days] for a in ASSETS},
                         index=pd.DatetimeIndex(days))
    pre_segment, flex_order = _order_func()
    plan_col, plan_size, plan_n = (np.zeros(len(ASSETS), dtype=np.int64), np.zeros(len(ASSETS)),
                                   np.zeros(1, dtype=np.int64))

    def simulate():
        return vbt.Portfolio.from_order_func(
            close, flex_order, plan_col, plan_size, plan_n, flexible=True, init_cash=INITIAL,
            cash_sharing=True, group_by=True, pre_segment_func_nb=pre_segment,
            pre_segment_args=(plan_col, plan_size, plan_n), max_orders=len(days) * len(ASSETS))

    cold = time.perf_counter()
    simulate()
    cold = time.perf_counter() - cold
    warm = time.perf_counter()
    pf = simulate()
    warm = time.perf_counter() - warm
    return cold, warm, [float(v) for v in pf.value().to_numpy()]


def main() -> dict[str, Any]:
    try:
        import vectorbt  # noqa: F401
    except ImportError:
        # No square brackets: the bench table is rich markup, which would swallow "[bench]".
        return {"skipped": "vectorbt is not installed in this interpreter; it is a bench-only extra "
                           "(pyproject's 'bench' extra): install it in a separate venv with premia and "
                           "run python -m bench.vectorbt_compare there"}
    from core.backtest_data import csv_folder, from_csv
    from core.history_csv import default_data_dir

    if csv_folder(default_data_dir()) is None:
        return {"skipped": f"no history CSVs under {default_data_dir()} (set PREMIA_SHARED_DATA)"}
    frame = from_csv(default_data_dir(), list(ASSETS), START, END).frame
    premia_s, equity = run_premia(frame)
    cold, warm, values = run_vectorbt(frame)
    diffs = [abs(float(v) - w) for (_, v), w in zip(equity, values, strict=True)]
    worst = max(diffs)
    return {
        "days": len(equity),
        "final value premia": f"{equity[-1][1]:.2f}",
        "final value vectorbt": f"{values[-1]:.2f}",
        "largest daily difference": f"{worst:.1e}",
        "same to the cent": worst < 0.005,
        "premia s": round(premia_s, 3),
        "vectorbt s (compiled)": round(warm, 4),
        "vectorbt s (with numba compile)": round(cold, 2),
        "ratio premia / vectorbt (compiled)": round(premia_s / warm, 1),
        "ratio premia / vectorbt (with compile)": round(premia_s / cold, 2),
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key:42s} {value}")
