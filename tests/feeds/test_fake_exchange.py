"""The loopback exchange itself: routes can be added (orders), unknown routes are recorded."""

from __future__ import annotations

import json

import aiohttp
import pytest

from core.config import ExchangeConfig
from core.feeds.clients import build_client
from tests.fakes.exchange_hosts import BINANCE_SPOT
from tests.fakes.exchange_recordings import shared_data_dir
from tests.fakes.exchange_server import FakeExchange, FakeRequest
from tests.feeds import TEST_CCXT


async def test_an_order_endpoint_can_be_registered(exchange: FakeExchange,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = json.loads((shared_data_dir() / "raw/ccxt__ccxt/ts/src/test/static/response_excerpts"
                           "/binance.json").read_text())["methods"]["createOrder"][0]["httpResponse"]
    seen: list[dict[str, str]] = []

    @exchange.route("POST", BINANCE_SPOT, "/api/v3/order")
    async def create_order(req: FakeRequest) -> dict:
        params = req.params()
        seen.append(params)
        return {**recorded, "symbol": params["symbol"], "clientOrderId": params["newClientOrderId"]}

    monkeypatch.setenv("PREMIA_TEST_KEY", "key")
    monkeypatch.setenv("PREMIA_TEST_SECRET", "secret")
    cfg = ExchangeConfig(urls={"*": exchange.prefix}, api_key_env="PREMIA_TEST_KEY",
                         secret_env="PREMIA_TEST_SECRET", options={"fetchMarkets": {"types": ["spot"]}})
    client = build_client(cfg, "binance", overrides=TEST_CCXT)
    try:
        await client.load_markets()
        order = await client.create_order("SOL/USDT", "limit", "buy", 0.05, 241,
                                          {"newClientOrderId": "premia-p1-0"})
    finally:
        await client.close()
    assert (seen[0]["symbol"], seen[0]["side"], seen[0]["type"]) == ("SOLUSDT", "BUY", "LIMIT")
    assert "signature" in seen[0]
    assert order["clientOrderId"] == "premia-p1-0" and order["status"] == "open"


async def test_unknown_routes_answer_404_and_are_recorded(exchange: FakeExchange) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            f"{exchange.prefix}/{BINANCE_SPOT}/api/v3/nothing?x=1") as response:
        assert response.status == 404
    (missed,) = exchange.unmatched
    assert (missed.method, missed.host, missed.path, missed.query) == ("GET", BINANCE_SPOT, "/api/v3/nothing",
                                                                      {"x": "1"})
    assert exchange.requests[-1].finished is not None


async def test_fault_counts_and_query_matching(exchange: FakeExchange) -> None:
    fault = exchange.fail(BINANCE_SPOT, "/api/v3/ticker/24hr", 503, times=1, query={"symbol": "ETHUSDT"})
    url = f"{exchange.prefix}/{BINANCE_SPOT}/api/v3/ticker/24hr"
    async with aiohttp.ClientSession() as session:
        statuses = []
        for symbol in ("BTCUSDT", "ETHUSDT", "ETHUSDT"):
            async with session.get(url, params={"symbol": symbol}) as response:
                statuses.append(response.status)
    assert statuses == [200, 503, 200] and fault.hits == 1
