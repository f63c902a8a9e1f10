"""Wiring the bot's parts over one store: the services the commands use, the engine over the
live feed and the portfolio source, the executor over the broker, and the command layer that
`premia chat` talks to (with or without a `premia run` alive on the same store).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chatbot.commands import CommandDispatcher
from chatbot.handlers import Services
from core.config import Settings

HEARTBEAT = "bot"
HEARTBEAT_S = 60
# Another process that wrote its heartbeat this recently is taken to be running.
ALIVE_WITHIN = timedelta(seconds=3 * HEARTBEAT_S)


def utc_now() -> datetime:
    return datetime.now(UTC)


# ── wiring ──────────────────────────────────────────────────────────────────────────────────


def build_services(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
                   engine_factory: Callable[..., Any] | None = None) -> Services:
    """Open the store and build the engine and executor the commands work with."""
    from core.store import Store

    store = Store.open(settings.db_path)
    services = Services(settings, store, clock=clock, history_dir=settings.history_dir)
    (engine_factory or build_engine)(services)
    return services


def build_engine(services: Services) -> None:
    """The broker (paper unless mode = "live"), the engine over the live feed, and the executor."""
    from core.brokers import build_broker
    from core.engine import Engine
    from core.execution import Executor
    from core.market_feed import LiveFeed
    from core.portfolio_source import build_portfolio_source

    s = services
    broker = build_broker(s.settings, s.store, s.clock)
    feed = LiveFeed(s.settings, s.store)
    portfolio = build_portfolio_source(s.settings, s.store, s.clock, clients=feed.clients)
    engine = Engine(s.settings, s.store, feed, portfolio, s.clock)
    s.engine = engine
    s.executor = Executor(s.settings, s.store, broker, engine.refresh, s.clock)


def bot_alive(services: Services) -> bool:
    """Whether a `premia run` wrote its heartbeat to this store recently."""
    beat = services.store.last_heartbeat(HEARTBEAT)
    return beat is not None and services.clock() - beat < ALIVE_WITHIN


async def build_dispatcher(settings: Settings) -> CommandDispatcher:
    """The command layer over the real store and engine (`premia chat`)."""
    services = build_services(settings)
    engine: Any = services.engine
    engine.keep_clients = False
    executor: Any = services.executor
    if bot_alive(services):
        # The running bot reconciled at its start and may be executing right now: reconciling
        # here would cancel its orders in flight. Its compare-and-set start still makes an
        # approval from this console safe.
        executor.reconciled = True
    else:
        await executor.reconcile()
    return CommandDispatcher(services)
