"""Premia's settings: one TOML file, validated once at start-up into a frozen object.

Strategy presets live in `config/presets.toml`; the user's `[strategy]` table picks one and may
override any of its values. Secrets never appear here: only the names of the environment
variables that hold them.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.redact import mask_secrets
from core.strategy_config import Frozen, Strategy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRESETS_FILE = PROJECT_ROOT / "config" / "presets.toml"
EXAMPLE_CONFIG = PROJECT_ROOT / "config" / "premia.example.toml"
DEFAULT_CONFIG_ENV = "PREMIA_CONFIG"


# ── portfolio, markets, costs ───────────────────────────────────────────────────────────────


class AssetConfig(Frozen):
    bucket: str = "majors"
    split: Decimal = Decimal(1)
    exchange: str = "binance"
    spot_symbol: str | None = None
    perp_symbol: str | None = None
    dated_futures: bool = True
    min_notional: Decimal | None = None

    @field_validator("split")
    @classmethod
    def _split_positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("split is a positive weight inside the bucket (e.g. 0.6)")
        return v


class ExchangeConfig(Frozen):
    ccxt_id: str = "binance"
    futures_ccxt_id: str | None = "binanceusdm"
    api_key_env: str | None = None
    secret_env: str | None = None
    password_env: str | None = None
    urls: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int = 10_000
    sandbox: bool = False


class Staleness(Frozen):
    spot_seconds: int = 900
    perp_seconds: int = 900
    futures_seconds: int = 900
    fear_greed_hours: int = 36
    closes_days: int = 3


class Costs(Frozen):
    spot_fee_bps: Decimal = Decimal(10)
    futures_fee_bps: Decimal = Decimal(5)
    slippage_bps: Decimal = Decimal(5)
    limit_offset_bps: Decimal = Decimal(5)


class OrderCaps(Frozen):
    min_notional: Decimal = Decimal(10)
    max_order_notional: Decimal = Decimal(250_000)
    max_daily_turnover: Decimal = Decimal(1_000_000)
    amount_decimals: int = 8
    price_decimals: int = 8


class PaperPortfolio(Frozen):
    balances: dict[str, Decimal] = Field(default_factory=lambda: {"USDT": Decimal(10_000)})
    positions: list[dict[str, Any]] = Field(default_factory=list)


class SchedulerConfig(Frozen):
    poll_minutes: int = 5
    funding_offset_seconds: int = 60
    fear_greed_hour_utc: int = 0
    fear_greed_minute_utc: int = 10
    digest_hour_utc: int = 8
    watchdog_minutes: int = 15
    markets_refresh_hours: int = 24
    alert_cooldown_minutes: int = 240


class ProposalsConfig(Frozen):
    expiry_minutes: int = 15
    price_tolerance: Decimal = Decimal("0.01")
    auto_execute: bool = False


class ExecutionConfig(Frozen):
    post_only: bool = False
    order_timeout_seconds: int = 60
    on_timeout: Literal["cancel_replace", "cancel_report"] = "cancel_replace"
    max_replaces: int = 2
    auto_transfer: bool = False
    # Share of a futures leg's notional the futures wallet must hold (20% = 5x leverage).
    futures_margin_rate: Decimal = Field(Decimal("0.2"), gt=0, le=1)


class TelegramConfig(Frozen):
    token_env: str = "TELEGRAM_BOT_TOKEN"
    base_url: str | None = None
    chat_ids: list[int] = Field(default_factory=list)
    traders: list[int] = Field(default_factory=list)
    viewers: list[int] = Field(default_factory=list)


class DiscordConfig(Frozen):
    token_env: str = "DISCORD_BOT_TOKEN"
    channel_ids: list[int] = Field(default_factory=list)
    traders: list[int] = Field(default_factory=list)
    viewers: list[int] = Field(default_factory=list)
    command_prefix: str = "!"


class ChatConfig(Frozen):
    telegram: TelegramConfig = TelegramConfig()
    discord: DiscordConfig = DiscordConfig()
    console_role: Literal["viewer", "trader"] = "trader"


class FeedsConfig(Frozen):
    fear_greed_url: str = "https://api.alternative.me/fng/"
    history_days: int = 45
    timeout_seconds: float = 10.0
    retries: int = 3


class Settings(Frozen):
    mode: Literal["paper", "live"] = "paper"
    quote: str = "USDT"
    stablecoins: list[str] = Field(default_factory=lambda: ["USDT", "USDC"])
    data_dir: Path = Path("var")
    store_path: Path | None = None
    strategy: Strategy
    assets: dict[str, AssetConfig]
    exchanges: dict[str, ExchangeConfig] = Field(default_factory=lambda: {"binance": ExchangeConfig()})
    staleness: Staleness = Staleness()
    costs: Costs = Costs()
    orders: OrderCaps = OrderCaps()
    paper: PaperPortfolio = PaperPortfolio()
    scheduler: SchedulerConfig = SchedulerConfig()
    proposals: ProposalsConfig = ProposalsConfig()
    execution: ExecutionConfig = ExecutionConfig()
    chat: ChatConfig = ChatConfig()
    feeds: FeedsConfig = FeedsConfig()
    history_dir: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.store_path or self.data_dir / "premia.db"

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if not self.assets:
            raise ValueError("assets: name at least one asset, e.g. [assets.BTC]")
        if self.quote not in self.stablecoins:
            raise ValueError(f"stablecoins must include the quote currency '{self.quote}'")
        for name, asset in self.assets.items():
            if asset.exchange not in self.exchanges:
                raise ValueError(
                    f"assets.{name}.exchange is '{asset.exchange}' but [exchanges.{asset.exchange}]"
                    " is not defined"
                )
        return self

    def spot_symbol(self, asset: str) -> str:
        return self.assets[asset].spot_symbol or f"{asset}/{self.quote}"

    def perp_symbol(self, asset: str) -> str | None:
        cfg = self.assets[asset]
        return cfg.perp_symbol if cfg.perp_symbol is not None else f"{asset}/{self.quote}:{self.quote}"


# ── loading ─────────────────────────────────────────────────────────────────────────────────


def load_presets(path: Path = PRESETS_FILE) -> dict[str, dict[str, Any]]:
    """The raw preset tables, keyed by preset name."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"presets file {path} is missing; reinstall Premia") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"presets file {path} cannot be read ({exc}); reinstall Premia") from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_strategy(raw: dict[str, Any], presets: dict[str, dict[str, Any]] | None = None) -> dict:
    """Merge a `[strategy]` table over its preset: every preset value can be overridden."""
    presets = presets if presets is not None else load_presets()
    name = raw.get("preset")
    if not name:
        raise ConfigError("strategy.preset is missing; pick one of: " + ", ".join(sorted(presets)))
    if name not in presets:
        raise ConfigError(
            f"strategy.preset '{name}' is unknown; pick one of: " + ", ".join(sorted(presets))
        )
    overrides = {k: v for k, v in raw.items() if k != "preset"}
    if "allocation" in overrides:
        # A new allocation replaces the preset's table rather than merging key by key.
        base = {k: v for k, v in presets[name].items() if k != "allocation"}
    else:
        base = presets[name]
    return {"name": name, **_deep_merge(base, overrides)}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s) in the config:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if p not in ("function-after", "function-before"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check its spelling against config/premia.example.toml"
        elif err["type"] == "missing":
            msg = "missing; add it (see config/premia.example.toml)"
        lines.append(f"  - {key or '(top level)'}: {msg}")
    return "\n".join(lines)


def settings_from_dict(raw: dict[str, Any], source: str = "config") -> Settings:
    """Validate a parsed config table; raise ConfigError naming each bad key."""
    data = dict(raw)
    strategy_raw = data.get("strategy") or {"preset": "balanced-aggression"}
    if not isinstance(strategy_raw, dict):
        raise ConfigError(f"{source}: strategy must be a table with at least preset = \"NAME\"")
    data["strategy"] = resolve_strategy(strategy_raw)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_settings(path: Path | str | None = None) -> Settings:
    """Read and validate the TOML config (default: $PREMIA_CONFIG, else the example config)."""
    chosen = Path(path or os.environ.get(DEFAULT_CONFIG_ENV) or EXAMPLE_CONFIG)
    try:
        with chosen.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {chosen} does not exist; copy config/premia.example.toml") from None
    except IsADirectoryError:
        raise ConfigError(f"config path {chosen} is a folder; give the TOML file inside it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {chosen} is not UTF-8 text; save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {chosen}: {exc.strerror or exc}") from None
    return settings_from_dict(raw, source=str(chosen))


def redacted(settings: Settings) -> dict[str, Any]:
    """Effective settings as plain data, safe to print, log or send to a chat.

    Secret variables show whether they are set, never their value; values under secret-named
    keys at any depth (ccxt `options = {secret = …}`) are masked; URLs (exchange `urls`,
    `chat.telegram.base_url`, the Fear & Greed URL) lose their `user:pass@` part and query string.
    """
    data = settings.model_dump(mode="json")
    for name, ex in settings.exchanges.items():
        for key in ("api_key_env", "secret_env", "password_env"):
            var = getattr(ex, key)
            if var:
                data["exchanges"][name][key] = f"{var} ({'set' if os.environ.get(var) else 'not set'})"
    for transport in ("telegram", "discord"):
        var = data["chat"][transport]["token_env"]
        data["chat"][transport]["token_env"] = f"{var} ({'set' if os.environ.get(var) else 'not set'})"
    return mask_secrets(data)
