"""Helpers for the engine tests: loopback settings, a scripted feed, servers on their own thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from core.config import Settings, settings_from_dict
from core.market_feed import FeedReport, FeedStatus
from core.models import AssetMarket, Close, FearGreed, FundingPrint, MarketSnapshot, PerpQuote, SpotQuote
from core.planner import MarketRule
from tests.feeds import EXCHANGES

T = TypeVar("T")
T0 = datetime(2025, 6, 17, 9, 30, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BTC_ETH = {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "binance", "bucket": "altcoins"}}


def loopback_config(prefix: str, fng_url: str, store_path: Path, assets: Mapping[str, Any] | None = None,
                    *, retries: int = 1, timeout_seconds: float = 5.0, **top: Any) -> dict[str, Any]:
    """A config table whose exchanges and Fear & Greed are the loopback servers."""
    assets = dict(assets or BTC_ETH)
    used = {cfg.get("exchange", "binance") for cfg in assets.values()}
    exchanges = {n: {**EXCHANGES[n], "urls": {"*": prefix}, "timeout_ms": int(timeout_seconds * 1000)}
                 for n in used}
    return {"store_path": str(store_path), "assets": assets, "exchanges": exchanges,
            "feeds": {"fear_greed_url": fng_url, "retries": retries, "timeout_seconds": timeout_seconds},
            **top}


def loopback_settings(prefix: str, fng_url: str, store_path: Path, assets: Mapping[str, Any] | None = None,
                      **kw: Any) -> Settings:
    return settings_from_dict(loopback_config(prefix, fng_url, store_path, assets, **kw))


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path: Path, config: Mapping[str, Any]) -> Path:
    """A config file from a table (inline tables for the nested ones)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f'"{kk}" = {toml_value(vv)}' for kk, vv in v.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# ── a scripted feed ─────────────────────────────────────────────────────────────────────────


def closes(start_price: float, days: int, end: date, wiggle: float = 0.01) -> tuple[Close, ...]:
    """Gently alternating daily closes ending the day before `end`."""
    out, price = [], start_price
    for i in range(days):
        price *= 1 + (wiggle if i % 2 else -wiggle)
        out.append(Close(end - timedelta(days=days - i), Decimal(str(round(price, 2)))))
    return tuple(out)


def market(asset: str, price: str, at: datetime, *, rate: str = "0.0001", interval: int = 8) -> AssetMarket:
    p, step = Decimal(price), timedelta(hours=interval)
    last = EPOCH + (at - EPOCH) // step * step  # settlements on the UTC grid
    prints = tuple(FundingPrint(last - step * k, Decimal(rate)) for k in range(30, -1, -1))
    perp = PerpQuote(f"{asset}/USDT:USDT", p, p, Decimal(rate), Decimal(interval), at, prints, last + step)
    return AssetMarket(asset, SpotQuote(p, at), perp, (), closes(float(p), 45, at.date()))


def snapshot(at: datetime, *, fear_greed: int | None = 50, age: timedelta = timedelta(0),
             prices: Mapping[str, str] | None = None) -> MarketSnapshot:
    """BTC and ETH quoted `age` before `at`."""
    prices = prices or {"BTC": "100000", "ETH": "2500"}
    stamp = at - age
    assets = {a: market(a, p, stamp) for a, p in prices.items()}
    fg = FearGreed(fear_greed, stamp, ((stamp.date(), fear_greed),)) if fear_greed is not None else None
    return MarketSnapshot(at, "USDT", assets, fg)


class ScriptedFeed:
    """A MarketFeed answering from a script: a snapshot maker, and which feeds are up."""

    def __init__(self, make: Any = snapshot) -> None:
        self.make = make
        self.down: dict[str, str] = {}
        self.fetches = 0
        self.closed = 0
        self.rules: dict[str, MarketRule] = {}  # what the exchange's market metadata would say

    async def fetch(self, now: datetime) -> FeedReport:
        self.fetches += 1
        statuses = [FeedStatus("binance", "binance" not in self.down, self.down.get("binance", ""))]
        if "binance" in self.down:
            return FeedReport(None, (f"binance - markets: {self.down['binance']}",), tuple(statuses))
        return FeedReport(self.make(now), (), tuple(statuses))

    def sizing_rules(self) -> dict[str, MarketRule]:
        return dict(self.rules)

    async def refresh_markets(self, now: datetime) -> str:
        return "scripted"

    async def refresh_fear_greed(self, now: datetime) -> str:
        return "scripted"

    async def close(self) -> None:
        self.closed += 1


class Clock:
    """A settable clock."""

    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> datetime:
        self.t += timedelta(**kw)
        return self.t


def aged(snap: MarketSnapshot, **kw: float) -> MarketSnapshot:
    return replace(snap, as_of=snap.as_of + timedelta(**kw))


# ── servers on a thread of their own (for the CLI, which runs its own event loop) ────────────


class ServerThread:
    """The loopback exchange and Fear & Greed on a background event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.exchange: Any = None
        self.fng: Any = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def __enter__(self) -> ServerThread:
        from tests.fakes.exchange_server import FakeExchange
        from tests.fakes.fng_server import FakeFearGreed

        self.thread.start()

        async def start() -> None:
            self.exchange = FakeExchange()
            self.fng = FakeFearGreed()
            await self.exchange.start()
            await self.fng.start()

        self.call(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await self.exchange.close()
            await self.fng.close()

        try:
            self.call(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()
