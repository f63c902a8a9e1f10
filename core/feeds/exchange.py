"""One poll of the exchanges: spot, perpetual, dated futures and daily closes for every asset.

Every request of a poll runs at once (`asyncio`), grouped by exchange; each request is bounded by
its exchange's `timeout_ms`, transient errors are retried (`core.feeds.retry`), and a failure of
one part of one asset becomes a `FeedFailure` while the rest of the poll goes on. A safety-net
deadline (by default 80% of the poll period) reports whatever is still pending rather than let
one poll run into the next. Prices are `Decimal`s made from ccxt's numbers via `str`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.config import Settings
from core.feeds.ccxt_answers import dec, dt_to_ms, funding_interval, ms_to_dt, next_funding_time, not_json
from core.feeds.clients import Client, ExchangeClients
from core.feeds.poll_requests import SEPARATE_INDEX, PollRequests
from core.feeds.retry import FailureKind, MalformedResponse, describe, failure_kind
from core.models import ONE, AssetMarket, PerpQuote

log = logging.getLogger(__name__)

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


def dated_futures(client: Client, asset: str, quote: str, now: datetime) -> list[dict]:
    """Unexpired dated futures of an asset from market metadata: linear ones settled in `quote`,
    and inverse (coin-margined) ones settled in the asset, marked so (they tell the basis but
    their contract size is in USD, so the planner never trades them)."""
    now_ms = dt_to_ms(now)
    found = []
    for market in (client.markets or {}).values():
        if not market.get("future") or market.get("base") != asset or market.get("active") is False:
            continue
        if not market.get("expiry") or market["expiry"] <= now_ms:
            continue
        linear = market.get("linear") and market.get("settle") == quote
        if linear or (market.get("inverse") and market.get("settle") == asset):
            found.append(market)
    return sorted(found, key=lambda m: m["expiry"])


class _Poll(PollRequests):
    """The state of one poll: request stats, failures, and the parts each asset got."""

    def __init__(self, clients: ExchangeClients, settings: Settings, now: datetime,
                 since_funding: Mapping[str, datetime] | None, max_concurrency: int | None,
                 deadline_s: float | None) -> None:
        super().__init__(clients, settings, now, max_concurrency)
        self.deadline_s = deadline_s or settings.scheduler.poll_minutes * 60 * DEADLINE_SHARE
        self.since_funding = since_funding or {}
        self.failures: list[FeedFailure] = []
        self.expected: set[tuple[str | None, str]] = set()

    def fail(self, exchange: str, asset: str | None, what: str, exc: BaseException) -> None:
        kind = "permanent" if isinstance(exc, LookupError) else failure_kind(exc)
        failure = FeedFailure(exchange, asset, what, kind, describe(exc))
        log.warning("feed %s %s %s failed (%s): %s", exchange, asset or "-", what, kind, failure.message)
        self.failures.append(failure)

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
            index_fetcher = SEPARATE_INDEX.get(fut.id)
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
