"""The what-if snapshot file: a public JSON contract (see config/snapshot.schema.json).

Numbers may be JSON numbers or strings; they become Decimals without passing through float.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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



def _positive(v: Decimal, what: str = "price") -> Decimal:
    if v <= 0:
        raise ValueError(f"{what} must be positive, got {v}")
    return v


class SpotIn(_In):
    price: Decimal
    timestamp: datetime
    _p = field_validator("price")(lambda cls, v: _positive(v))


class PerpIn(_In):
    symbol: str
    mark: Decimal
    index: Decimal
    funding_rate: Decimal
    funding_interval_hours: Decimal = Decimal(8)
    timestamp: datetime
    funding_history: list[tuple[datetime, Decimal]] = Field(default_factory=list)
    next_funding_time: datetime | None = None
    contract_size: Decimal = Decimal(1)
    _p = field_validator("mark", "index", "funding_interval_hours", "contract_size")(
        lambda cls, v: _positive(v, "value"))


class FutureIn(_In):
    symbol: str
    price: Decimal
    expiry: datetime
    timestamp: datetime
    contract_size: Decimal = Decimal(1)
    _p = field_validator("price", "contract_size")(lambda cls, v: _positive(v))


class AssetIn(_In):
    spot: SpotIn | None = None
    perp: PerpIn | None = None
    futures: list[FutureIn] = Field(default_factory=list)
    closes: list[tuple[date, Decimal]] = Field(default_factory=list)


class PositionIn(_In):
    symbol: str
    contracts: Decimal
    contract_size: Decimal = Decimal(1)


class PortfolioIn(_In):
    balances: dict[str, Decimal]
    positions: list[PositionIn] = Field(default_factory=list)


class FearGreedIn(_In):
    value: int = Field(ge=0, le=100)
    timestamp: datetime
    history: list[tuple[date, int]] = Field(default_factory=list)


class StrategyIn(_In):
    preset: str | None = None
    targets: dict[str, Decimal] | None = None
    band_pp: Decimal | None = None


class SnapshotIn(_In):
    as_of: datetime
    quote: str = "USDT"
    strategy: StrategyIn | None = None
    portfolio: PortfolioIn
    assets: dict[str, AssetIn]
    fear_greed: FearGreedIn | None = None


def _to_domain(s: SnapshotIn) -> tuple[MarketSnapshot, Portfolio]:
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
                                      f.contract_size) for f in a.futures),
            closes=tuple(Close(d, _positive(c)) for d, c in sorted(a.closes)),
        )
    fg = s.fear_greed
    snapshot = MarketSnapshot(
        as_of=_utc(s.as_of), quote=s.quote.upper(), assets=assets,
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
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field (see config/snapshot.schema.json)"
        lines.append(f"  - {where}: {msg}")
    more = exc.error_count() - 8
    return "\n".join(lines + ([f"  … and {more} more"] if more > 0 else []))


Parsed = tuple[MarketSnapshot, Portfolio, "StrategyIn | None"]


def parse_snapshot(data: Any, source: str = "snapshot") -> Parsed:
    """Validate a decoded snapshot document into domain records, or raise SnapshotError."""
    if not isinstance(data, dict):
        raise SnapshotError(f"{source}: the top level must be a JSON object")
    try:
        parsed = SnapshotIn.model_validate(data)
    except ValidationError as exc:
        raise SnapshotError(f"{source} is not a valid snapshot:\n{_describe(exc)}") from None
    except (InvalidOperation, ValueError) as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    snapshot, portfolio = _to_domain(parsed)
    for asset in portfolio.balances:
        if portfolio.balances[asset] < 0:
            raise SnapshotError(f"{source}: portfolio.balances.{asset} is negative")
    return snapshot, portfolio, parsed.strategy


def load_snapshot(path: Path | str) -> Parsed:
    """Read a snapshot file; every problem becomes a SnapshotError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(f"snapshot file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"cannot read snapshot file {path}: {exc}") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return parse_snapshot(data, str(path))


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
                                 "timestamp": _iso(f.timestamp), "contract_size": str(f.contract_size)}
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
