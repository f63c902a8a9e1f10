"""Benchmark: one rule evaluation and plan for a 20-asset snapshot carrying 90 days of history.

Each timed evaluation gets a snapshot built afresh (new objects, prices moved a little), as a
live poll delivers one, so no result remembered by object identity (core/memo.py) is reused.
Two strategies over a portfolio holding every asset and two perpetuals: the default preset
(balanced-aggression: drift, volatility spike, Fear & Greed) and the same preset with every
per-asset rule switched on (premium table, negative funding, funding extreme, correction hedge
too), the latter also on a market without dated futures, where the premium table reads each
perpetual's funding prints over its window. Target: median evaluate + plan < 5 ms.
Run: `.venv/bin/python -m bench.rules`.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

ASSETS = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "WIF", "LINK", "AVAX", "TRX", "LTC", "NEAR",
          "OP", "ARB", "APT", "SUI", "SEI", "TIA", "INJ")
DAYS = 90
EVALUATIONS = 150
WARMUP = 10
TARGET_MS = 5.0
T0 = datetime(2025, 6, 17, 8, 0, 30, tzinfo=UTC)


EVERY_RULE = {"premium_regime": {"enabled": True}, "negative_funding": {"enabled": True},
              "funding_extreme": {"enabled": True}, "correction_hedge": {"enabled": True},
              "fear_greed": {"enabled": True}, "volatility_spike": {"enabled": True}}


def settings(rules: dict[str, Any] | None = None) -> Any:
    from core.config import settings_from_dict

    assets = {a: {"bucket": "majors" if a in ("BTC", "ETH") else "altcoins"} for a in ASSETS}
    return settings_from_dict({"assets": assets,
                               "strategy": {"preset": "balanced-aggression", "rules": rules or {}}})


def snapshot(rng: random.Random, now: datetime, bases: dict[str, float], futures: bool = True) -> Any:
    """20 assets: spot, a perpetual with 90 days of settled funding, a dated future, 90 closes."""
    from core.models import (
        AssetMarket,
        Close,
        FearGreed,
        FundingPrint,
        FutureQuote,
        MarketSnapshot,
        PerpQuote,
        SpotQuote,
    )

    assets = {}
    for i, asset in enumerate(ASSETS):
        interval = 4 if i % 5 == 4 else 8  # a quarter of them on 4h funding, as on Binance
        step = timedelta(hours=interval)
        last_settlement = now.replace(minute=0, second=0, microsecond=0)
        prints = tuple(
            FundingPrint(last_settlement - step * k, Decimal(f"{rng.gauss(0.0001, 0.0002):.8f}"))
            for k in range(DAYS * 24 // interval, -1, -1))
        price = bases[asset] * (1 + rng.gauss(0, 0.002))
        closes, p = [], bases[asset]
        for d in range(DAYS, 0, -1):
            p *= 1 + rng.gauss(0, 0.03 if d > 7 else 0.08)
            closes.append(Close((now - timedelta(days=d)).date(), Decimal(f"{p:.6g}")))
        spot = Decimal(f"{price:.6g}")
        mark = Decimal(f"{price * 1.0003:.6g}")
        perp = PerpQuote(f"{asset}/USDT:USDT", mark, spot, prints[-1].rate, Decimal(interval), now, prints,
                         last_settlement + step)
        future = FutureQuote(f"{asset}/USDT:USDT-250926", Decimal(f"{price * 1.02:.6g}"),
                             datetime(2025, 9, 26, 8, tzinfo=UTC), now)
        assets[asset] = AssetMarket(asset, SpotQuote(spot, now), perp, (future,) if futures else (),
                                    tuple(closes))
    history = tuple(((now - timedelta(days=d)).date(), rng.randint(10, 90)) for d in range(DAYS, 0, -1))
    return MarketSnapshot(now, "USDT", assets, FearGreed(history[-1][1], now, history))


def portfolio(bases: dict[str, float]) -> Any:
    from core.models import Portfolio, Position

    balances = {a: Decimal(f"{2_000 / bases[a]:.6f}") for a in ASSETS}
    balances["USDT"] = Decimal(20_000)
    positions = (Position("BTC/USDT:USDT", Decimal("-0.05")), Position("ETH/USDT:USDT", Decimal("1.5")))
    return Portfolio(balances, positions)


def measure(s: Any, evaluations: int, seed: int = 2025, futures: bool = True) -> dict[str, Any]:
    """Median and p95 of evaluate + plan over fresh snapshots, with the split between the two."""
    from core.evaluate import evaluate
    from core.planner import plan

    rng = random.Random(seed)
    bases = {a: 10 ** rng.uniform(-1, 5) for a in ASSETS}
    bases["BTC"], bases["ETH"] = 100_000.0, 2_500.0
    book = portfolio(bases)
    snaps = [snapshot(rng, T0 + timedelta(minutes=5 * i), bases, futures)
             for i in range(evaluations + WARMUP)]
    evaluate_ms, plan_ms, triggers, orders = [], [], 0, 0
    states: dict = {}
    for i, snap in enumerate(snaps):
        started = time.perf_counter()
        ev = evaluate(snap, book, s, states)
        middle = time.perf_counter()
        proposal = plan(ev, snap, book, s, strategy=s.strategy.name)
        done = time.perf_counter()
        states = dict(ev.states)  # as the engine persists them between cycles
        if i >= WARMUP:
            evaluate_ms.append((middle - started) * 1000)
            plan_ms.append((done - middle) * 1000)
            triggers += len(ev.triggers)
            orders += len(proposal.orders)
    total = sorted(a + b for a, b in zip(evaluate_ms, plan_ms, strict=True))
    return {"median": statistics.median(total), "p95": total[int(len(total) * 0.95) - 1],
            "evaluate": statistics.median(evaluate_ms), "plan": statistics.median(plan_ms),
            "triggers": triggers / evaluations, "orders": orders / evaluations}


def main(evaluations: int = EVALUATIONS) -> dict[str, Any]:
    default, every = measure(settings(), evaluations), measure(settings(EVERY_RULE), evaluations)
    perps = measure(settings(EVERY_RULE), evaluations, futures=False)
    return {
        "assets / history days / evaluations": f"{len(ASSETS)} / {DAYS} / {evaluations}",
        "default preset median ms (p95)": f"{default['median']:.2f} ({default['p95']:.2f})",
        "default preset evaluate / plan ms": f"{default['evaluate']:.2f} / {default['plan']:.2f}",
        "every rule median ms (p95)": f"{every['median']:.2f} ({every['p95']:.2f})",
        "every rule evaluate / plan ms": f"{every['evaluate']:.2f} / {every['plan']:.2f}",
        "triggers / orders per evaluation": f"{every['triggers']:.1f} / {every['orders']:.1f}",
        "every rule, no dated futures, median ms (p95)": f"{perps['median']:.2f} ({perps['p95']:.2f})",
        "target ms": TARGET_MS,
        "default preset meets target": default["median"] < TARGET_MS,
        "every rule meets target": every["median"] < TARGET_MS,
        "every rule, no dated futures, meets target": perps["median"] < TARGET_MS,
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
