"""Builders for market-and-portfolio snapshots in the public JSON format, for tests and examples."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

AS_OF = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def closes(price: float, days: int = 45, daily_vol: float = 0.02, spike_last: int = 0,
           spike_vol: float = 0.08, end: datetime = AS_OF) -> list[list[str]]:
    """Deterministic zig-zag closes ending at `price`: calm returns, then an optional spike."""
    rets = []
    for i in range(days):
        vol = spike_vol if i >= days - spike_last else daily_vol
        rets.append(vol if i % 2 == 0 else -vol)
    values = [price]
    for r in reversed(rets):
        values.append(values[-1] / math.exp(r))
    values.reverse()
    start = end.date() - timedelta(days=days)
    return [[(start + timedelta(days=i)).isoformat(), f"{v:.6f}"] for i, v in enumerate(values)]


def perp(asset: str, price: float, rate: float, interval_h: int = 8, history_days: int = 21,
         history_rate: float | None = None, as_of: datetime = AS_OF) -> dict[str, Any]:
    history_rate = rate if history_rate is None else history_rate
    n = history_days * 24 // interval_h
    last = as_of.replace(minute=0, second=0, microsecond=0)
    last -= timedelta(hours=last.hour % interval_h)
    prints = [[iso(last - timedelta(hours=interval_h * k)), f"{history_rate:.8f}"]
              for k in reversed(range(n))]
    return {"symbol": f"{asset}/USDT:USDT", "mark": f"{price * (1 + rate):.4f}", "index": f"{price:.4f}",
            "funding_rate": f"{rate:.8f}", "funding_interval_hours": interval_h,
            "timestamp": iso(as_of - timedelta(seconds=30)), "funding_history": prints}


def asset(price: float, *, rate: float | None = 0.0001, interval_h: int = 8, history_rate=None,
          future: tuple[float, int] | None = None, vol: float = 0.02, spike_last: int = 0,
          spike_vol: float = 0.08, name: str = "BTC", as_of: datetime = AS_OF,
          age_s: int = 30) -> dict[str, Any]:
    out: dict[str, Any] = {"spot": {"price": f"{price}", "timestamp": iso(as_of - timedelta(seconds=age_s))},
                           "closes": closes(price, daily_vol=vol, spike_last=spike_last,
                                           spike_vol=spike_vol, end=as_of)}
    if rate is not None:
        out["perp"] = perp(name, price, rate, interval_h, history_rate=history_rate, as_of=as_of)
    if future is not None:
        fprice, days = future
        expiry = as_of + timedelta(days=days)
        out["futures"] = [{"symbol": f"{name}/USDT:USDT-{expiry:%y%m%d}", "price": f"{fprice}",
                           "expiry": iso(expiry), "timestamp": iso(as_of - timedelta(seconds=30))}]
    return out


def snapshot(assets: dict[str, dict], balances: dict[str, float | str], *, fear_greed: int | None = 50,
             positions: list | None = None, strategy: dict | None = None, as_of: datetime = AS_OF,
             fg_age_h: int = 2) -> dict[str, Any]:
    doc: dict[str, Any] = {"as_of": iso(as_of), "quote": "USDT",
                           "portfolio": {"balances": {k: str(v) for k, v in balances.items()},
                                         "positions": positions or []},
                           "assets": assets}
    if strategy:
        doc["strategy"] = strategy
    if fear_greed is not None:
        doc["fear_greed"] = {"value": fear_greed, "timestamp": iso(as_of - timedelta(hours=fg_age_h)),
                             "history": [[(as_of.date() - timedelta(days=d)).isoformat(), fear_greed]
                                         for d in range(3, -1, -1)]}
    return doc


def settings_for(preset: str, assets: dict[str, dict] | None = None, **strategy: Any):
    """Validated settings for a preset over the given assets (default: BTC alone, majors)."""
    from core.config import settings_from_dict

    assets = assets or {"BTC": {}}
    return settings_from_dict({"strategy": {"preset": preset, **strategy}, "assets": assets})


def run(doc: dict, settings, states=None):
    """Parse, evaluate and plan one snapshot document; returns (evaluation, proposal)."""
    import json
    from decimal import Decimal

    from core.evaluate import evaluate
    from core.planner import plan
    from core.snapshot_io import parse_snapshot

    snap, portfolio, _ = parse_snapshot(json.loads(json.dumps(doc), parse_float=Decimal))
    ev = evaluate(snap, portfolio, settings, states or {})
    return ev, plan(ev, snap, portfolio, settings, strategy=settings.strategy.name, proposal_id="P-TEST")


FOUR = {"BTC": {"bucket": "majors", "split": 0.6}, "ETH": {"bucket": "majors", "split": 0.4},
        "SOL": {"bucket": "altcoins", "split": 0.5}, "XRP": {"bucket": "altcoins", "split": 0.5}}
PRICES = {"BTC": 60000, "ETH": 3000, "SOL": 150, "XRP": 0.5}


def four_assets(**kw: Any) -> dict[str, dict]:
    return {a: asset(p, name=a, **kw) for a, p in PRICES.items()}


def units(weights: dict[str, float], value: float = 100_000) -> dict[str, float]:
    """Balances holding `weights` of `value` at PRICES (USDT for the quote)."""
    return {a: (w * value / PRICES[a] if a in PRICES else w * value) for a, w in weights.items()}
