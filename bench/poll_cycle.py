"""Benchmark: one market poll of 30 assets on 3 exchanges against the loopback exchange.

Every request gets 100 ms of added latency. A concurrent poll should take about as long as its
slowest request (target: cycle / slowest ≤ 1.5); the same poll done one request at a time is
shown beside it, and so is the poll with ccxt's rate limiter on, as in production. The loopback
exchange runs in a process of its own, as a real exchange would not share our event loop.
Run: `.venv/bin/python -m bench.poll_cycle`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import Settings, settings_from_dict
from core.feeds.clients import ExchangeClients
from core.feeds.exchange import FeedResult, fetch_markets_snapshot
from tests.fakes.exchange_server import SharedDataMissing, shared_data_dir

REPO = Path(__file__).resolve().parent.parent

LATENCY_S = 0.100
ASSETS = {
    "binance": "BTC ETH SOL XRP BNB DOGE ADA WIF LINK AVAX",
    "bybit": "TRX LTC NEAR OP ARB APT SUI SEI TIA INJ",
    "okx": "DOT ATOM FIL UNI AAVE BCH ETC XLM HBAR ORDI",
}
EXCHANGES = {
    "binance": {"ccxt_id": "binance", "futures_ccxt_id": "binanceusdm"},
    "bybit": {"ccxt_id": "bybit", "futures_ccxt_id": None},
    "okx": {"ccxt_id": "okx", "futures_ccxt_id": None},
}
NO_LIMITER = {"enableRateLimit": False, "timeout_on_exit": 0}


def bench_settings(prefix: str) -> Settings:
    assets = {a: {"exchange": ex} for ex, names in ASSETS.items() for a in names.split()}
    exchanges = {name: {**cfg, "urls": {"*": prefix}} for name, cfg in EXCHANGES.items()}
    return settings_from_dict({"assets": assets, "exchanges": exchanges, "feeds": {"retries": 0}})


@contextmanager
def loopback_exchange(latency_s: float) -> Iterator[str]:
    """Run the loopback exchange in a child process; yield its URL prefix."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.exchange_server", str(latency_s)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def timed_poll(settings: Settings, ccxt_overrides: dict[str, Any],
                     max_concurrency: int | None = None) -> tuple[float, FeedResult]:
    """Load markets, then time one poll."""
    async with ExchangeClients(settings, ccxt_overrides) as clients:
        for name in settings.exchanges:
            await clients.load_markets(name)
        started = time.perf_counter()
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC),
                                              max_concurrency=max_concurrency)
        wall = time.perf_counter() - started
        if not ccxt_overrides.get("enableRateLimit", True):
            return wall, result
        # With the limiter on, ccxt sleeps 250 ms on close: not part of the poll.
        for client in (*(clients.spot(n) for n in settings.exchanges), clients.futures("binance")):
            client.timeout_on_exit = 0
        return wall, result


async def run(prefix: str) -> dict[str, Any]:
    settings = bench_settings(prefix)
    wall, result = await timed_poll(settings, NO_LIMITER)
    seq_wall, seq = await timed_poll(settings, NO_LIMITER, max_concurrency=1)
    limited_wall, limited = await timed_poll(settings, {})
    return {
        "assets": len(settings.assets),
        "requests": result.request_count,
        "failures": len(result.failures) + len(seq.failures) + len(limited.failures),
        "added latency ms": int(LATENCY_S * 1000),
        "cycle wall s": round(wall, 3),
        "slowest request s": round(result.slowest_request_s, 3),
        "cycle / slowest (target <= 1.5)": round(wall / result.slowest_request_s, 2),
        "sequential wall s": round(seq_wall, 3),
        "speed-up vs sequential": round(seq_wall / wall, 1),
        "cycle wall s, rate limiter on": round(limited_wall, 3),
    }


def main() -> dict[str, Any]:
    try:
        shared_data_dir()
    except SharedDataMissing as exc:
        return {"skipped": str(exc)}
    with loopback_exchange(LATENCY_S) as prefix:
        figures = asyncio.run(run(prefix))
    for key, value in figures.items():
        print(f"{key:34} {value}")
    return figures


if __name__ == "__main__":
    main()
