"""The requests of one poll: each one retried, counted, and turned into a quote.

`PollRequests` holds what every request of a poll shares (the retry policy and its statistics,
the cap on requests in flight, the time of the poll) and asks an exchange for one part of one
asset: the spot ticker, daily closes, a dated future's ticker, the mark price, settled funding;
and, once per exchange, the per-symbol funding intervals. `core.feeds.exchange` runs them all at
once and assembles the answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.config import Settings
from core.feeds.ccxt_answers import (
    dec,
    dt_to_ms,
    funding_prints,
    ms_to_dt,
    not_json,
    parse_interval,
    ticker_price,
)
from core.feeds.clients import Client, ExchangeClients
from core.feeds.retry import MalformedResponse, RequestStats
from core.models import ONE, Close, FundingPrint, FutureQuote, SpotQuote

DAY_MS = 86_400_000

# The most rows one request may ask for (funding history, daily candles), by ccxt id.
_PAGE_LIMITS = {"binance": 1000, "binanceusdm": 1000, "binancecoinm": 1000, "bybit": 200, "okx": 100}
_MAX_PAGES = 5


def _page_limit(client: Client) -> int:
    return _PAGE_LIMITS.get(client.id, 100)


class PollRequests:
    """The requests of one poll: retried (`settings.feeds.retries`), counted, and capped."""

    def __init__(self, clients: ExchangeClients, settings: Settings, now: datetime,
                 max_concurrency: int | None) -> None:
        self.clients = clients
        self.slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.settings = settings
        self.now = now
        self.stats = RequestStats()

    async def request(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self.slots is None:
            return await self.stats.call(self.settings.feeds.retries, fn)
        async with self.slots:
            return await self.stats.call(self.settings.feeds.retries, fn)

    async def spot_quote(self, client: Client, symbol: str) -> SpotQuote:
        ticker = await self.request(lambda: client.fetch_ticker(symbol))
        not_json(ticker, f"ticker for {symbol}")
        price = ticker_price(ticker)
        if price is None:
            raise MalformedResponse(f"ticker for {symbol} has no price")
        # Bybit's ticker carries no time of its own: the time we received it stands in.
        stamp = ms_to_dt(ticker["timestamp"]) if ticker.get("timestamp") else self.now
        return SpotQuote(price, stamp)

    async def closes(self, name: str, client: Client, symbol: str) -> tuple[Close, ...]:
        """Finished daily closes over `history_days`; asked for at most once a day per symbol."""
        days = self.settings.feeds.history_days
        key = ("daily closes", name, symbol, days)
        held = self.clients.history_cache.get(key)
        if held and held[-1].day >= self.now.date() - timedelta(days=1):
            return held
        start = datetime.combine(self.now.date() - timedelta(days=days), datetime.min.time(), UTC)
        limit = min(days + 2, _page_limit(client))
        rows = await self.request(lambda: client.fetch_ohlcv(symbol, "1d", dt_to_ms(start), limit))
        if not isinstance(rows, list):
            raise MalformedResponse(f"daily candles for {symbol} are not a list")
        now_ms = dt_to_ms(self.now)
        by_day: dict[date, Decimal] = {}
        for row in rows:
            # Only finished days: today's candle is still moving.
            if row[0] + DAY_MS <= now_ms and row[4] is not None:
                by_day[ms_to_dt(row[0]).date()] = Decimal(str(row[4]))
        closes = tuple(Close(day, price) for day, price in sorted(by_day.items()))
        if closes:
            self.clients.history_cache[key] = closes
        return closes

    async def future_quote(self, client: Client, market: dict) -> FutureQuote:
        symbol = market["symbol"]
        ticker = await self.request(lambda: client.fetch_ticker(symbol))
        not_json(ticker, f"ticker for {symbol}")
        price = ticker_price(ticker) or dec(ticker.get("markPrice"))
        if price is None:
            raise MalformedResponse(f"ticker for {symbol} has no price")
        stamp = ms_to_dt(ticker["timestamp"]) if ticker.get("timestamp") else self.now
        size = dec(market.get("contractSize")) or ONE
        return FutureQuote(symbol, price, ms_to_dt(market["expiry"]), stamp, size,
                           inverse=bool(market.get("inverse")))

    async def mark_price(self, client: Client, symbol: str) -> Decimal:
        ticker = await self.request(lambda: client.fetch_mark_price(symbol))
        price = dec(ticker.get("markPrice")) if isinstance(ticker, dict) else None
        if price is None:
            raise MalformedResponse(f"mark price for {symbol} is missing")
        return price

    async def funding_history(self, client: Client, symbol: str,
                              since: datetime | None) -> tuple[FundingPrint, ...]:
        """Settled prints after `since`, else over `history_days`; pages forward when full."""
        start = since or self.now - timedelta(days=self.settings.feeds.history_days)
        limit = _page_limit(client)
        cursor, rows = dt_to_ms(start) + (1 if since else 0), []
        for _ in range(_MAX_PAGES):
            page = await self.request(lambda c=cursor: client.fetch_funding_rate_history(symbol, c, limit))
            if not isinstance(page, list):
                raise MalformedResponse(f"funding history for {symbol} is not a list")
            rows += page
            newest = max((r.get("timestamp") or 0 for r in page), default=0)
            # Stop at a short page, or one that reached the present (newest-first APIs like OKX's
            # answer with the latest prints whatever the start).
            if len(page) < limit or newest < cursor or newest >= dt_to_ms(self.now) - DAY_MS:
                break
            cursor = newest + 1
        return funding_prints(rows, since or start - timedelta(microseconds=1), self.now)

    async def funding_intervals(self, client: Client, symbols: list[str]) -> dict[str, Decimal]:
        """The exchange's per-symbol interval list (Binance lists only symbols not on 8h)."""
        answer = await self.request(lambda: client.fetch_funding_intervals(symbols))
        hours = {sym: parse_interval(entry.get("interval")) for sym, entry in (answer or {}).items()
                 if isinstance(entry, dict)}
        return {sym: h for sym, h in hours.items() if h is not None}


async def _okx_index(client: Client, market: dict) -> Decimal:
    """OKX states the index of a swap's underlying (`BTC-USDT`) on a separate endpoint."""
    info = market.get("info") or {}
    answer = await client.publicGetMarketIndexTickers({"instId": info.get("uly") or info.get("instFamily")})
    data = answer.get("data") if isinstance(answer, dict) else None
    price = dec(data[0].get("idxPx")) if data and isinstance(data[0], dict) else None
    if price is None:
        raise MalformedResponse(f"OKX index for {market['symbol']} is missing")
    return price


# ccxt ids whose funding-rate answer carries neither mark nor index, with their index fetcher.
SEPARATE_INDEX: dict[str, Callable[[Client, dict], Awaitable[Decimal]]] = {"okx": _okx_index}
