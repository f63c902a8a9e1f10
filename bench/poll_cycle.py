"""Benchmark: one market poll of 30 assets on 3 exchanges against the loopback exchange.

Every request gets 100 ms of added latency. A concurrent poll should take about as long as its
slowest request (target: cycle / slowest ≤ 1.5). Shown for the first poll of a process and for a
steady-state one (new funding prints only, daily closes held); beside them the same first poll
done one request at a time, and both polls with ccxt's rate limiter on, as in production. The
loopback exchange runs in a process of its own: a real exchange does not share our event loop.
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
from tests.fakes.exchange_recordings import SharedDataMissing, shared_data_dir

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


async def timed_polls(settings: Settings, ccxt_overrides: dict[str, Any],
                      max_concurrency: int | None = None) -> list[tuple[float, FeedResult]]:
    """Load markets, then time two polls: the first of a process, and a steady-state one that
    asks only for new funding prints and has its daily closes already."""
    timings = []
    async with ExchangeClients(settings, ccxt_overrides) as clients:
        for name in settings.exchanges:
            await clients.load_markets(name)
        since: dict[str, datetime] = {}
        for _ in range(2):
            started = time.perf_counter()
            result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC), since,
                                                  max_concurrency=max_concurrency)
            timings.append((time.perf_counter() - started, result))
            since = {a: m.perp.funding_history[-1].time for a, m in result.markets.items()
                     if m.perp and m.perp.funding_history}
        if ccxt_overrides.get("enableRateLimit", True):
            # With the limiter on, ccxt sleeps 250 ms on close: not part of the poll.
            for client in (*(clients.spot(n) for n in settings.exchanges), clients.futures("binance")):
                client.timeout_on_exit = 0
    return timings


async def run(prefix: str) -> dict[str, Any]:
    settings = bench_settings(prefix)
    (wall, first), (warm_wall, warm) = await timed_polls(settings, NO_LIMITER)
    (seq_wall, seq), _ = await timed_polls(settings, NO_LIMITER, max_concurrency=1)
    (limited_wall, limited), (limited_warm_wall, _) = await timed_polls(settings, {})
    failures = sum(len(r.failures) for r in (first, warm, seq, limited))
    return {
        "assets": len(settings.assets),
        "added latency ms": int(LATENCY_S * 1000),
        "failures": failures,
        "first poll: requests": first.request_count,
        "first poll: cycle wall s": round(wall, 3),
        "first poll: slowest request s": round(first.slowest_request_s, 3),
        "first poll: cycle / slowest": round(wall / first.slowest_request_s, 2),
        "steady poll: requests": warm.request_count,
        "steady poll: cycle wall s": round(warm_wall, 3),
        "steady poll: slowest request s": round(warm.slowest_request_s, 3),
        "steady poll: cycle / slowest": round(warm_wall / warm.slowest_request_s, 2),
        "first poll sequential: wall s": round(seq_wall, 3),
        "speed-up vs sequential": round(seq_wall / wall, 1),
        "rate limiter on: first / steady wall s": f"{limited_wall:.2f} / {limited_warm_wall:.2f}",
    }


def main() -> dict[str, Any]:
    try:
        shared_data_dir()
    except SharedDataMissing as exc:
        return {"skipped": str(exc)}
    with loopback_exchange(LATENCY_S) as prefix:
        figures = asyncio.run(run(prefix))
    for key, value in figures.items():
        print(f"{key:40} {value}")
    return figures


if __name__ == "__main__":
    main()
