"""Builders for backtest tests: settings for a handful of assets and hand-made history frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.config import Settings, settings_from_dict
from core.history_csv import HistoryFrame
from core.models import FundingPrint

ZERO_COSTS = {"spot_fee_bps": 0, "futures_fee_bps": 0, "slippage_bps": 0, "limit_offset_bps": 0}
START = date(2024, 1, 1)


def make_settings(
    assets: Mapping[str, Mapping[str, Any]] | None = None,
    strategy: Mapping[str, Any] | None = None,
    costs: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Settings:
    """Settings with the given assets (default BTC majors, ETH altcoins) and strategy table."""
    raw: dict[str, Any] = {
        "assets": dict(assets or {"BTC": {"bucket": "majors"}, "ETH": {"bucket": "altcoins"}}),
        "strategy": dict(strategy or {"preset": "balanced-aggression"}),
        **extra,
    }
    if costs is not None:
        raw["costs"] = dict(costs)
    return settings_from_dict(raw)


def frame(
    closes: Mapping[str, Sequence[float | None]],
    funding: Mapping[str, Sequence[float | str]] | None = None,
    fear_greed: int | None = 50,
    start: date = START,
) -> HistoryFrame:
    """Daily closes from `start`; funding rates printed at 00, 08 and 16 UTC of each day."""
    n = len(next(iter(closes.values())))
    days = tuple(start + timedelta(days=i) for i in range(n))
    columns = {a: tuple(None if p is None else Decimal(str(p)) for p in ps) for a, ps in closes.items()}
    prints = {}
    for asset, rates in (funding or {}).items():
        times = [datetime.combine(start, time(), UTC) + timedelta(hours=8 * k) for k in range(len(rates))]
        prints[f"{asset}/USDT:USDT"] = tuple(
            FundingPrint(t, Decimal(str(r))) for t, r in zip(times, rates, strict=True))
    fg = {} if fear_greed is None else dict.fromkeys(days, fear_greed)
    return HistoryFrame(days, columns, prints, fg, source="test")


def write_config(path: Path, store: Path, assets: str = "BTC ETH", preset: str = "balanced-aggression",
                 history_dir: Path | None = None) -> Path:
    """A config file whose store lives in a temporary folder (so no real store is read)."""
    names = assets.split()
    buckets = ["majors", "altcoins"]
    lines = [f'store_path = "{store}"']
    if history_dir is not None:
        lines.append(f'history_dir = "{history_dir}"')
    lines += ["[strategy]", f'preset = "{preset}"']
    for i, name in enumerate(names):
        lines += [f"[assets.{name}]", f'bucket = "{buckets[min(i, 1)]}"']
    path.write_text("\n".join(lines) + "\n")
    return path
