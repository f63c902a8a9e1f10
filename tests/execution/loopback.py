"""A live-mode rig: real ccxt, the loopback Binance with its order desk, the real market feed."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.brokers import CcxtBroker
from core.config import Settings
from core.errors import FeedError
from core.execution import Executor
from core.feeds.clients import ExchangeClients
from core.feeds.exchange import fetch_markets_snapshot
from core.models import MarketSnapshot, Proposal
from core.store import Store
from tests.execution import BPS, order, proposal
from tests.fakes.exchange_orders import API_KEY, SECRET, OrderDesk
from tests.fakes.exchange_server import FakeExchange
from tests.feeds import TEST_CCXT, make_settings

KEY_ENV, SECRET_ENV = "PREMIA_TEST_BINANCE_KEY", "PREMIA_TEST_BINANCE_SECRET"
ASSETS = {"BTC": {}, "ETH": {"bucket": "altcoins"}}


def set_keys() -> None:
    """The desk's test key pair, where live mode reads keys: the environment."""
    os.environ[KEY_ENV] = API_KEY
    os.environ[SECRET_ENV] = SECRET


def live_settings(prefix: str, **top: Any) -> Settings:
    """mode = "live" on Binance spot + USDⓈ-M at the loopback `prefix`, keys from the environment."""
    execution = {"order_timeout_seconds": 1, **top.pop("execution", {})}
    return make_settings(prefix, ASSETS, exchange_overrides={
        "binance": {"api_key_env": KEY_ENV, "secret_env": SECRET_ENV}},
        mode="live", execution=execution, **top)


def utc_now() -> datetime:
    return datetime.now(UTC)


def feed(clients: ExchangeClients, settings: Settings) -> Callable[[], Any]:
    """The refresh callable of the executor: one real poll of the exchange."""

    async def refresh() -> MarketSnapshot:
        now = utc_now()
        result = await fetch_markets_snapshot(clients, settings, now)
        if not result.markets:
            raise FeedError("no market data")
        return MarketSnapshot(as_of=now, quote=settings.quote, assets=result.markets)

    return refresh


@dataclass
class Rig:
    server: FakeExchange
    desk: OrderDesk
    settings: Settings
    clients: ExchangeClients
    broker: CcxtBroker
    store: Store
    executor: Executor

    async def snapshot(self) -> MarketSnapshot:
        return await self.executor.refresh()

    async def basis(self, pid: str, units: str = "0.02") -> Proposal:
        """A basis trade at the feed's current prices, saved as an open proposal."""
        snap = await self.snapshot()
        spot, mark = snap.assets["BTC"].spot.price, snap.assets["BTC"].perp.mark  # type: ignore[union-attr]
        p = proposal(pid, order(0, "BTC/USDT", "buy", units, spot),
                     order(1, "BTC/USDT:USDT", "sell", units, mark), at=snap.as_of, prices={"BTC": spot})
        self.store.save_proposal(p)
        return p

    def creates(self, venue: str | None = None) -> list[dict[str, str]]:
        return self.desk.creates(venue)  # type: ignore[arg-type]

    async def close(self) -> None:
        await self.clients.close()
        self.store.close()


async def make_rig(server: FakeExchange, desk: OrderDesk, store: Store | None = None,
                   **top: Any) -> Rig:
    set_keys()
    cfg = live_settings(server.prefix, **top)
    clients = ExchangeClients(cfg, TEST_CCXT)
    broker = CcxtBroker(cfg, clients, exchange="binance", poll_seconds=0.05, retry_wait_s=0.01)
    store = store or Store.memory()
    ex = Executor(cfg, store, broker, feed(clients, cfg), utc_now)
    await ex.reconcile()
    return Rig(server, desk, cfg, clients, broker, store, ex)


def through(price: Decimal, side: str, bps: int = 5) -> Decimal:
    return price * (1 + bps * BPS) if side == "buy" else price * (1 - bps * BPS)


EXPIRY = timedelta(minutes=15)
