"""Brokers: paper (the default) and live through ccxt, and the start-up announcement.

    build_broker(settings, store, clock)  → PaperBroker, or CcxtBroker when mode = "live"
    startup_message(settings)             → the line the app posts to chat at start-up
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from core.config import Settings
from core.errors import ConfigError
from core.feeds.clients import ExchangeClients, credentials
from core.store import Store

from .base import Balances, Broker, OrderReport, OrderRequest, client_order_id
from .ccxt_broker import CcxtBroker
from .paper import PaperBroker

__all__ = ["Balances", "Broker", "CcxtBroker", "OrderReport", "OrderRequest", "PaperBroker",
           "build_broker", "client_order_id", "live_exchange", "startup_message"]


def live_exchange(settings: Settings) -> str:
    """The one exchange live trading uses; ConfigError unless its keys are in the environment."""
    used = sorted({a.exchange for a in settings.assets.values()})
    if len(used) != 1:
        raise ConfigError(f"live trading uses one exchange; assets are spread over {', '.join(used)}")
    name = used[0]
    cfg = settings.exchanges[name]
    found = credentials(cfg)
    if "apiKey" not in found or "secret" not in found:
        names = " and ".join(v for v in (cfg.api_key_env, cfg.secret_env) if v) or "(none configured)"
        raise ConfigError(f"mode = \"live\" needs API keys for {name} in the environment: set "
                          f"exchanges.{name}.api_key_env / secret_env and export {names}")
    return name


def build_broker(settings: Settings, store: Store, clock: Callable[[], datetime], *,
                 clients: ExchangeClients | None = None,
                 ccxt_overrides: Mapping[str, Any] | None = None) -> Broker:
    """Paper unless the config says mode = "live" (and the keys are set)."""
    if settings.mode != "live":
        return PaperBroker(settings, store, clock)
    name = live_exchange(settings)
    return CcxtBroker(settings, clients or ExchangeClients(settings, ccxt_overrides), exchange=name)


def startup_message(settings: Settings) -> str:
    """How the bot trades, announced in chat at start-up (live mode says so loudly)."""
    ex = settings.execution
    if settings.mode != "live":
        return ("📝 Paper trading: approved proposals fill on the paper book; no real orders are sent.")
    name = live_exchange(settings)
    timeout = (f"cancel and replace up to {ex.max_replaces}×" if ex.on_timeout == "cancel_replace"
               else "cancel and report")
    return (f"⚠️ LIVE trading on {name}: approved proposals send real limit orders "
            f"({'post-only, ' if ex.post_only else ''}{settings.costs.limit_offset_bps} bps from the market, "
            f"{ex.order_timeout_seconds}s timeout then {timeout}). Transfers between wallets: "
            f"{'automatic' if ex.auto_transfer else 'reported for you to do'}.")
