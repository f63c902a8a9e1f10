"""Helpers for the feed tests: settings pointing at the loopback exchange, and test clients."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings, settings_from_dict
from core.feeds.clients import ExchangeClients
from tests.fakes.exchange_recordings import SharedDataMissing, shared_data_dir
from tests.fakes.exchange_server import FakeExchange

# Per TESTING.md: no rate limiter (about 50 ms a call) and no 250 ms sleep in close().
TEST_CCXT = {"enableRateLimit": False, "timeout_on_exit": 0}

EXCHANGES = {
    "binance": {"ccxt_id": "binance", "futures_ccxt_id": "binanceusdm"},
    "bybit": {"ccxt_id": "bybit", "futures_ccxt_id": None},
    "okx": {"ccxt_id": "okx", "futures_ccxt_id": None},
}


def require_shared_data() -> None:
    try:
        shared_data_dir()
    except SharedDataMissing as exc:
        pytest.skip(str(exc))


def make_settings(prefix: str, assets: dict[str, dict[str, Any]], *, retries: int = 2,
                  timeout_seconds: float = 10.0, exchange_overrides: dict | None = None,
                  history_days: int = 45, **top: Any) -> Settings:
    """Settings whose exchanges all talk to the loopback exchange at `prefix`."""
    used = {cfg.get("exchange", "binance") for cfg in assets.values()}
    exchanges = {}
    for name in used:
        cfg = {**EXCHANGES[name], "urls": {"*": prefix}, **(exchange_overrides or {}).get(name, {})}
        exchanges[name] = cfg
    return settings_from_dict({
        "assets": assets,
        "exchanges": exchanges,
        "feeds": {"retries": retries, "timeout_seconds": timeout_seconds, "history_days": history_days},
        **top,
    })


def clients_for(settings: Settings) -> ExchangeClients:
    return ExchangeClients(settings, TEST_CCXT)


async def started_exchange() -> FakeExchange:
    require_shared_data()
    server = FakeExchange()
    await server.start()
    return server
