"""Faults injected into the loopback exchange: what is retried, what is reported, what goes on."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from core.feeds.exchange import FeedResult, fetch_markets_snapshot
from tests.fakes.exchange_hosts import BINANCE_FAPI, BINANCE_SPOT, BYBIT, OKX
from tests.fakes.exchange_server import FakeExchange
from tests.feeds import clients_for, make_settings

TICKER = "/api/v3/ticker/24hr"
PREMIUM = "/fapi/v1/premiumIndex"


pytestmark = pytest.mark.usefixtures("short_retry_waits")



async def poll(exchange: FakeExchange, assets: dict, deadline_s: float | None = None, **kw) -> FeedResult:
    settings = make_settings(exchange.prefix, assets, **kw)
    async with clients_for(settings) as clients:
        for name in {a.get("exchange", "binance") for a in assets.values()}:
            await clients.load_markets(name)
        return await fetch_markets_snapshot(clients, settings, datetime.now(UTC), deadline_s=deadline_s)


def where(failure) -> tuple:
    return failure.exchange, failure.asset, failure.what, failure.kind


BTC_ETH = {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "binance"}}


async def test_429_is_retried_then_succeeds(exchange: FakeExchange) -> None:
    exchange.fail(BINANCE_SPOT, TICKER, 429, times=2, retry_after=1, query={"symbol": "BTCUSDT"})
    result = await poll(exchange, BTC_ETH, retries=3)
    assert result.failures == ()
    assert result.markets["BTC"].spot is not None
    asked = [r for r in exchange.requests_to(BINANCE_SPOT, TICKER) if r.query["symbol"] == "BTCUSDT"]
    assert len(asked) == 3


async def test_418_ban_is_transient_and_retried(exchange: FakeExchange) -> None:
    exchange.fail(BINANCE_FAPI, PREMIUM, 418, times=1, query={"symbol": "ETHUSDT"})
    result = await poll(exchange, BTC_ETH)
    assert result.failures == ()
    assert result.markets["ETH"].perp is not None


async def test_503_repeated_is_one_transient_failure_and_the_rest_goes_on(exchange: FakeExchange) -> None:
    exchange.fail(BINANCE_SPOT, TICKER, 503, query={"symbol": "BTCUSDT"})
    result = await poll(exchange, BTC_ETH, retries=2)
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert where(failure) == ("binance", "BTC", "spot", "transient")
    assert "ExchangeNotAvailable" in failure.message
    asked = [r for r in exchange.requests_to(BINANCE_SPOT, TICKER) if r.query["symbol"] == "BTCUSDT"]
    assert len(asked) == 3  # the first try and two retries
    btc, eth = result.markets["BTC"], result.markets["ETH"]
    assert btc.spot is None and btc.perp is not None and btc.closes
    assert eth.spot is not None and eth.perp is not None


async def test_a_slow_exchange_delays_no_other_beyond_its_own_timeout(exchange: FakeExchange) -> None:
    exchange.delay(BINANCE_FAPI, PREMIUM, 5.0)
    assets = {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "bybit"}, "SOL": {"exchange": "okx"}}
    started = time.monotonic()
    result = await poll(exchange, assets, retries=1,
                        exchange_overrides={"binance": {"timeout_ms": 500}})
    elapsed = time.monotonic() - started
    (failure,) = result.failures
    assert where(failure) == ("binance", "BTC", "funding", "transient")
    assert "RequestTimeout" in failure.message
    assert result.markets["BTC"].spot is not None and result.markets["BTC"].perp is None
    assert result.markets["ETH"].perp is not None and result.markets["SOL"].perp is not None
    # Two tries of 0.5 s each bound the whole poll, well short of the 5 s hang (the margin is for
    # a loaded CI machine); the other exchanges finished before the first try timed out.
    assert elapsed < 4.5
    poll_start = min(r.started for r in exchange.requests_to(BINANCE_FAPI, PREMIUM))
    others = exchange.requests_to(BYBIT) + exchange.requests_to(OKX)
    poll_requests = [r for r in others if r.started >= poll_start - 0.05]
    assert poll_requests and all(r.finished is not None and r.finished - poll_start < 0.5
                                 for r in poll_requests)


async def test_the_poll_deadline_cuts_a_hung_exchange(exchange: FakeExchange) -> None:
    exchange.delay(BINANCE_FAPI, PREMIUM, 5.0)
    started = time.monotonic()
    result = await poll(exchange, BTC_ETH, deadline_s=0.5)
    assert time.monotonic() - started < 2
    stuck = {(f.asset, f.what, f.kind) for f in result.failures}
    assert stuck == {("BTC", "funding", "transient"), ("ETH", "funding", "transient")}
    assert "deadline" in result.failures[0].message
    assert result.markets["BTC"].spot is not None


async def test_malformed_json_is_a_permanent_failure(exchange: FakeExchange) -> None:
    exchange.malformed(BINANCE_FAPI, PREMIUM, query={"symbol": "BTCUSDT"})
    result = await poll(exchange, BTC_ETH)
    (failure,) = result.failures
    assert (failure.asset, failure.kind) == ("BTC", "permanent")
    assert failure.what in ("funding", "perp")
    assert len([r for r in exchange.requests_to(BINANCE_FAPI, PREMIUM)
                if r.query.get("symbol") == "BTCUSDT"]) == 1  # not retried
    assert result.markets["BTC"].spot is not None and result.markets["ETH"].perp is not None


async def test_malformed_ticker_is_a_permanent_failure(exchange: FakeExchange) -> None:
    exchange.malformed(BINANCE_SPOT, TICKER, query={"symbol": "ETHUSDT"})
    result = await poll(exchange, BTC_ETH)
    (failure,) = result.failures
    assert (failure.asset, failure.what, failure.kind) == ("ETH", "spot", "permanent")


async def test_bad_symbol_is_permanent_for_that_asset_only(exchange: FakeExchange) -> None:
    exchange.binance_error(BINANCE_FAPI, PREMIUM, -1121, "Invalid symbol.", query={"symbol": "ETHUSDT"})
    result = await poll(exchange, BTC_ETH)
    (failure,) = result.failures
    assert where(failure) == ("binance", "ETH", "funding", "permanent")
    assert "BadSymbol" in failure.message
    assert len([r for r in exchange.requests_to(BINANCE_FAPI, PREMIUM)
                if r.query.get("symbol") == "ETHUSDT"]) == 1
    assert result.markets["ETH"].spot is not None and result.markets["ETH"].perp is None
    assert result.markets["BTC"].perp is not None


async def test_authentication_error_is_permanent(exchange: FakeExchange) -> None:
    exchange.binance_error(BINANCE_SPOT, "/api/v3/klines", -2015,
                           "Invalid API-key, IP, or permissions for action.")
    result = await poll(exchange, {"BTC": {"exchange": "binance"}})
    (failure,) = result.failures
    assert (failure.what, failure.kind) == ("closes", "permanent")
    assert "AuthenticationError" in failure.message or "PermissionDenied" in failure.message


async def test_an_unlisted_symbol_is_reported_without_a_request(exchange: FakeExchange) -> None:
    assets = {"BTC": {"exchange": "binance"}, "LUNA": {"exchange": "binance"}}
    result = await poll(exchange, assets)
    assert {(f.asset, f.what, f.kind) for f in result.failures} == {
        ("LUNA", "spot", "permanent"), ("LUNA", "perp", "permanent")}
    assert "LUNA" not in result.markets and result.markets["BTC"].perp is not None
    assert not [r for r in exchange.requests if "LUNA" in r.query.get("symbol", "")]


async def test_markets_that_fail_to_load_are_one_failure(exchange: FakeExchange) -> None:
    exchange.fail(BYBIT, "/v5/market/instruments-info", 503)
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "bybit"}},
                             retries=1)
    async with clients_for(settings) as clients:
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
    (failure,) = result.failures
    assert where(failure) == ("bybit", None, "markets", "transient")
    assert set(result.markets) == {"BTC"}
