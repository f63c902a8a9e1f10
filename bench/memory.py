"""Benchmark: start-up time and resident memory of a fresh process holding 3 exchanges' markets.

A child process imports ccxt, builds the Binance (spot + USDⓈ-M), Bybit and OKX clients against
the loopback exchange (run in another process) with their production market options, loads
every market list, and reports its peak resident set size (`resource`). Target: < 300 MB.
Run: `.venv/bin/python -m bench.memory`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Nothing heavy at module level: the child process measures its own imports.
REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 300
EXCHANGES = {
    "binance": {"ccxt_id": "binance", "futures_ccxt_id": "binanceusdm"},
    "bybit": {"ccxt_id": "bybit", "futures_ccxt_id": None},
    "okx": {"ccxt_id": "okx", "futures_ccxt_id": None},
}


def max_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def child(prefix: str) -> dict[str, Any]:
    """Runs in the fresh process: import, build clients, load markets, measure."""
    started = time.perf_counter()
    baseline = max_rss_mb()
    import ccxt.async_support  # noqa: F401  (timed on its own: the largest import)

    from core.config import settings_from_dict
    from core.feeds.clients import ExchangeClients

    import_s = time.perf_counter() - started
    after_import = max_rss_mb()
    settings = settings_from_dict({
        "assets": {"BTC": {"exchange": "binance"}},
        "exchanges": {name: {**cfg, "urls": {"*": prefix}} for name, cfg in EXCHANGES.items()},
    })

    async def load() -> dict[str, int]:
        async with ExchangeClients(settings, {"timeout_on_exit": 0}) as clients:
            counts = {}
            for name in settings.exchanges:
                markets = await clients.load_markets(name)
                counts[name] = sum(len(m) for m in markets.values())
            return counts

    load_started = time.perf_counter()
    counts = asyncio.run(load())
    return {
        "python baseline MB": round(baseline, 1),
        "import s": round(import_s, 2),
        "after imports MB": round(after_import, 1),
        "markets loaded": sum(counts.values()),
        "markets by exchange": counts,
        "load s": round(time.perf_counter() - load_started, 2),
        "max RSS MB": round(max_rss_mb(), 1),
    }


def main() -> dict[str, Any]:
    from bench.poll_cycle import loopback_exchange
    from tests.fakes.exchange_recordings import SharedDataMissing, shared_data_dir

    try:
        shared_data_dir()
    except SharedDataMissing as exc:
        return {"skipped": str(exc)}
    with loopback_exchange(0.0) as prefix:
        # Linux carries a parent's peak RSS into a child it forks and execs; a small launcher
        # process in between keeps this process's own size out of the measurement.
        launcher = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
        out = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "bench.memory",
                              "--child", prefix], cwd=REPO, capture_output=True, text=True,
                             check=True, timeout=300)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    grown = figures["max RSS MB"] - figures["after imports MB"]
    figures["MB per 1000 markets"] = round(grown / figures["markets loaded"] * 1000, 1)
    figures[f"under {TARGET_MB} MB"] = figures["max RSS MB"] < TARGET_MB
    for key, value in figures.items():
        print(f"{key:22} {value}")
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main()
