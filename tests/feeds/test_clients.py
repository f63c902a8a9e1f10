"""Building ccxt clients from the config: URL overrides, keys from the environment, market cache."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from core.config import ExchangeConfig
from core.errors import ConfigError
from core.feeds.clients import ExchangeClients, build_client, override_api_urls, rewrite_url
from core.feeds.exchange import fetch_markets_snapshot
from tests.fakes.exchange_hosts import BINANCE_FAPI, BINANCE_SPOT, BYBIT
from tests.fakes.exchange_server import FakeExchange, FakeRequest
from tests.feeds import TEST_CCXT, clients_for, make_settings

PREFIX = "http://127.0.0.1:8999"


def test_rewrite_url_keeps_host_path_and_placeholders() -> None:
    assert rewrite_url("https://fapi.binance.com/fapi/v1", PREFIX) == f"{PREFIX}/fapi.binance.com/fapi/v1"
    assert rewrite_url("https://api.{hostname}", PREFIX + "/") == f"{PREFIX}/api.{{hostname}}"
    assert rewrite_url("not a url", PREFIX) == "not a url"


def test_override_mapping_per_key_and_wildcard() -> None:
    api = {"public": "https://api.binance.com/api/v3", "nested": {"rest": "https://{hostname}"}, "n": 3}
    assert override_api_urls(api, {"public": "http://x/api/v3"}) == {
        "public": "http://x/api/v3", "nested": {"rest": "https://{hostname}"}, "n": 3}
    assert override_api_urls(api, {"*": PREFIX}) == {
        "public": f"{PREFIX}/api.binance.com/api/v3", "nested": {"rest": f"{PREFIX}/{{hostname}}"}, "n": 3}
    assert override_api_urls("https://www.okx.com", {"*": PREFIX}) == f"{PREFIX}/www.okx.com"


async def test_wildcard_is_applied_after_sandbox_mode() -> None:
    cfg = ExchangeConfig(ccxt_id="binanceusdm", sandbox=True, urls={"*": PREFIX}, timeout_ms=1234)
    client = build_client(cfg, "binanceusdm", overrides=TEST_CCXT)
    try:
        fapi = client.urls["api"]["fapiPublic"]
        assert fapi.startswith(PREFIX + "/") and "binance.com" not in fapi.split("/")[3].replace(
            "testnet.binancefuture.com", "")
        assert client.timeout == 1234 and client.enableRateLimit is False
    finally:
        await client.close()


async def test_rate_limiter_stays_on_in_production() -> None:
    client = build_client(ExchangeConfig(), "binance")
    try:
        assert client.enableRateLimit is True
    finally:
        client.timeout_on_exit = 0
        await client.close()


async def test_unknown_ccxt_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nosuchexchange"):
        build_client(ExchangeConfig(ccxt_id="nosuchexchange"), "nosuchexchange")


async def test_keys_come_from_the_environment_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ExchangeConfig(api_key_env="PREMIA_TEST_KEY", secret_env="PREMIA_TEST_SECRET")
    monkeypatch.delenv("PREMIA_TEST_KEY", raising=False)
    monkeypatch.delenv("PREMIA_TEST_SECRET", raising=False)
    bare = build_client(cfg, "binance", overrides=TEST_CCXT)
    monkeypatch.setenv("PREMIA_TEST_KEY", "k-123")
    monkeypatch.setenv("PREMIA_TEST_SECRET", "s-456")
    keyed = build_client(cfg, "binance", overrides=TEST_CCXT)
    try:
        assert not bare.apiKey and not bare.secret
        assert (keyed.apiKey, keyed.secret) == ("k-123", "s-456")
    finally:
        await bare.close()
        await keyed.close()



async def test_secrets_are_not_logged(exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    secret, key = "s3cr3t-value-789", "ak-key-value-456"
    monkeypatch.setenv("PREMIA_TEST_KEY", key)
    monkeypatch.setenv("PREMIA_TEST_SECRET", secret)

    # With keys, ccxt asks Binance's private currency list while loading markets: added here as
    # a route, the way order endpoints will be.
    @exchange.route("GET", BINANCE_SPOT, "/sapi/v1/capital/config/getall")
    async def currencies(req: FakeRequest) -> list:
        assert req.headers.get("X-MBX-APIKEY") == key
        return []

    caplog.set_level(logging.DEBUG)
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}}, exchange_overrides={
        "binance": {"api_key_env": "PREMIA_TEST_KEY", "secret_env": "PREMIA_TEST_SECRET"}})
    async with clients_for(settings) as clients:
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
    assert "BTC" in result.markets
    assert exchange.requests_to(BINANCE_SPOT, "/sapi/v1/capital/config/getall")
    assert secret not in caplog.text and key not in caplog.text
    assert "signature=" not in caplog.text


async def test_clients_are_lazy_shared_and_closed(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "bybit"}})
    clients = ExchangeClients(settings, TEST_CCXT)
    spot, fut = clients.spot("binance"), clients.futures("binance")
    assert (spot.id, fut.id) == ("binance", "binanceusdm")
    assert clients.spot("binance") is spot
    assert clients.futures("bybit") is clients.spot("bybit")  # one client serves both
    await clients.close()
    assert spot.session is None and fut.session is None
    with pytest.raises(ConfigError):
        clients.spot("kraken")


async def test_markets_load_once(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}})
    async with clients_for(settings) as clients:
        await clients.load_markets("binance")
        await clients.load_markets("binance")
        await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
    assert len(exchange.requests_to(BINANCE_SPOT, "/api/v3/exchangeInfo")) == 1
    assert len(exchange.requests_to(BINANCE_FAPI, "/fapi/v1/exchangeInfo")) == 1
    # The spot client leaves the derivatives to the USDⓈ-M client.
    assert not exchange.requests_to("dapi.binance.com")


async def test_cached_markets_skip_the_market_requests(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}, "ETH": {"exchange": "bybit"}})
    async with clients_for(settings) as clients:
        cache = {name: await clients.load_markets(name) for name in ("binance", "bybit")}
    saved = json.loads(json.dumps(cache))  # what a store would keep
    assert set(saved["binance"]) == {"spot", "futures"} and set(saved["bybit"]) == {"spot"}
    exchange.requests.clear()

    async with clients_for(settings) as clients:
        for name in ("binance", "bybit"):
            markets = await clients.load_markets(name, saved[name])
            assert markets.keys() == saved[name].keys()
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
        assert clients.markets_for_cache("binance")["futures"].keys() == saved["binance"]["futures"].keys()
    assert result.failures == ()
    assert result.markets["BTC"].perp is not None and result.markets["BTC"].futures
    assert result.markets["ETH"].perp is not None
    assert not exchange.requests_to(BINANCE_SPOT, "/api/v3/exchangeInfo")
    assert not exchange.requests_to(BINANCE_FAPI, "/fapi/v1/exchangeInfo")
    assert not exchange.requests_to(BYBIT, "/v5/market/instruments-info")


async def test_option_markets_are_not_loaded_unless_asked(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "bybit"}, "ETH": {"exchange": "okx"}})
    async with clients_for(settings) as clients:
        assert clients.spot("bybit").options["fetchMarkets"]["types"] == ["spot", "linear", "inverse"]
        await clients.load_markets("bybit")
        await clients.load_markets("okx")
    categories = {r.query.get("category") for r in exchange.requests_to(BYBIT, "/v5/market/instruments-info")}
    assert categories == {"spot", "linear", "inverse"}
    okx = exchange.requests_to("www.okx.com", "/api/v5/public/instruments")
    kinds = {r.query.get("instType") for r in okx}
    assert "OPTION" not in kinds and {"SPOT", "SWAP", "FUTURES"} <= kinds
    chosen = ExchangeConfig(ccxt_id="bybit", options={"fetchMarkets": {"types": ["spot", "option"]}})
    client = build_client(chosen, "bybit", overrides=TEST_CCXT)
    assert client.options["fetchMarkets"]["types"] == ["spot", "option"]
    await client.close()


async def test_reload_fetches_markets_again(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}})
    async with clients_for(settings) as clients:
        await clients.load_markets("binance")
        cache = clients.markets_for_cache("binance")
        await clients.load_markets("binance", cache, reload=True)
    assert len(exchange.requests_to(BINANCE_FAPI, "/fapi/v1/exchangeInfo")) == 2


async def test_a_stablecoin_without_a_perpetual_is_not_a_failure(exchange: FakeExchange) -> None:
    assets = {"BTC": {"exchange": "binance"}, "DAI": {"exchange": "binance"}}
    settings = make_settings(exchange.prefix, assets, stablecoins=["USDT", "DAI"])
    async with clients_for(settings) as clients:
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
    # DAI/USDT is not in the recorded spot list either: that one is reported.
    assert {(f.asset, f.what) for f in result.failures} == {("DAI", "spot")}
