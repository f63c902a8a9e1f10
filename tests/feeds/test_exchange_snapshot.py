"""A full poll with real ccxt against the loopback exchange: Binance spot+USDⓈ-M, Bybit, OKX."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from core.feeds.exchange import FeedResult, fetch_markets_snapshot
from tests.fakes.exchange_hosts import BINANCE_FAPI, BINANCE_SPOT
from tests.fakes.exchange_recordings import shared_data_dir
from tests.fakes.exchange_server import FakeExchange
from tests.feeds import clients_for, make_settings, started_exchange

ASSETS = {
    "BTC": {"exchange": "binance"},
    "ETH": {"exchange": "binance"},
    "WIF": {"exchange": "binance"},  # on a 4h funding interval in the recorded snapshot
    "SOL": {"exchange": "bybit"},
    "DOGE": {"exchange": "okx"},
}



def recorded_premium_index() -> dict[str, dict]:
    raw = json.loads((shared_data_dir() / "raw/danghungithp__funding-rate-binance-bot/premiumIndex.json")
                     .read_text())
    return {e["symbol"]: e for e in raw}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def polled() -> AsyncIterator[tuple[FeedResult, datetime, FakeExchange]]:
    """One poll of ASSETS shared by the tests that only read it (and its server's requests)."""
    server = await started_exchange()
    settings = make_settings(server.prefix, ASSETS)
    now = datetime.now(UTC)
    async with clients_for(settings) as clients:
        result = await fetch_markets_snapshot(clients, settings, now)
    yield result, now, server
    await server.close()


@pytest.fixture
def snapshot(polled: tuple[FeedResult, datetime, FakeExchange]) -> tuple[FeedResult, datetime]:
    return polled[0], polled[1]


@pytest.fixture
def served(polled: tuple[FeedResult, datetime, FakeExchange]) -> FakeExchange:
    return polled[2]


async def test_every_asset_arrives_without_failures(snapshot, served: FakeExchange) -> None:
    result, _ = snapshot
    assert result.failures == ()
    assert set(result.markets) == set(ASSETS)
    assert result.request_count > len(ASSETS) * 4
    assert 0 < result.slowest_request_s < 5
    assert served.unmatched == []


async def test_binance_prices_are_the_recorded_decimals(snapshot) -> None:
    result, now = snapshot
    recorded = recorded_premium_index()["BTCUSDT"]
    btc = result.markets["BTC"]
    assert btc.perp is not None and btc.spot is not None
    assert btc.perp.symbol == "BTC/USDT:USDT"
    assert btc.perp.mark == Decimal(recorded["markPrice"])
    assert btc.perp.index == Decimal(recorded["indexPrice"])
    assert btc.perp.funding_rate == Decimal(recorded["lastFundingRate"])
    assert isinstance(btc.perp.mark, Decimal) and str(btc.perp.mark) == "106599.9"
    # The loopback exchange prices Binance spot at the snapshot's index.
    assert btc.spot.price == Decimal(recorded["indexPrice"])
    assert abs(btc.spot.timestamp - now) < timedelta(seconds=30)


async def test_funding_interval_comes_from_the_exchange(snapshot, served: FakeExchange) -> None:
    result, now = snapshot
    wif, btc = result.markets["WIF"].perp, result.markets["BTC"].perp
    assert wif is not None and btc is not None
    # WIF is listed in Binance's fundingInfo at 4h; BTC is not listed and gets its 8h from its
    # own settlement times.
    assert wif.funding_interval_hours == 4
    assert btc.funding_interval_hours == 8
    assert served.requests_to(BINANCE_FAPI, "/fapi/v1/fundingInfo")
    assert wif.next_funding_time is not None and wif.next_funding_time.hour % 4 == 0
    assert timedelta(0) < wif.next_funding_time - now <= timedelta(hours=4)
    gaps = {b.time - a.time for a, b in zip(wif.funding_history, wif.funding_history[1:], strict=False)}
    assert gaps == {timedelta(hours=4)}


async def test_funding_history_covers_history_days(snapshot) -> None:
    result, now = snapshot
    history = result.markets["BTC"].perp.funding_history
    assert len(history) == 45 * 3
    assert history == tuple(sorted(history, key=lambda p: p.time))
    assert now - timedelta(days=45) <= history[0].time and history[-1].time <= now
    assert all(isinstance(p.rate, Decimal) for p in history)


async def test_quarterly_futures_are_found_from_market_metadata(snapshot, served: FakeExchange) -> None:
    result, now = snapshot
    futures = result.markets["BTC"].futures
    assert futures, "no dated BTC futures found"
    assert all(f.expiry > now for f in futures)
    assert [f.expiry for f in futures] == sorted(f.expiry for f in futures)
    # nautilus's recorded quarterly BTCUSDT_220325 (delivery 2022-03-25 08:00, recorded
    # 2022-02-19) is served with the same weekday, hour and distance to delivery.
    quarterly = [f for f in futures if f.expiry.weekday() == 4 and timedelta(days=28) < f.expiry - now
                 <= timedelta(days=35)]
    assert len(quarterly) == 1
    q = quarterly[0]
    assert q.expiry.hour == 8 and q.symbol == f"BTC/USDT:USDT-{q.expiry:%y%m%d}"
    assert q.contract_size == 1 and q.price > 0
    asked = {r.query.get("symbol") for r in served.requests_to(BINANCE_FAPI, "/fapi/v1/ticker/24hr")}
    assert "BTCUSDT_220325" in asked
    # The snapshot's own quarterlies carry their recorded mark prices.
    marks = {f.price for f in futures}
    assert Decimal(recorded_premium_index()["BTCUSDT_250926"]["markPrice"]) in marks
    assert result.markets["ETH"].futures and not result.markets["WIF"].futures


async def test_daily_closes_are_finished_days(snapshot, served: FakeExchange) -> None:
    result, now = snapshot
    closes = result.markets["BTC"].closes
    assert len(closes) == 45
    assert closes[-1].day == (now - timedelta(days=1)).date()
    days = [c.day for c in closes]
    assert days == sorted(days) and len(set(days)) == len(days)
    # The recorded series (CDD Binance spot) ends at the snapshot's day, 2025-06-17.
    assert closes[-1].price == Decimal("106794.53")
    (klines,) = served.requests_to(BINANCE_SPOT, "/api/v3/klines")[:1]
    assert klines.query["interval"] == "1d" and klines.query["symbol"] == "BTCUSDT"


async def test_bybit_btc_is_the_recorded_ticker(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "bybit"}})
    async with clients_for(settings) as clients:
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
    assert result.failures == ()
    perp = result.markets["BTC"].perp
    # ccxt's static test response for bybit fetchFundingRate (2024-11-04).
    assert (perp.mark, perp.index, perp.funding_rate) == (
        Decimal("68591.46"), Decimal("68599.90"), Decimal("0.0001"))
    assert perp.funding_interval_hours == 8  # from the instrument's fundingInterval (minutes)
    assert result.markets["BTC"].spot.price == Decimal("68599.90")


async def test_okx_mark_index_and_funding(snapshot, served: FakeExchange) -> None:
    result, _ = snapshot
    doge = result.markets["DOGE"]
    recorded = recorded_premium_index()["DOGEUSDT"]
    assert doge.perp.mark == Decimal(recorded["markPrice"])
    assert doge.perp.index == Decimal(recorded["indexPrice"])
    assert doge.perp.funding_interval_hours == 8  # nextFundingTime - fundingTime
    assert doge.perp.contract_size > 1
    paths = {r.path for r in served.requests_to("www.okx.com")}
    assert {"/api/v5/public/mark-price", "/api/v5/market/index-tickers",
            "/api/v5/public/funding-rate"} <= paths


async def test_okx_btc_uses_the_recorded_payloads(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "okx"}})
    async with clients_for(settings) as clients:
        result = await fetch_markets_snapshot(clients, settings, datetime.now(UTC))
        okx_symbols = list(clients.futures("okx").markets)
    btc = result.markets["BTC"]
    assert btc.perp.mark == Decimal("84660.1")  # nautilus http_get_mark_price.json
    assert btc.perp.index == Decimal("103895")  # nautilus http_get_index_price.json
    assert btc.perp.funding_rate == Decimal("0.0001")  # nautilus ws_funding_rate.json
    assert btc.perp.contract_size == Decimal("0.01")
    # OKX's recorded dated futures are all inverse BTC-USD (100 USD a contract): they come
    # marked inverse, with their size in USD, so they tell the basis and are never traded.
    listed = sorted(m for m in okx_symbols if m.startswith("BTC/USD:BTC-"))
    assert btc.futures and [f.symbol for f in btc.futures] == sorted(f.symbol for f in btc.futures)
    assert {f.symbol for f in btc.futures} <= set(listed)
    assert all(f.inverse and f.contract_size == Decimal(100) for f in btc.futures)


async def test_since_funding_asks_only_for_newer_prints(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}})
    now = datetime.now(UTC)
    async with clients_for(settings) as clients:
        first = await fetch_markets_snapshot(clients, settings, now)
        last = first.markets["BTC"].perp.funding_history[-3].time
        second = await fetch_markets_snapshot(clients, settings, now, {"BTC": last})
    history = second.markets["BTC"].perp.funding_history
    assert second.markets["BTC"].perp.funding_interval_hours == 8
    assert [p.time for p in history] == [p.time for p in first.markets["BTC"].perp.funding_history[-2:]]
    start = int(exchange.requests_to(BINANCE_FAPI, "/fapi/v1/fundingRate")[-1].query["startTime"])
    assert start == int(last.timestamp() * 1000) + 1


async def test_daily_closes_are_asked_for_once_a_day(exchange: FakeExchange) -> None:
    settings = make_settings(exchange.prefix, {"BTC": {"exchange": "binance"}})
    now = datetime.now(UTC)
    async with clients_for(settings) as clients:
        first = await fetch_markets_snapshot(clients, settings, now)
        second = await fetch_markets_snapshot(clients, settings, now + timedelta(minutes=5))
        tomorrow = await fetch_markets_snapshot(clients, settings, now + timedelta(days=1))
    assert first.markets["BTC"].closes == second.markets["BTC"].closes
    assert len(exchange.requests_to(BINANCE_SPOT, "/api/v3/klines")) == 2
    assert tomorrow.markets["BTC"].closes


async def test_steady_state_keeps_the_interval_without_new_prints(
        exchange: FakeExchange, caplog: pytest.LogCaptureFixture) -> None:
    assets = {"BTC": {"exchange": "binance"}, "WIF": {"exchange": "binance"}}
    settings = make_settings(exchange.prefix, assets)
    now = datetime.now(UTC)
    async with clients_for(settings) as clients:
        first = await fetch_markets_snapshot(clients, settings, now)
        held = {a: m.perp.funding_history[-1].time for a, m in first.markets.items()}
        steady = await fetch_markets_snapshot(clients, settings, now, held)
        # A `since` that is no settlement time, and no history to infer from: the last known.
        odd = await fetch_markets_snapshot(clients, settings, now,
                                           {**held, "BTC": held["BTC"] + timedelta(minutes=7)})
    for result in (steady, odd):
        assert result.markets["BTC"].perp.funding_history == ()
        assert result.markets["BTC"].perp.funding_interval_hours == 8
        assert result.markets["WIF"].perp.funding_interval_hours == 4
    assert "assuming 8h" not in caplog.text
