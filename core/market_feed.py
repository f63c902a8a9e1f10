"""Where the engine's market snapshots come from: live exchanges and Fear & Greed, or a replay.

    MarketFeed (protocol)   fetch(now) → FeedReport; sizing_rules; refresh_markets;
                            refresh_fear_greed; close
    ├── LiveFeed            ccxt (core.feeds) + alternative.me, history kept in the store
    └── ReplayFeed          a HistoryFrame (files or the store) served day by day

A feed never raises for a market problem: what failed is in `FeedReport.failures`, and which
feeds answered is in `FeedReport.statuses`, from which the engine raises one alert when a feed
dies and one when it comes back. Quotes keep the exchange's own timestamps; the snapshot's
`as_of` is the time of the poll, so that `evaluate()` can tell stale quotes.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from core.config import Settings
from core.errors import FeedError
from core.history_csv import HistoryFrame
from core.market_rules import rules_from_markets
from core.models import AssetMarket, FearGreed, FundingPrint, MarketSnapshot
from core.planner import MarketRule, default_rule
from core.redact import describe  # engine imports it from here too
from core.replay import Replay, as_of_for, window_days

if TYPE_CHECKING:
    from core.feeds.clients import ExchangeClients
    from core.feeds.exchange import FeedResult
    from core.store import Store

log = logging.getLogger(__name__)

FEAR_GREED = "fear_greed"
# alternative.me updates once a day: asking hourly is plenty while it answers.
FEAR_GREED_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Whether one feed (an exchange name, "fear_greed", "replay") answered this poll."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FeedReport:
    """One poll: the snapshot (None when no asset could be fetched), what failed, who answered."""

    snapshot: MarketSnapshot | None
    failures: tuple[str, ...] = ()
    statuses: tuple[FeedStatus, ...] = ()
    request_count: int = 0

    @property
    def dead(self) -> tuple[FeedStatus, ...]:
        return tuple(s for s in self.statuses if not s.ok)


class MarketFeed(Protocol):
    """A source of market snapshots for the engine."""

    async def fetch(self, now: datetime) -> FeedReport: ...

    def sizing_rules(self) -> dict[str, MarketRule]: ...

    async def refresh_markets(self, now: datetime) -> str: ...

    async def refresh_fear_greed(self, now: datetime) -> str: ...

    async def close(self) -> None: ...


# ── live ────────────────────────────────────────────────────────────────────────────────────


class LiveFeed:
    """The configured exchanges through ccxt and the Fear & Greed index, one poll at a time.

    With a store it asks only for funding settled since the last stored print (and stores the
    new ones), keeps daily closes and Fear & Greed, and starts from the store's copy of the
    exchange markets when it is younger than `scheduler.markets_refresh_hours`.
    """

    def __init__(self, settings: Settings, store: Store | None = None, *,
                 clients: ExchangeClients | None = None,
                 ccxt_overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.store = store
        self._clients = clients
        self._overrides = dict(ccxt_overrides or {})
        self._fg: FearGreed | None = None
        self._fg_tried: datetime | None = None
        self._fg_ok = False

    @property
    def clients(self) -> ExchangeClients:
        if self._clients is None:
            from core.feeds.clients import ExchangeClients

            self._clients = ExchangeClients(self.settings, self._overrides)
        return self._clients

    def exchanges(self) -> list[str]:
        """Exchange names the configured assets are polled on."""
        quote = self.settings.quote
        return sorted({cfg.exchange for asset, cfg in self.settings.assets.items() if asset != quote})

    def window(self) -> timedelta:
        """How much funding history a snapshot carries (what the enabled rules need)."""
        return timedelta(days=window_days(self.settings))

    def sizing_rules(self) -> dict[str, MarketRule]:
        """Minimum notional and steps of each traded symbol from the markets loaded so far.

        Before the first load (or for a symbol the exchange does not list) the planner falls
        back to the config's `[orders]` values.
        """
        rules: dict[str, MarketRule] = {}
        if self._clients is None:
            return rules
        for asset, cfg in self.settings.assets.items():
            if asset == self.settings.quote or not self._clients.markets_loaded(cfg.exchange):
                continue
            markets: dict[str, Any] = {}
            for loaded in self._clients.markets_for_cache(cfg.exchange).values():
                markets.update(loaded)
            perp = self.settings.perp_symbol(asset)
            symbols = {self.settings.spot_symbol(asset), *([perp] if perp else [])}
            rules.update(rules_from_markets(markets, symbols, default_rule(self.settings, asset)))
        return rules

    async def fetch(self, now: datetime) -> FeedReport:
        from core.feeds.exchange import fetch_markets_snapshot

        to_load = await self._markets_from_store(now)
        since = self._since_funding(now)
        result, fg_statuses = await asyncio.gather(
            fetch_markets_snapshot(self.clients, self.settings, now, since),
            self._fear_greed(now, force=False))
        self._save_markets(to_load, now)
        markets = {asset: self._with_stored_funding(m, now) for asset, m in result.markets.items()}
        self._keep_history(result.markets)
        failures = tuple(f"{f.exchange} {f.asset or '-'} {f.what}: {f.message}" for f in result.failures)
        statuses = (*self._exchange_statuses(result), *fg_statuses)
        snapshot = None
        if any(m.spot or m.perp or m.futures for m in markets.values()):
            snapshot = MarketSnapshot(now, self.settings.quote, markets, self._fg)
        return FeedReport(snapshot, failures, statuses, result.request_count)

    def _exchange_statuses(self, result: FeedResult) -> list[FeedStatus]:
        """An exchange is down when not one fresh quote came from it (cached closes do not count)."""
        out = []
        for name in self.exchanges():
            mine = [a for a, cfg in self.settings.assets.items() if cfg.exchange == name]
            got = [a for a in mine if (m := result.markets.get(a)) and (m.spot or m.perp or m.futures)]
            failed = [f for f in result.failures if f.exchange == name]
            if got:
                detail = f"{len(failed)} part(s) failed" if failed else ""
                out.append(FeedStatus(name, True, detail))
            else:
                why = failed[0].message if failed else "no quote arrived"
                out.append(FeedStatus(name, False, why))
        return out

    # markets: the store's recent copy spares a load at start-up
    async def _markets_from_store(self, now: datetime) -> list[str]:
        """Load markets from the store's recent copy; returns the exchanges still to load."""
        clients, to_load = self.clients, []
        max_age = timedelta(hours=self.settings.scheduler.markets_refresh_hours)
        for name in self.exchanges():
            try:
                if clients.markets_loaded(name):
                    continue
                saved = self.store.load_markets(name) if self.store is not None else None
                if saved is not None and now - saved[1] < max_age and saved[0]:
                    await clients.load_markets(name, saved[0])
                    continue
            except Exception as exc:  # a bad cached copy: the poll loads from the exchange
                log.warning("markets of %s from the store unusable (%s); loading them afresh",
                            name, describe(exc))
            to_load.append(name)
        return to_load

    def _save_markets(self, names: Sequence[str], now: datetime) -> None:
        if self.store is None:
            return
        for name in names:
            try:
                if self.clients.markets_loaded(name):
                    self.store.save_markets(name, self.clients.markets_for_cache(name), now)
            except Exception as exc:  # the cache is a convenience: the poll goes on without it
                log.warning("could not keep the markets of %s in the store: %s", name, describe(exc))

    async def refresh_markets(self, now: datetime) -> str:
        """Reload every exchange's markets (new dated futures are listed each quarter) and keep them."""
        from core.feeds.retry import retrying

        done, failed = [], []
        for name in self.exchanges():
            try:
                async def reload(n: str = name) -> None:
                    await self.clients.load_markets(n, reload=True)

                await retrying(self.settings.feeds.retries)(reload)
            except Exception as exc:
                failed.append(f"{name}: {describe(exc)}")
                continue
            done.append(name)
            self._save_markets([name], now)
        if failed:
            raise FeedError("markets refresh failed for " + "; ".join(failed))
        return "markets reloaded: " + ", ".join(done)

    # funding: only what settled since the last stored print, merged with the stored window
    def _since_funding(self, now: datetime) -> dict[str, datetime]:
        if self.store is None:
            return {}
        start, out = now - self.window(), {}
        for asset, cfg in self.settings.assets.items():
            symbol = self.settings.perp_symbol(asset)
            if not symbol or asset == self.settings.quote:
                continue
            last = self.store.latest_funding_time(cfg.exchange, symbol)
            # Beyond the window the stored prints do not help: ask for the whole window.
            if last is not None and start < last <= now:
                out[asset] = last
        return out

    def _with_stored_funding(self, market: AssetMarket, now: datetime) -> AssetMarket:
        perp = market.perp
        if perp is None or self.store is None:
            return market
        start = now - self.window()
        exchange = self.settings.assets[market.asset].exchange
        prints = dict(self.store.funding_history(perp.symbol, start, now, exchange))
        prints.update((p.time, p.rate) for p in perp.funding_history)
        merged = tuple(FundingPrint(t, r) for t, r in sorted(prints.items()) if t > start)
        return replace(market, perp=replace(perp, funding_history=merged))

    def _keep_history(self, markets: Mapping[str, AssetMarket]) -> None:
        """New funding prints and finished daily closes go to the store (history for backtests)."""
        if self.store is None:
            return
        funding, closes = [], []
        for asset, m in markets.items():
            exchange = self.settings.assets[asset].exchange
            if m.perp is not None:
                funding += [(exchange, m.perp.symbol, p.time, p.rate) for p in m.perp.funding_history]
            last = self.store.latest_close_day(asset)
            closes += [(asset, c.day, c.price) for c in m.closes if last is None or c.day >= last]
        try:
            with self.store.transaction():
                self.store.upsert_funding(funding)
                self.store.upsert_closes(closes)
        except Exception as exc:
            log.warning("could not keep market history in the store: %s", describe(exc))

    # Fear & Greed
    async def _fear_greed(self, now: datetime, *, force: bool) -> tuple[FeedStatus, ...]:
        """Ask alternative.me at most hourly while it answers, every poll while it does not."""
        recent = self._fg_tried is not None and now - self._fg_tried < FEAR_GREED_EVERY
        if not force and self._fg_ok and recent:
            return ()
        from core.feeds.fear_greed import fetch_fear_greed

        self._fg_tried = now
        feeds = self.settings.feeds
        try:
            fg = await fetch_fear_greed(feeds.fear_greed_url, window_days(self.settings),
                                        feeds.timeout_seconds)
        except Exception as exc:  # FeedError, or anything odd from the HTTP stack
            self._fg_ok = False
            if self._fg is None:
                self._fg = self._stored_fear_greed(now)
            why = str(exc) if isinstance(exc, FeedError) else describe(exc)
            return (FeedStatus(FEAR_GREED, False, why),)
        self._fg, self._fg_ok = fg, True
        if self.store is not None:
            try:
                self.store.upsert_fear_greed(list(fg.history))
            except Exception as exc:
                log.warning("could not keep Fear & Greed in the store: %s", describe(exc))
        return (FeedStatus(FEAR_GREED, True),)

    def _stored_fear_greed(self, now: datetime) -> FearGreed | None:
        """The last readings the store holds (evaluate() judges whether they are too old)."""
        if self.store is None:
            return None
        history = self.store.fear_greed_history(now.date() - self.window(), now.date())
        if not history:
            return None
        day, value = history[-1]
        return FearGreed(value, datetime.combine(day, time(), UTC), tuple(history))

    async def refresh_fear_greed(self, now: datetime) -> str:
        """Fetch the index now (the daily job); raises FeedError when alternative.me fails."""
        statuses = await self._fear_greed(now, force=True)
        if statuses and not statuses[0].ok:
            raise FeedError(statuses[0].detail)
        return f"Fear & Greed {self._fg.value} ({self._fg.label})" if self._fg else "no reading"

    async def close(self) -> None:
        """Close the exchange connections (loaded markets go with them)."""
        clients, self._clients = self._clients, None
        if clients is not None:
            await clients.close()


# ── replay ──────────────────────────────────────────────────────────────────────────────────


class ReplayFeed:
    """History served as the snapshots the live bot would have seen, one per day (demo, backtest).

    `fetch(now)` serves the last day whose snapshot time (the end of the day) is not after `now`;
    `now()` and `advance()` walk a clock through the days, so an engine can run on it.
    """

    def __init__(self, frame: HistoryFrame, settings: Settings, *,
                 perp_closes: Mapping[str, Mapping[date, Any]] | None = None,
                 start: date | None = None, end: date | None = None) -> None:
        self.replay = Replay(frame, settings, perp_closes)
        self.days = self.replay.trading_days(start, end)
        self._as_of = [as_of_for(d) for d in self.days]
        self.position = 0

    @classmethod
    def from_store(cls, store: Store, settings: Settings, start: date, end: date) -> ReplayFeed:
        """Replay the closes, funding and Fear & Greed the store holds for the configured assets."""
        assets = [a for a in settings.assets if a != settings.quote]
        warm = start - timedelta(days=window_days(settings))
        closes = {a: dict(store.closes(a, warm, end)) for a in assets}
        days = tuple(sorted({d for c in closes.values() for d in c}))
        lo = datetime.combine(warm, time(), UTC)
        hi = datetime.combine(end + timedelta(days=1), time(), UTC)
        funding = {}
        for a in assets:
            symbol = settings.perp_symbol(a)
            if symbol:
                prints = dict(store.funding_history(symbol, lo, hi, settings.assets[a].exchange))
                if prints:
                    funding[symbol] = tuple(FundingPrint(t, r) for t, r in sorted(prints.items()))
        frame = HistoryFrame(days, {a: tuple(closes[a].get(d) for d in days) for a in assets}, funding,
                             dict(store.fear_greed_history(warm, end)), source="store")
        return cls(frame, settings, start=start, end=end)

    def now(self) -> datetime:
        """The replay clock: the snapshot time of the current day."""
        if not self.days:
            raise IndexError("the replay has no trading days")
        return as_of_for(self.days[min(self.position, len(self.days) - 1)])

    def advance(self) -> bool:
        """Move to the next day; False at the end."""
        if self.position + 1 >= len(self.days):
            return False
        self.position += 1
        return True

    async def fetch(self, now: datetime) -> FeedReport:
        i = bisect_right(self._as_of, now)
        if i == 0:
            why = f"no replayed day ends at or before {now:%Y-%m-%d %H:%M} UTC"
            return FeedReport(None, (f"replay: {why}",), (FeedStatus("replay", False, why),))
        return FeedReport(self.replay.snapshot(self.days[i - 1]), (), (FeedStatus("replay", True),))

    def sizing_rules(self) -> dict[str, MarketRule]:
        return {}  # history has no exchange metadata: the config's minimums and steps apply

    async def refresh_markets(self, now: datetime) -> str:
        return "replay: nothing to refresh"

    async def refresh_fear_greed(self, now: datetime) -> str:
        return "replay: nothing to refresh"

    async def close(self) -> None:
        return None
