"""The pure parts of the exchange feed: intervals, settlement times, prices, retry policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.feeds import retry
from core.feeds.ccxt_answers import (
    funding_interval,
    funding_prints,
    next_funding_time,
    parse_interval,
    ticker_price,
)
from core.feeds.exchange import dated_futures
from core.feeds.retry import MalformedResponse, RequestStats, describe, failure_kind
from core.models import FundingPrint

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@pytest.mark.parametrize("text, hours", [
    ("8h", Decimal(8)), ("4h", Decimal(4)), ("1h", Decimal(1)), ("30m", Decimal("0.5")),
    ("1d", Decimal(24)), ("0h", None), (None, None), ("", None), ("eight", None),
])
def test_parse_interval(text: str | None, hours: Decimal | None) -> None:
    assert parse_interval(text) == hours


def test_stated_interval_wins() -> None:
    assert funding_interval("X", {"interval": "4h"}, {"X": Decimal(2)}, (), None) == 4
    assert funding_interval("X", {"interval": None}, {"X": Decimal(2)}, (), None) == 2


@given(st.sampled_from([1, 2, 4, 8]), st.integers(min_value=2, max_value=30),
       st.booleans())
def test_interval_inferred_from_settlements(hours: int, count: int, late_print: bool) -> None:
    step = timedelta(hours=hours)
    last = datetime(2026, 3, 2, 8, tzinfo=UTC)
    history = tuple(FundingPrint(last - i * step, Decimal("0.0001")) for i in reversed(range(count)))
    next_time = last + step
    if late_print and count >= 3:
        # The newest settlement is not published yet: the gap to the next one looks doubled.
        history, next_time = history[:-1], last + step
    assert funding_interval("X", {}, {}, history, next_time) == hours


def test_a_shortened_interval_shows_in_the_newest_gap() -> None:
    history = (FundingPrint(datetime(2026, 3, 1, 16, tzinfo=UTC), Decimal(0)),
               FundingPrint(datetime(2026, 3, 2, 0, tzinfo=UTC), Decimal(0)))
    assert funding_interval("X", {}, {}, history, datetime(2026, 3, 2, 4, tzinfo=UTC)) == 4


def test_nothing_to_infer_from_is_none() -> None:
    assert funding_interval("X", {}, {}, (), None) is None
    assert funding_interval("X", {}, {}, (), datetime(2026, 3, 2, 16, tzinfo=UTC)) is None


def test_the_last_settlement_held_counts_when_history_is_empty() -> None:
    held, next_time = datetime(2026, 3, 2, 8, 0, 0, 4000, tzinfo=UTC), datetime(2026, 3, 2, 16, tzinfo=UTC)
    assert funding_interval("X", {}, {}, (), next_time, held) == 8
    # A `since` that is not a settlement time (not on the hour) tells nothing.
    assert funding_interval("X", {}, {}, (), next_time, datetime(2026, 3, 2, 9, 25, tzinfo=UTC)) is None


def test_next_funding_time_takes_the_first_upcoming() -> None:
    past, soon, later = NOW - timedelta(hours=1), NOW + timedelta(hours=1), NOW + timedelta(hours=9)
    assert next_funding_time({"fundingTimestamp": ms(soon), "nextFundingTimestamp": ms(later)}, NOW) == soon
    assert next_funding_time({"fundingTimestamp": ms(past), "nextFundingTimestamp": ms(later)}, NOW) == later
    assert next_funding_time({"fundingTimestamp": 0}, NOW) is None


def test_funding_prints_are_sorted_deduplicated_and_bounded() -> None:
    t = [NOW - timedelta(hours=h) for h in (24, 16, 8)]
    rows = [{"timestamp": ms(t[2]), "fundingRate": 0.0001}, {"timestamp": ms(t[0]), "fundingRate": -0.00002},
            {"timestamp": ms(t[1]), "fundingRate": 0.00005}, {"timestamp": ms(t[1]), "fundingRate": 0.00005},
            {"timestamp": ms(NOW + timedelta(hours=1)), "fundingRate": 1}, {"timestamp": None}]
    prints = funding_prints(rows, t[0], NOW)
    assert prints == (FundingPrint(t[1], Decimal("0.00005")), FundingPrint(t[2], Decimal("0.0001")))
    with pytest.raises(MalformedResponse):
        funding_prints("not a list", None, NOW)


def test_ticker_price_prefers_last_then_close_then_mid() -> None:
    assert ticker_price({"last": 0.1, "close": 5}) == Decimal("0.1")
    assert ticker_price({"last": None, "close": 5}) == 5
    assert ticker_price({"bid": 99, "ask": 101}) == 100
    assert ticker_price({"last": 0}) is None and ticker_price("body") is None


def test_dated_futures_from_market_metadata() -> None:
    def market(symbol: str, expiry: datetime | None, **kw) -> dict:
        base = symbol.split("/")[0]
        return {"symbol": symbol, "base": base, "future": expiry is not None, "expiry": expiry and ms(expiry),
                "linear": True, "inverse": False, "settle": "USDT", "active": True, **kw}

    class Client:
        markets: ClassVar[dict] = {m["symbol"]: m for m in [
            market("BTC/USDT:USDT", None),
            market("BTC/USDT:USDT-260327", NOW + timedelta(days=25)),
            market("BTC/USDT:USDT-260626", NOW + timedelta(days=116)),
            market("BTC/USDT:USDT-251226", NOW - timedelta(days=66)),
            market("BTC/USDC:USDC-260327", NOW + timedelta(days=25), settle="USDC"),
            market("BTC/USD:BTC-260327", NOW + timedelta(days=25), linear=False, inverse=True, settle="BTC"),
            market("ETH/USDT:USDT-260327", NOW + timedelta(days=25)),
            market("BTC/USDT:USDT-260410", NOW + timedelta(days=39), active=False),
        ]}

    found = [m["symbol"] for m in dated_futures(Client(), "BTC", "USDT", NOW)]
    # Linear ones settled in USDT, and the coin-margined one (it tells the basis, never traded).
    assert found == ["BTC/USDT:USDT-260327", "BTC/USD:BTC-260327", "BTC/USDT:USDT-260626"]


@pytest.mark.parametrize("exc, kind", [
    (ccxt.DDoSProtection("429"), "transient"), (ccxt.RateLimitExceeded("x"), "transient"),
    (ccxt.RequestTimeout("t"), "transient"), (ccxt.ExchangeNotAvailable("503"), "transient"),
    (ccxt.NetworkError("n"), "transient"), (ccxt.BadSymbol("-1121"), "permanent"),
    (ccxt.AuthenticationError("a"), "permanent"), (ccxt.ExchangeError("e"), "permanent"),
    (ccxt.BadResponse("b"), "permanent"), (MalformedResponse("m"), "permanent"),
    (TypeError("t"), "permanent"),
])
def test_failure_kinds(exc: Exception, kind: str) -> None:
    assert failure_kind(exc) == kind


def test_describe_cuts_query_strings() -> None:
    exc = ccxt.ExchangeError("binance GET https://api.binance.com/sapi/v1/x?timestamp=1&signature=abc 404")
    assert describe(exc) == "ExchangeError: binance GET https://api.binance.com/sapi/v1/x?… 404"


async def test_retry_policy_counts_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "WAIT_INITIAL_S", 0.001)
    stats, calls = RequestStats(), []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ccxt.DDoSProtection("429 Too Many Requests")
        return "ok"

    assert await stats.call(3, flaky) == "ok"
    assert stats.count == 3 and stats.slowest_s >= 0

    async def wrong() -> None:
        calls.append(1)
        raise ccxt.BadSymbol("binance {\"code\":-1121}")

    calls.clear()
    with pytest.raises(ccxt.BadSymbol):
        await stats.call(3, wrong)
    assert len(calls) == 1

    async def down() -> None:
        calls.append(1)
        raise ccxt.ExchangeNotAvailable("503")

    calls.clear()
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await stats.call(2, down)
    assert len(calls) == 3
