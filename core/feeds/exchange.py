"""One poll of the exchanges: spot, perpetual, dated futures and daily closes for every asset.

Every request of a poll runs at once (`asyncio`), grouped by exchange; each request is bounded by
its exchange's `timeout_ms`, transient errors are retried (`core.feeds.retry`), and a failure of
one part of one asset becomes a `FeedFailure` while the rest of the poll goes on. A safety-net
deadline (by default 80% of the poll period) reports whatever is still pending rather than let
one poll run into the next. Prices are `Decimal`s made from ccxt's numbers via `str`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.config import Settings
from core.feeds.clients import Client, ExchangeClients
from core.feeds.retry import FailureKind, MalformedResponse, RequestStats, describe, failure_kind
from core.models import ONE, AssetMarket, Close, FundingPrint, FutureQuote, PerpQuote, SpotQuote

log = logging.getLogger(__name__)

DAY_MS = 86_400_000

# The most rows one request may ask for (funding history, daily candles), by ccxt id.
_PAGE_LIMITS = {"binance": 1000, "binanceusdm": 1000, "binancecoinm": 1000, "bybit": 200, "okx": 100}
_MAX_PAGES = 5
# Share of the poll period after which unanswered requests are given up. Not tighter: with
# ccxt's rate limiter on, a poll of a few dozen assets on one exchange queues for seconds.
DEADLINE_SHARE = 0.8
FALLBACK_INTERVAL_H = Decimal(8)


@dataclass(frozen=True, slots=True)
class FeedFailure:
    """One part of one poll that failed: `what` is spot, closes, funding, mark, index, funding
    history, future <symbol>, perp (assembling it) or markets (asset None)."""

    exchange: str
    asset: str | None
    what: str
    kind: FailureKind
    message: str


@dataclass(frozen=True, slots=True)
class FeedResult:
    """What a poll got (assets with at least one part), what failed, and how many requests."""

    markets: dict[str, AssetMarket]
    failures: tuple[FeedFailure, ...]
    request_count: int
    slowest_request_s: float


def dec(value: Any) -> Decimal | None:
    """ccxt number (float, int or str) → Decimal via str, so 0.1 stays 0.1; None stays None."""
    return None if value is None or value == "" else Decimal(str(value))


def ms_to_dt(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def dt_to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _page_limit(client: Client) -> int:
    return _PAGE_LIMITS.get(client.id, 100)


def dated_futures(client: Client, asset: str, quote: str, now: datetime) -> list[dict]:
    """Unexpired dated futures of an asset from market metadata, linear and settled in `quote`.

    Inverse (coin-margined) contracts are left out: their contract size is in USD, not in the
    asset, and `FutureQuote` cannot say so, so a planner would size them wrongly.
    """
    now_ms = dt_to_ms(now)
    found = []
    for market in (client.markets or {}).values():
        if not market.get("future") or market.get("base") != asset or market.get("active") is False:
            continue
        if not market.get("expiry") or market["expiry"] <= now_ms:
            continue
        if market.get("linear") and market.get("settle") == quote:
            found.append(market)
    return sorted(found, key=lambda m: m["expiry"])


class _Poll:
    """The state of one poll: request stats, failures, and the parts each asset got."""

    def __init__(self, clients: ExchangeClients, settings: Settings, now: datetime,
                 since_funding: Mapping[str, datetime] | None, max_concurrency: int | None,
                 deadline_s: float | None) -> None:
        self.clients = clients
        self.deadline_s = deadline_s or settings.scheduler.poll_minutes * 60 * DEADLINE_SHARE
        self.slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.settings = settings
        self.now = now
        self.since_funding = since_funding or {}
        self.stats = RequestStats()
        self.failures: list[FeedFailure] = []
        self.expected: set[tuple[str | None, str]] = set()

    def fail(self, exchange: str, asset: str | None, what: str, exc: BaseException) -> None:
        kind = "permanent" if isinstance(exc, LookupError) else failure_kind(exc)
        failure = FeedFailure(exchange, asset, what, kind, describe(exc))
        log.warning("feed %s %s %s failed (%s): %s", exchange, asset or "-", what, kind, failure.message)
        self.failures.append(failure)

    async def request(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self.slots is None:
            return await self.stats.call(self.settings.feeds.retries, fn)
        async with self.slots:
            return await self.stats.call(self.settings.feeds.retries, fn)

    async def run(self) -> FeedResult:
        by_exchange: dict[str, list[str]] = defaultdict(list)
        for asset, cfg in self.settings.assets.items():
            if asset != self.settings.quote:
                by_exchange[cfg.exchange].append(asset)
        parts = await asyncio.gather(*(self.exchange(name, assets) for name, assets in by_exchange.items()))
        markets = {asset: market for part in parts for asset, market in part.items()}
        return FeedResult(markets, tuple(self.failures), self.stats.count, self.stats.slowest_s)

    async def exchange(self, name: str, assets: list[str]) -> dict[str, AssetMarket]:
        try:
            if not self.clients.markets_loaded(name):
                await self.request(lambda: self.clients.load_markets(name))
        except Exception as exc:
            self.fail(name, None, "markets", exc)
            return {}
        spot, fut = self.clients.spot(name), self.clients.futures(name)
        jobs: dict[tuple[str | None, str], Awaitable[Any]] = {}
        perps: dict[str, str] = {}
        for asset in assets:
            jobs.update(self.asset_jobs(name, asset, spot, fut, perps))
        if perps and fut.has.get("fetchFundingIntervals") is True:
            jobs[(None, "funding intervals")] = self.funding_intervals(fut, list(perps.values()))
        self.expected.update(jobs)
        results = await self.gather(name, jobs)
        intervals = results.pop((None, "funding intervals"), {})
        return {asset: market for asset in assets
                if (market := self.assemble(name, asset, fut, results, perps, intervals)) is not None}

    def asset_jobs(self, name: str, asset: str, spot: Client, fut: Client,
                   perps: dict[str, str]) -> dict[tuple[str | None, str], Awaitable[Any]]:
        cfg = self.settings.assets[asset]
        jobs: dict[tuple[str | None, str], Awaitable[Any]] = {}
        spot_symbol = self.settings.spot_symbol(asset)
        if spot_symbol in spot.markets:
            jobs[(asset, "spot")] = self.spot_quote(spot, spot_symbol)
            jobs[(asset, "closes")] = self.closes(name, spot, spot_symbol)
        else:
            self.fail(name, asset, "spot", LookupError(f"{spot_symbol} is not listed on {spot.id}"))
        perp_symbol = self.settings.perp_symbol(asset)
        if perp_symbol and perp_symbol in fut.markets:
            perps[asset] = perp_symbol
            jobs[(asset, "funding")] = self.request(lambda: fut.fetch_funding_rate(perp_symbol))
            index_fetcher = _SEPARATE_INDEX.get(fut.id)
            if index_fetcher is not None:
                # This exchange's funding answer has no mark or index: ask at the same time.
                jobs[(asset, "mark")] = self.mark_price(fut, perp_symbol)
                jobs[(asset, "index")] = self.request(lambda: index_fetcher(fut, fut.market(perp_symbol)))
            since = self.since_funding.get(asset) or self.since_funding.get(perp_symbol)
            jobs[(asset, "funding history")] = self.funding_history(fut, perp_symbol, since)
        elif perp_symbol and asset not in self.settings.stablecoins:
            self.fail(name, asset, "perp", LookupError(f"{perp_symbol} is not listed on {fut.id}"))
        if cfg.dated_futures:
            for market in dated_futures(fut, asset, self.settings.quote, self.now):
                jobs[(asset, f"future {market['symbol']}")] = self.future_quote(fut, market)
        return jobs

    async def gather(self, name: str, jobs: dict[tuple[str | None, str], Awaitable[Any]]) -> dict:
        """Run the jobs of one exchange at once, within its deadline; failures are recorded."""
        tasks = {asyncio.ensure_future(job): key for key, job in jobs.items()}
        if not tasks:
            return {}
        deadline = self.deadline_s
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        results = {}
        for task, (asset, what) in tasks.items():
            if task in pending:
                self.fail(name, asset, what, TimeoutError(f"no answer within the {deadline:g}s deadline"))
            elif task.exception() is not None:
                self.fail(name, asset, what, task.exception())
            else:
                results[(asset, what)] = task.result()
        return results

    def assemble(self, name: str, asset: str, fut: Client, results: dict, perps: dict[str, str],
                 intervals: dict[str, Decimal]) -> AssetMarket | None:
        futures = tuple(v for (a, what), v in results.items() if a == asset and what.startswith("future "))
        perp_quote = None
        if asset in perps and (asset, "funding") in results:
            try:
                perp_quote = self.perp_quote(name, fut, perps[asset], asset, results, intervals)
            except Exception as exc:
                self.fail(name, asset, "perp", exc)
        spot = results.get((asset, "spot"))
        closes = results.get((asset, "closes"), ())
        if spot is None and perp_quote is None and not futures and not closes:
            return None
        return AssetMarket(asset, spot, perp_quote, futures, closes)

    # ── the requests ────────────────────────────────────────────────────────────────────────

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
        return FutureQuote(symbol, price, ms_to_dt(market["expiry"]), stamp, size)

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

    def perp_quote(self, name: str, fut: Client, symbol: str, asset: str, results: dict,
                   intervals: dict[str, Decimal]) -> PerpQuote | None:
        rate_info = results[(asset, "funding")]
        if not isinstance(rate_info, dict):
            raise MalformedResponse(f"funding rate for {symbol} is not an object")
        not_json(rate_info, f"funding rate for {symbol}")
        mark = dec(rate_info.get("markPrice")) or results.get((asset, "mark"))
        index = dec(rate_info.get("indexPrice")) or results.get((asset, "index"))
        rate = dec(rate_info.get("fundingRate"))
        if (mark is None and (asset, "mark") in self.expected) or (
                index is None and (asset, "index") in self.expected):
            return None  # the mark or index request failed and was reported already
        if mark is None or index is None or rate is None:
            raise MalformedResponse(f"funding rate for {symbol} lacks its mark, index or rate")
        history = results.get((asset, "funding history"), ())
        next_time = next_funding_time(rate_info, self.now)
        previous = self.since_funding.get(asset) or self.since_funding.get(symbol)
        interval = funding_interval(symbol, rate_info, intervals, history, next_time, previous)
        # The interval rarely changes: the last one known stands in when this poll cannot tell.
        key = ("funding interval", name, symbol)
        interval = interval or self.clients.history_cache.get(key)
        if interval is None:
            log.warning("%s: the exchange states no funding interval and there is no settlement to"
                        " infer it from; assuming 8h", symbol)
            interval = FALLBACK_INTERVAL_H
        else:
            self.clients.history_cache[key] = interval
        stamp = ms_to_dt(rate_info["timestamp"]) if rate_info.get("timestamp") else self.now
        size = dec(fut.market(symbol).get("contractSize")) or ONE
        return PerpQuote(symbol, mark, index, rate, interval, stamp, history, next_time, size)


def not_json(answer: Any, what: str) -> None:
    """ccxt hands a body that is not JSON through as `info`: name that, not a missing field."""
    if isinstance(answer, dict) and isinstance(answer.get("info"), str):
        raise MalformedResponse(f"{what}: the answer is not the JSON expected ({answer['info'][:60]!r})")


def ticker_price(ticker: Any) -> Decimal | None:
    """Last trade, else close, else the bid/ask midpoint; None when the ticker has none."""
    if not isinstance(ticker, dict):
        return None
    for key in ("last", "close"):
        value = dec(ticker.get(key))
        if value is not None and value > 0:
            return value
    bid, ask = dec(ticker.get("bid")), dec(ticker.get("ask"))
    if bid and ask and bid > 0 and ask > 0:
        return (bid + ask) / 2
    return None


def funding_prints(rows: Any, after: datetime | None, now: datetime) -> tuple[FundingPrint, ...]:
    """ccxt funding-rate history → settled prints after `after` (exclusive), oldest first."""
    if not isinstance(rows, list):
        raise MalformedResponse("funding history is not a list")
    prints = {}
    for row in rows:
        stamp, rate = row.get("timestamp"), dec(row.get("fundingRate"))
        if stamp is None or rate is None:
            continue
        when = ms_to_dt(stamp)
        if when <= now and (after is None or when > after):
            prints[when] = rate
    return tuple(FundingPrint(t, r) for t, r in sorted(prints.items()))


def parse_interval(value: Any) -> Decimal | None:
    """ccxt's interval ("8h", "4h", "30m") → hours; None when absent or not positive."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([mhd])", str(value or "").strip())
    if not match:
        return None
    amount = Decimal(match[1])
    hours = amount / 60 if match[2] == "m" else amount * (24 if match[2] == "d" else 1)
    return hours if hours > 0 else None


def next_funding_time(rate_info: dict, now: datetime) -> datetime | None:
    """The next settlement: exchanges put it in fundingTimestamp or, for OKX, both fields."""
    stamps = [rate_info.get(k) for k in ("fundingTimestamp", "nextFundingTimestamp")]
    upcoming = [ms_to_dt(s) for s in stamps if s and ms_to_dt(s) > now]
    return min(upcoming) if upcoming else None


def funding_interval(symbol: str, rate_info: dict, intervals: Mapping[str, Decimal],
                     history: tuple[FundingPrint, ...], next_time: datetime | None,
                     previous: datetime | None = None) -> Decimal | None:
    """The symbol's own interval as the exchange states it, else from its settlement times
    (`previous`: the last settlement already held); None when nothing tells."""
    stated = parse_interval(rate_info.get("interval")) or intervals.get(symbol)
    if stated:
        return stated
    settled = [p.time for p in history]
    if previous is not None and previous.minute == previous.second == 0:  # settlements are on the hour
        settled = sorted({previous, *settled})
    times = settled[-2:] + ([next_time] if next_time else [])
    # The smallest gap: a settlement not yet published doubles the other gap, a new shorter
    # interval shows first in the newest gap.
    gaps = [Decimal((b - a).total_seconds()) / 3600 for a, b in itertools.pairwise(times)]
    gaps = [g.quantize(Decimal("0.01")) for g in gaps if 0 < g <= 24]
    return min(gaps).normalize() if gaps else None


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
_SEPARATE_INDEX: dict[str, Callable[[Client, dict], Awaitable[Decimal]]] = {"okx": _okx_index}


async def fetch_markets_snapshot(
    clients: ExchangeClients,
    settings: Settings,
    now: datetime,
    since_funding: dict[str, datetime] | None = None,
    *,
    max_concurrency: int | None = None,
    deadline_s: float | None = None,
) -> FeedResult:
    """Poll every configured asset's markets at once; per-asset problems become `failures`.

    `since_funding` (by asset) asks only for funding settled after that time; `max_concurrency`
    caps requests in flight (1 makes the poll sequential, as the benchmark compares);
    `deadline_s` overrides the per-exchange safety net (default: 80% of the poll period).
    """
    return await _Poll(clients, settings, now, since_funding, max_concurrency, deadline_s).run()
