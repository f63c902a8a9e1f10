"""Faults on Bybit and OKX, and exchanges in maintenance: the poll completes with what it got."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.feeds.exchange import FeedResult, fetch_markets_snapshot
from tests.fakes.exchange_hosts import BINANCE_SPOT, BYBIT, OKX
from tests.fakes.exchange_server import FakeExchange, Fault
from tests.feeds import clients_for, make_settings

THREE = {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "bybit"}, "SOL": {"exchange": "okx"}}
OKX_TICKER = "/api/v5/market/ticker"
OKX_FUNDING = "/api/v5/public/funding-rate"
BYBIT_TICKERS = "/v5/market/tickers"


pytestmark = pytest.mark.usefixtures("short_retry_waits")



async def poll(exchange: FakeExchange, **kw) -> FeedResult:
    settings = make_settings(exchange.prefix, THREE, **kw)
    async with clients_for(settings) as clients:
        for name in ("binance", "bybit", "okx"):
            await clients.load_markets(name)
        return await fetch_markets_snapshot(clients, settings, datetime.now(UTC))


def failures(result: FeedResult) -> set[tuple]:
    return {(f.exchange, f.asset, f.what, f.kind) for f in result.failures}


async def test_okx_in_maintenance_is_one_transient_failure_and_the_others_go_on(exchange) -> None:
    maintenance = {"code": "50001", "msg": "Service temporarily unavailable. Try again later.", "data": []}
    exchange.inject(OKX, OKX_TICKER, Fault("status", 200, maintenance))
    result = await poll(exchange, retries=1)
    assert failures(result) == {("okx", "SOL", "spot", "transient")}
    assert "OnMaintenance" in result.failures[0].message
    assert result.markets["SOL"].spot is None and result.markets["SOL"].perp is not None
    assert result.markets["BTC"].spot is not None and result.markets["ETH"].spot is not None


async def test_binance_system_maintenance_is_transient_and_retried(exchange) -> None:
    exchange.inject(BINANCE_SPOT, "/api/v3/ticker/24hr",
                    Fault("status", 503, {"code": 1, "msg": "System is under maintenance."}))
    result = await poll(exchange, retries=2)
    assert failures(result) == {("binance", "BTC", "spot", "transient")}
    assert "OnMaintenance" in result.failures[0].message
    assert len(exchange.requests_to(BINANCE_SPOT, "/api/v3/ticker/24hr")) == 3
    assert result.markets["BTC"].perp is not None and result.markets["SOL"].spot is not None


@pytest.mark.parametrize("status", [200, 429])
async def test_bybit_rate_limit_is_retried_then_succeeds(exchange, status: int) -> None:
    too_many = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}
    exchange.inject(BYBIT, BYBIT_TICKERS, Fault("status", status, too_many, times=1))
    result = await poll(exchange, retries=2)
    assert result.failures == ()
    assert result.markets["ETH"].spot is not None and result.markets["ETH"].perp is not None


async def test_bybit_malformed_json_is_permanent_and_stays_with_bybit(exchange) -> None:
    exchange.malformed(BYBIT, BYBIT_TICKERS)
    result = await poll(exchange, retries=2)
    assert {f[0] for f in failures(result)} == {"bybit"}
    assert all(f[3] == "permanent" for f in failures(result))
    assert result.markets["BTC"].spot is not None and result.markets["SOL"].perp is not None


async def test_okx_timeout_on_funding_is_transient_and_the_spot_price_is_kept(exchange) -> None:
    exchange.delay(OKX, OKX_FUNDING, 5.0)
    result = await poll(exchange, retries=1, exchange_overrides={"okx": {"timeout_ms": 300}})
    assert failures(result) == {("okx", "SOL", "funding", "transient")}
    assert "RequestTimeout" in result.failures[0].message
    assert result.markets["SOL"].spot is not None
    assert result.markets["ETH"].perp is not None


async def test_okx_503_outage_spares_binance_and_bybit(exchange) -> None:
    for path in (OKX_TICKER, OKX_FUNDING, "/api/v5/public/mark-price"):
        exchange.fail(OKX, path, 503)
    result = await poll(exchange, retries=1)
    assert {f[0] for f in failures(result)} == {"okx"}
    assert all(f[3] == "transient" for f in failures(result))
    assert result.markets["BTC"].perp is not None and result.markets["ETH"].perp is not None
