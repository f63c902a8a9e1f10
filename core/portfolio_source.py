"""Where the engine's portfolio comes from: the paper book in the store, or the exchange itself.

    PortfolioSource (protocol)  portfolio() → Portfolio; cached() without I/O; close()
    ├── PaperBook               the store's paper book, seeded from `[paper]` (the default)
    └── ExchangePortfolio       spot balances and futures positions through ccxt, keys from the env

`build_portfolio_source` picks the exchange in live mode and the paper book otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from core.codec import portfolio_from_dict, portfolio_to_dict
from core.config import Settings
from core.errors import ConfigError, FeedError
from core.models import ZERO, Portfolio, Position

if TYPE_CHECKING:
    from core.feeds.clients import ExchangeClients
    from core.store import Store

log = logging.getLogger(__name__)


class PortfolioSource(Protocol):
    """What the engine values and rebalances."""

    name: str

    async def portfolio(self) -> Portfolio: ...

    def cached(self) -> Portfolio | None: ...

    async def close(self) -> None: ...


def seed_portfolio(settings: Settings) -> Portfolio:
    """The paper portfolio the config starts with (`[paper]` balances and positions)."""
    positions = tuple(Position(str(p["symbol"]), Decimal(str(p["contracts"])),
                               Decimal(str(p.get("contract_size", 1))))
                      for p in settings.paper.positions)
    return Portfolio(dict(settings.paper.balances), positions)


class PaperBook:
    """The paper book the paper broker trades on, kept in the store; written once from config."""

    name = "paper"

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    def read(self) -> Portfolio:
        """The book as stored; the first read seeds it from `[paper]`."""
        raw = self.store.get_paper_book()
        if raw is not None:
            return portfolio_from_dict(raw)
        seeded = seed_portfolio(self.settings)
        self.store.put_paper_book(portfolio_to_dict(seeded), self.clock())
        return seeded

    def put(self, portfolio: Portfolio) -> None:
        """Replace the book (a replay or a demo moving it by hand)."""
        self.store.put_paper_book(portfolio_to_dict(portfolio), self.clock())

    async def portfolio(self) -> Portfolio:
        return self.read()

    def cached(self) -> Portfolio | None:
        return self.read()  # one small row: cheap enough to be always current

    async def close(self) -> None:
        return None


def _amounts(balance: Any, field: str) -> dict[str, Decimal]:
    """`{"total": {"BTC": 0.5, …}}` → non-zero Decimals (via str, so 0.1 stays 0.1)."""
    raw = balance.get(field) if isinstance(balance, Mapping) else None
    if not isinstance(raw, Mapping):
        raise FeedError(f"the exchange's balance answer has no '{field}' amounts")
    out = {}
    for asset, amount in raw.items():
        if amount not in (None, "", 0):
            value = Decimal(str(amount))
            if value:
                out[str(asset).upper()] = value
    return out


def _positions(rows: Any) -> list[Position]:
    if not isinstance(rows, list):
        raise FeedError("the exchange's positions answer is not a list")
    out = []
    for p in rows:
        contracts = Decimal(str(p.get("contracts") or 0)) if isinstance(p, Mapping) else ZERO
        if contracts and p.get("symbol"):
            signed = -abs(contracts) if p.get("side") == "short" else contracts
            out.append(Position(p["symbol"], signed, Decimal(str(p.get("contractSize") or 1))))
    return out


class ExchangePortfolio:
    """Whole holdings over the spot and futures wallets of every exchange that has keys set."""

    name = "exchange"

    def __init__(self, settings: Settings, clients: ExchangeClients | None = None, *,
                 exchanges: Sequence[str] | None = None,
                 ccxt_overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self._clients = clients
        self._owns_clients = clients is None
        self._overrides = dict(ccxt_overrides or {})
        self.exchanges = list(exchanges) if exchanges is not None else self._keyed_exchanges()
        self._last: Portfolio | None = None

    def _keyed_exchanges(self) -> list[str]:
        from core.feeds.clients import credentials

        used = sorted({cfg.exchange for cfg in self.settings.assets.values()})
        keyed = [n for n in used if "apiKey" in credentials(self.settings.exchanges[n])]
        if not keyed:
            names = ", ".join(f"exchanges.{n}.api_key_env" for n in used)
            raise ConfigError(f"reading balances from the exchange needs API keys in the environment "
                              f"(set {names} and export those variables)")
        return keyed

    @property
    def clients(self) -> ExchangeClients:
        if self._clients is None:
            from core.feeds.clients import ExchangeClients

            self._clients = ExchangeClients(self.settings, self._overrides)
        return self._clients

    async def _call(self, fn: Callable[[], Any]) -> Any:
        from core.feeds.retry import retrying

        async def attempt() -> Any:  # tenacity runs a plain lambda as a sync function
            return await fn()

        return await retrying(self.settings.feeds.retries)(attempt)

    async def _one(self, name: str) -> tuple[dict[str, Decimal], list[Position]]:
        clients = self.clients
        await self._call(lambda: clients.load_markets(name))
        totals = _amounts(await self._call(lambda: clients.spot(name).fetch_balance()), "total")
        if clients.has_separate_futures(name):
            futures = await self._call(lambda: clients.futures(name).fetch_balance())
            for asset, amount in _amounts(futures, "total").items():
                totals[asset] = totals.get(asset, ZERO) + amount
        fut = clients.futures(name)
        positions = _positions(await self._call(fut.fetch_positions)) if fut.has.get("fetchPositions") else []
        return totals, positions

    async def portfolio(self) -> Portfolio:
        """Balances (free, locked and margin) and open positions; FeedError when unreadable."""
        from core.feeds.retry import describe

        balances: dict[str, Decimal] = {}
        positions: list[Position] = []
        for name in self.exchanges:
            try:
                totals, pos = await self._one(name)
            except FeedError:
                raise
            except Exception as exc:
                # describe() keeps the class and first line, never the signed query string.
                raise FeedError(f"cannot read the {name} account: {describe(exc)}") from None
            for asset, amount in totals.items():
                balances[asset] = balances.get(asset, ZERO) + amount
            positions += pos
        self._last = Portfolio(balances, tuple(positions))
        return self._last

    def cached(self) -> Portfolio | None:
        return self._last

    async def close(self) -> None:
        clients, self._clients = self._clients, None
        if clients is not None and self._owns_clients:
            await clients.close()


def build_portfolio_source(settings: Settings, store: Store, clock: Callable[[], datetime], *,
                           clients: ExchangeClients | None = None) -> PortfolioSource:
    """The exchange account in live mode (keys required), the paper book otherwise."""
    if settings.mode == "live":
        return ExchangePortfolio(settings, clients)
    return PaperBook(settings, store, clock)
