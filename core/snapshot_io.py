"""The what-if snapshot file: a public JSON contract (see config/snapshot.schema.json).

Numbers may be JSON numbers or strings; they become Decimals without passing through float.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import SnapshotError
from core.models import (
    AssetMarket,
    Close,
    FearGreed,
    FundingPrint,
    FutureQuote,
    MarketSnapshot,
    PerpQuote,
    Portfolio,
    Position,
    SpotQuote,
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _utc(v: datetime) -> datetime:
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


# Beyond these magnitudes a number is a typo or an attack ("1e400"), not a market: arithmetic on
# it overflows or means nothing. Real balances, prices and rates sit far inside.
MAX_MAGNITUDE = Decimal("1e18")
MIN_MAGNITUDE = Decimal("1e-100")


def _sane(v: Decimal) -> Decimal:
    if not v.is_finite():
        raise ValueError(f"{v} is not a finite number")
    if abs(v) >= MAX_MAGNITUDE:
        raise ValueError(f"{v} is too large; numbers in a snapshot stay below 1e18")
    if v and abs(v) < MIN_MAGNITUDE:
        raise ValueError(f"{v} is too small; use 0 or a number of at least 1e-100")
    return v


def _positive(what: str) -> AfterValidator:
    def check(v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError(f"{what} must be positive, got {v}")
        return v

    return AfterValidator(check)


Number = Annotated[Decimal, AfterValidator(_sane)]
Price = Annotated[Decimal, AfterValidator(_sane), _positive("price")]
Size = Annotated[Decimal, AfterValidator(_sane), _positive("value")]


def _index_value(v: int) -> int:
    if not 0 <= v <= 100:
        raise ValueError(f"a Fear & Greed value is between 0 and 100, got {v}")
    return v


FearGreedValue = Annotated[int, AfterValidator(_index_value)]


class SpotIn(_In):
    price: Price
    timestamp: datetime


class PerpIn(_In):
    symbol: str
    mark: Size
    index: Size
    funding_rate: Number
    funding_interval_hours: Size = Decimal(8)
    timestamp: datetime
    funding_history: list[tuple[datetime, Number]] = Field(default_factory=list)
    next_funding_time: datetime | None = None
    contract_size: Size = Decimal(1)


class FutureIn(_In):
    symbol: str
    price: Price
    expiry: datetime
    timestamp: datetime
    contract_size: Size = Decimal(1)
    inverse: bool = False


class AssetIn(_In):
    spot: SpotIn | None = None
    perp: PerpIn | None = None
    futures: list[FutureIn] = Field(default_factory=list)
    closes: list[tuple[date, Price]] = Field(default_factory=list)


class PositionIn(_In):
    symbol: str
    contracts: Number
    contract_size: Size = Decimal(1)


class PortfolioIn(_In):
    balances: dict[str, Number]
    positions: list[PositionIn] = Field(default_factory=list)


class FearGreedIn(_In):
    value: FearGreedValue
    timestamp: datetime
    history: list[tuple[date, FearGreedValue]] = Field(default_factory=list)


class StrategyIn(_In):
    preset: str | None = None
    targets: dict[str, Number] | None = None
    band_pp: Number | None = None

    @field_validator("targets")
    @classmethod
    def _upper_names(cls, v: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        """Asset names as the rest of the snapshot has them: upper case, each once."""
        if v is None:
            return None
        upper = {k.strip().upper(): w for k, w in v.items()}
        if len(upper) != len(v):
            raise ValueError("names an asset twice (asset names ignore case)")
        return upper


class SnapshotIn(_In):
    as_of: datetime
    quote: str | None = None  # None: the config's quote (USDT without one)
    strategy: StrategyIn | None = None
    portfolio: PortfolioIn
    assets: dict[str, AssetIn]
    fear_greed: FearGreedIn | None = None


def _to_domain(s: SnapshotIn, quote: str) -> tuple[MarketSnapshot, Portfolio]:
    assets = {}
    for name, a in s.assets.items():
        perp = None
        if a.perp is not None:
            p = a.perp
            perp = PerpQuote(p.symbol, p.mark, p.index, p.funding_rate, p.funding_interval_hours,
                             _utc(p.timestamp),
                             tuple(FundingPrint(_utc(t), r) for t, r in sorted(p.funding_history)),
                             _utc(p.next_funding_time) if p.next_funding_time else None,
                             p.contract_size)
        assets[name.upper()] = AssetMarket(
            asset=name.upper(),
            spot=SpotQuote(a.spot.price, _utc(a.spot.timestamp)) if a.spot else None,
            perp=perp,
            futures=tuple(FutureQuote(f.symbol, f.price, _utc(f.expiry), _utc(f.timestamp),
                                      f.contract_size, f.inverse) for f in a.futures),
            closes=tuple(Close(d, c) for d, c in sorted(a.closes)),
        )
    fg = s.fear_greed
    snapshot = MarketSnapshot(
        as_of=_utc(s.as_of), quote=quote, assets=assets,
        fear_greed=FearGreed(fg.value, _utc(fg.timestamp), tuple(sorted(fg.history))) if fg else None,
    )
    portfolio = Portfolio(
        balances={k.upper(): v for k, v in s.portfolio.balances.items()},
        positions=tuple(Position(p.symbol, p.contracts, p.contract_size)
                        for p in s.portfolio.positions),
    )
    return snapshot, portfolio


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:8]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field (see config/snapshot.schema.json)"
        lines.append(f"  - {where}: {msg}")
    more = exc.error_count() - 8
    return "\n".join(lines + ([f"  … and {more} more"] if more > 0 else []))


Parsed = tuple[MarketSnapshot, Portfolio, "StrategyIn | None"]


def parse_snapshot(data: Any, source: str = "snapshot", quote: str | None = None) -> Parsed:
    """Validate a decoded snapshot document into domain records, or raise SnapshotError.

    `quote` is the config's quote currency: a snapshot priced in another one is refused, and a
    snapshot that names none is read in it (USDT when neither says).
    """
    if not isinstance(data, dict):
        raise SnapshotError(f"{source}: the top level must be a JSON object")
    try:
        parsed = SnapshotIn.model_validate(data)
    except ValidationError as exc:
        raise SnapshotError(f"{source} is not a valid snapshot:\n{_describe(exc)}") from None
    except (InvalidOperation, ValueError) as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    given = parsed.quote.strip().upper() if parsed.quote else None
    expected = quote.upper() if quote else None
    if given and expected and given != expected:
        raise SnapshotError(
            f"{source}: the snapshot is priced in {given} but the config's quote is {expected};"
            f" give prices and balances in {expected} (\"quote\": \"{expected}\"), or use a config"
            f" with quote = \"{given}\""
        )
    snapshot, portfolio = _to_domain(parsed, given or expected or "USDT")
    for asset in portfolio.balances:
        if portfolio.balances[asset] < 0:
            raise SnapshotError(f"{source}: portfolio.balances.{asset} is negative")
    return snapshot, portfolio, parsed.strategy


def load_snapshot(path: Path | str, quote: str | None = None) -> Parsed:
    """Read a snapshot file; every problem becomes a SnapshotError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(f"snapshot file {path} does not exist") from None
    except IsADirectoryError:
        raise SnapshotError(f"snapshot path {path} is a folder; give the JSON file") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"snapshot file {path} is not UTF-8 text; save it as UTF-8 JSON") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise SnapshotError(f"{path} has a number too long to read: {str(exc).split(';')[0]}") from None
    return parse_snapshot(data, str(path), quote)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dump_snapshot(snapshot: MarketSnapshot, portfolio: Portfolio | None = None) -> dict[str, Any]:
    """The public snapshot format for a snapshot (and portfolio), numbers as strings."""
    assets: dict[str, Any] = {}
    for name, m in snapshot.assets.items():
        entry: dict[str, Any] = {}
        if m.spot:
            entry["spot"] = {"price": str(m.spot.price), "timestamp": _iso(m.spot.timestamp)}
        if m.perp:
            p = m.perp
            entry["perp"] = {
                "symbol": p.symbol, "mark": str(p.mark), "index": str(p.index),
                "funding_rate": str(p.funding_rate),
                "funding_interval_hours": str(p.funding_interval_hours),
                "timestamp": _iso(p.timestamp), "contract_size": str(p.contract_size),
                "funding_history": [[_iso(f.time), str(f.rate)] for f in p.funding_history],
            }
            if p.next_funding_time:
                entry["perp"]["next_funding_time"] = _iso(p.next_funding_time)
        if m.futures:
            entry["futures"] = [{"symbol": f.symbol, "price": str(f.price), "expiry": _iso(f.expiry),
                                 "timestamp": _iso(f.timestamp), "contract_size": str(f.contract_size),
                                 **({"inverse": True} if f.inverse else {})}
                                for f in m.futures]
        if m.closes:
            entry["closes"] = [[c.day.isoformat(), str(c.price)] for c in m.closes]
        assets[name] = entry
    out: dict[str, Any] = {"as_of": _iso(snapshot.as_of), "quote": snapshot.quote}
    out["portfolio"] = {
        "balances": {a: str(v) for a, v in (portfolio.balances if portfolio else {}).items()},
        "positions": [{"symbol": p.symbol, "contracts": str(p.contracts),
                       "contract_size": str(p.contract_size)}
                      for p in (portfolio.positions if portfolio else ())],
    }
    out["assets"] = assets
    if snapshot.fear_greed:
        fg = snapshot.fear_greed
        out["fear_greed"] = {"value": fg.value, "timestamp": _iso(fg.timestamp),
                             "history": [[d.isoformat(), v] for d, v in fg.history]}
    return out
