"""ccxt async clients built from `ExchangeConfig`: one spot and one futures client per exchange.

Clients are created lazily and closed together. Base URLs can be overridden per key of
`exchange.urls['api']`, or all at once with `urls = {"*": "http://127.0.0.1:PORT"}`, which rewrites
every API URL to `PREFIX/<original host>/<path>` (the loopback exchange in tests). API keys are read
from the environment variables the config names, only when set, and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async

from core.config import ExchangeConfig, Settings
from core.errors import ConfigError

log = logging.getLogger(__name__)
# ccxt logs request headers (the API key) and signed URLs at DEBUG: never let those through.
_CCXT_LOG = logging.getLogger("ccxt.base.exchange")

Client = Any  # a ccxt.async_support.Exchange; ccxt ships no type stubs

WILDCARD = "*"


def rewrite_url(url: str, prefix: str) -> str:
    """`https://fapi.binance.com/fapi/v1` → `PREFIX/fapi.binance.com/fapi/v1` (placeholders kept)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    rest = url.split(parts.netloc, 1)[1]
    return f"{prefix.rstrip('/')}/{parts.netloc}{rest}"


def override_api_urls(api: Any, urls: Mapping[str, str]) -> Any:
    """Apply `ExchangeConfig.urls` to a ccxt `urls['api']` value (a string or nested mapping)."""
    prefix = urls.get(WILDCARD)
    if isinstance(api, str):
        return urls.get("api", rewrite_url(api, prefix) if prefix else api)
    if isinstance(api, Mapping):
        out = {}
        for key, value in api.items():
            if key in urls:
                out[key] = urls[key]
            elif isinstance(value, str | Mapping):
                out[key] = override_api_urls(value, {WILDCARD: prefix} if prefix else {})
            else:
                out[key] = value
        return out
    return api


def credentials(cfg: ExchangeConfig) -> dict[str, str]:
    """apiKey/secret/password from the environment variables the config names, when set."""
    found = {}
    for ccxt_key, env_name in (("apiKey", cfg.api_key_env), ("secret", cfg.secret_env),
                               ("password", cfg.password_env)):
        value = os.environ.get(env_name) if env_name else None
        if value:
            found[ccxt_key] = value
    return found


def _trim_market_types(client: Client, spot_only: bool) -> None:
    """Load no option markets (Premia trades none; thousands of them cost memory), and only
    spot ones where a separate futures client loads the derivatives."""
    current = client.options.get("fetchMarkets")
    types = current.get("types") if isinstance(current, dict) else current
    if not isinstance(types, list):
        return
    kept = ["spot"] if spot_only else [t for t in types if t != "option"]
    client.options["fetchMarkets"] = {**current, "types": kept} if isinstance(current, dict) else kept


def build_client(cfg: ExchangeConfig, ccxt_id: str, *, spot_only: bool = False,
                 overrides: Mapping[str, Any] | None = None) -> Client:
    """One ccxt async client; `overrides` are top-level ccxt settings (tests: enableRateLimit)."""
    cls = getattr(ccxt_async, ccxt_id, None)
    if cls is None:
        raise ConfigError(f"exchanges: ccxt has no exchange '{ccxt_id}'; check ccxt_id/futures_ccxt_id")
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": cfg.timeout_ms,
        "options": dict(cfg.options),
        **credentials(cfg),
        **(overrides or {}),
    }
    if _CCXT_LOG.getEffectiveLevel() < logging.INFO:
        _CCXT_LOG.setLevel(logging.INFO)
    client = cls(config)
    if "fetchMarkets" not in cfg.options:
        _trim_market_types(client, spot_only)
    if cfg.sandbox:
        client.set_sandbox_mode(True)
    if cfg.urls:
        # After set_sandbox_mode, which swaps urls['api'] for the test URLs.
        client.urls["api"] = override_api_urls(client.urls["api"], cfg.urls)
    return client


class ExchangeClients:
    """The ccxt clients of every configured exchange, created on first use."""

    def __init__(self, settings: Settings, ccxt_overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self._overrides = dict(ccxt_overrides or {})
        self._clients: dict[tuple[str, str], Client] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # History that no longer changes (finished daily closes), kept between polls by the feed.
        self.history_cache: dict[tuple, Any] = {}

    def _config(self, name: str) -> ExchangeConfig:
        try:
            return self.settings.exchanges[name]
        except KeyError:
            raise ConfigError(f"no [exchanges.{name}] in the config") from None

    def _get(self, name: str, role: str) -> Client:
        key = (name, role)
        if key not in self._clients:
            cfg = self._config(name)
            if role == "futures":
                self._clients[key] = build_client(cfg, cfg.futures_ccxt_id or cfg.ccxt_id,
                                                  overrides=self._overrides)
            else:
                separate = bool(cfg.futures_ccxt_id) and cfg.futures_ccxt_id != cfg.ccxt_id
                self._clients[key] = build_client(cfg, cfg.ccxt_id, spot_only=separate,
                                                  overrides=self._overrides)
        return self._clients[key]

    def has_separate_futures(self, name: str) -> bool:
        cfg = self._config(name)
        return bool(cfg.futures_ccxt_id) and cfg.futures_ccxt_id != cfg.ccxt_id

    def spot(self, name: str) -> Client:
        """The spot client of exchange `name` (its ccxt_id)."""
        return self._get(name, "spot")

    def futures(self, name: str) -> Client:
        """The futures client (futures_ccxt_id), or the spot client when the exchange has one API."""
        return self._get(name, "futures") if self.has_separate_futures(name) else self.spot(name)

    def roles(self, name: str) -> dict[str, Client]:
        clients = {"spot": self.spot(name)}
        if self.has_separate_futures(name):
            clients["futures"] = self.futures(name)
        return clients

    async def load_markets(self, name: str, cached: dict | None = None, *, reload: bool = False) -> dict:
        """Load markets once per client; `cached` (from `markets_for_cache`) skips the network.

        `reload=True` fetches them again (new dated futures are listed every quarter).
        """
        for role, client in self.roles(name).items():
            lock = self._locks.setdefault((name, role), asyncio.Lock())
            async with lock:
                if client.markets and not reload:
                    continue
                saved = None if reload else (cached or {}).get(role)
                if saved:
                    client.set_markets(saved)
                else:
                    await client.load_markets(reload)
        return self.markets_for_cache(name)

    def markets_loaded(self, name: str) -> bool:
        return all(client.markets for client in self.roles(name).values())

    def markets_for_cache(self, name: str) -> dict:
        """`{"spot": markets, "futures": markets}` as loaded, not copied (futures: separate client only)."""
        return {role: client.markets for role, client in self.roles(name).items() if client.markets}

    async def close(self) -> None:
        """Close every client that was created (each closes its own HTTP session)."""
        clients, self._clients = list(self._clients.values()), {}
        results = await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        for client, result in zip(clients, results, strict=True):
            if isinstance(result, Exception):
                log.warning("closing %s failed: %s", client.id, result)

    async def __aenter__(self) -> ExchangeClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
