"""JSON-safe dicts for the domain records of `core.models`, and back again.

Decimals travel as strings (exact, exponent and trailing zeros kept), datetimes as ISO-8601 UTC
strings with microseconds (fixed width, so they also sort as text), dates as ISO dates. Every
`*_from_dict` accepts what the matching `*_to_dict` produced; optional keys may be missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.models import (
    AssetMarket,
    Close,
    FearGreed,
    FundingPrint,
    FutureQuote,
    MarketSnapshot,
    Order,
    PerpQuote,
    Portfolio,
    Position,
    Proposal,
    SpotQuote,
    Trigger,
)

# ── primitives ──────────────────────────────────────────────────────────────────────────────


def dec_to_str(value: Decimal) -> str:
    """A Decimal as its exact string ("1.50" stays "1.50")."""
    if not isinstance(value, Decimal):
        raise TypeError(f"expected Decimal, got {type(value).__name__}: {value!r}")
    return str(value)


def dec_from(value: str | int | Decimal) -> Decimal:
    """A Decimal from its string (or int); floats are refused because they are inexact."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a decimal string, got {type(value).__name__}: {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None


def opt_dec_to_str(value: Decimal | None) -> str | None:
    return None if value is None else dec_to_str(value)


def opt_dec_from(value: str | int | Decimal | None) -> Decimal | None:
    return None if value is None else dec_from(value)


def dt_to_str(value: datetime) -> str:
    """An aware datetime as fixed-width ISO-8601 UTC: "2024-03-01T08:00:00.000000+00:00"."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}; pass a timezone-aware UTC time")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt_from(value: str | datetime) -> datetime:
    """An aware UTC datetime from ISO-8601 text; text without an offset is refused."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"datetime {value!r} has no UTC offset; write it as ...+00:00 or ...Z")
    return parsed.astimezone(UTC)


def opt_dt_to_str(value: datetime | None) -> str | None:
    return None if value is None else dt_to_str(value)


def opt_dt_from(value: str | datetime | None) -> datetime | None:
    return None if value is None else dt_from(value)


def day_to_str(value: date) -> str:
    """A calendar date as "YYYY-MM-DD" (a datetime is refused: it would lose its time)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"expected date, got {type(value).__name__}: {value!r}")
    return value.isoformat()


def day_from(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return dec_to_str(value)
    if isinstance(value, datetime):
        return dt_to_str(value)
    if isinstance(value, date):
        return day_to_str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


def json_dumps(value: Any) -> str:
    """Compact JSON; Decimals, datetimes and dates become strings as described above."""
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def json_loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)


def _dec_map_to_dict(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {str(k): dec_to_str(v) for k, v in values.items()}


def _dec_map_from(values: Mapping[str, Any] | None) -> dict[str, Decimal]:
    return {str(k): dec_from(v) for k, v in (values or {}).items()}


# ── proposals ───────────────────────────────────────────────────────────────────────────────


def trigger_to_dict(t: Trigger) -> dict[str, Any]:
    """A fired rule as plain data."""
    return {
        "rule": t.rule,
        "asset": t.asset,
        "explanation": t.explanation,
        "values": {str(k): str(v) for k, v in t.values.items()},
        "state_from": t.state_from,
        "state_to": t.state_to,
    }


def trigger_from_dict(d: Mapping[str, Any]) -> Trigger:
    return Trigger(
        rule=d["rule"],
        asset=d.get("asset"),
        explanation=d.get("explanation", ""),
        values={str(k): str(v) for k, v in (d.get("values") or {}).items()},
        state_from=d.get("state_from"),
        state_to=d.get("state_to"),
    )


def order_to_dict(o: Order) -> dict[str, Any]:
    """One order leg as plain data."""
    return {
        "market": o.market,
        "symbol": o.symbol,
        "asset": o.asset,
        "side": o.side,
        "amount": dec_to_str(o.amount),
        "notional": dec_to_str(o.notional),
        "limit_price": dec_to_str(o.limit_price),
        "reason": o.reason,
        "leg": o.leg,
        "est_fee": dec_to_str(o.est_fee),
        "est_slippage": dec_to_str(o.est_slippage),
        "contract_size": dec_to_str(o.contract_size),
    }


def order_from_dict(d: Mapping[str, Any]) -> Order:
    return Order(
        market=d["market"],
        symbol=d["symbol"],
        asset=d["asset"],
        side=d["side"],
        amount=dec_from(d["amount"]),
        notional=dec_from(d["notional"]),
        limit_price=dec_from(d["limit_price"]),
        reason=d.get("reason", ""),
        leg=int(d.get("leg", 0)),
        est_fee=dec_from(d.get("est_fee", "0")),
        est_slippage=dec_from(d.get("est_slippage", "0")),
        contract_size=dec_from(d.get("contract_size", "1")),
    )


def proposal_to_dict(p: Proposal) -> dict[str, Any]:
    """A proposal with its triggers and orders as plain data."""
    return {
        "id": p.id,
        "created_at": dt_to_str(p.created_at),
        "expires_at": dt_to_str(p.expires_at),
        "strategy": p.strategy,
        "triggers": [trigger_to_dict(t) for t in p.triggers],
        "orders": [order_to_dict(o) for o in p.orders],
        "weights_before": _dec_map_to_dict(p.weights_before),
        "weights_after": _dec_map_to_dict(p.weights_after),
        "net_futures_exposure_before": dec_to_str(p.net_futures_exposure_before),
        "net_futures_exposure_after": dec_to_str(p.net_futures_exposure_after),
        "value": dec_to_str(p.value),
        "est_fees": dec_to_str(p.est_fees),
        "est_slippage": dec_to_str(p.est_slippage),
        "expected_carry_apr": opt_dec_to_str(p.expected_carry_apr),
        "hurdle_apr": opt_dec_to_str(p.hurdle_apr),
        "warnings": list(p.warnings),
        "snapshot_id": p.snapshot_id,
        "prices": _dec_map_to_dict(p.prices),
    }


def proposal_from_dict(d: Mapping[str, Any]) -> Proposal:
    return Proposal(
        id=d["id"],
        created_at=dt_from(d["created_at"]),
        expires_at=dt_from(d["expires_at"]),
        strategy=d["strategy"],
        triggers=tuple(trigger_from_dict(t) for t in d.get("triggers") or ()),
        orders=tuple(order_from_dict(o) for o in d.get("orders") or ()),
        weights_before=_dec_map_from(d.get("weights_before")),
        weights_after=_dec_map_from(d.get("weights_after")),
        net_futures_exposure_before=dec_from(d["net_futures_exposure_before"]),
        net_futures_exposure_after=dec_from(d["net_futures_exposure_after"]),
        value=dec_from(d["value"]),
        est_fees=dec_from(d.get("est_fees", "0")),
        est_slippage=dec_from(d.get("est_slippage", "0")),
        expected_carry_apr=opt_dec_from(d.get("expected_carry_apr")),
        hurdle_apr=opt_dec_from(d.get("hurdle_apr")),
        warnings=tuple(d.get("warnings") or ()),
        snapshot_id=d.get("snapshot_id"),
        prices=_dec_map_from(d.get("prices")),
    )


# ── portfolio ───────────────────────────────────────────────────────────────────────────────


def position_to_dict(p: Position) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "contracts": dec_to_str(p.contracts),
        "contract_size": dec_to_str(p.contract_size),
    }


def position_from_dict(d: Mapping[str, Any]) -> Position:
    return Position(
        symbol=d["symbol"],
        contracts=dec_from(d["contracts"]),
        contract_size=dec_from(d.get("contract_size", "1")),
    )


def portfolio_to_dict(p: Portfolio) -> dict[str, Any]:
    """Balances and futures positions; the same shape as the store's paper book."""
    return {
        "balances": _dec_map_to_dict(p.balances),
        "positions": [position_to_dict(pos) for pos in p.positions],
    }


def portfolio_from_dict(d: Mapping[str, Any]) -> Portfolio:
    return Portfolio(
        balances=_dec_map_from(d.get("balances")),
        positions=tuple(position_from_dict(pos) for pos in d.get("positions") or ()),
    )


# ── market snapshots ────────────────────────────────────────────────────────────────────────


def _perp_to_dict(q: PerpQuote) -> dict[str, Any]:
    return {
        "symbol": q.symbol,
        "mark": dec_to_str(q.mark),
        "index": dec_to_str(q.index),
        "funding_rate": dec_to_str(q.funding_rate),
        "funding_interval_hours": dec_to_str(q.funding_interval_hours),
        "timestamp": dt_to_str(q.timestamp),
        "funding_history": [[dt_to_str(f.time), dec_to_str(f.rate)] for f in q.funding_history],
        "next_funding_time": opt_dt_to_str(q.next_funding_time),
        "contract_size": dec_to_str(q.contract_size),
    }


def _perp_from_dict(d: Mapping[str, Any]) -> PerpQuote:
    return PerpQuote(
        symbol=d["symbol"],
        mark=dec_from(d["mark"]),
        index=dec_from(d["index"]),
        funding_rate=dec_from(d["funding_rate"]),
        funding_interval_hours=dec_from(d["funding_interval_hours"]),
        timestamp=dt_from(d["timestamp"]),
        funding_history=tuple(
            FundingPrint(time=dt_from(t), rate=dec_from(r))
            for t, r in d.get("funding_history") or ()
        ),
        next_funding_time=opt_dt_from(d.get("next_funding_time")),
        contract_size=dec_from(d.get("contract_size", "1")),
    )


def _future_to_dict(q: FutureQuote) -> dict[str, Any]:
    return {
        "symbol": q.symbol,
        "price": dec_to_str(q.price),
        "expiry": dt_to_str(q.expiry),
        "timestamp": dt_to_str(q.timestamp),
        "contract_size": dec_to_str(q.contract_size),
        **({"inverse": True} if q.inverse else {}),
    }


def _future_from_dict(d: Mapping[str, Any]) -> FutureQuote:
    return FutureQuote(
        symbol=d["symbol"],
        price=dec_from(d["price"]),
        expiry=dt_from(d["expiry"]),
        timestamp=dt_from(d["timestamp"]),
        contract_size=dec_from(d.get("contract_size", "1")),
        inverse=bool(d.get("inverse", False)),
    )


def asset_market_to_dict(m: AssetMarket) -> dict[str, Any]:
    spot = m.spot
    return {
        "asset": m.asset,
        "spot": None
        if spot is None
        else {"price": dec_to_str(spot.price), "timestamp": dt_to_str(spot.timestamp)},
        "perp": None if m.perp is None else _perp_to_dict(m.perp),
        "futures": [_future_to_dict(f) for f in m.futures],
        "closes": [[day_to_str(c.day), dec_to_str(c.price)] for c in m.closes],
    }


def asset_market_from_dict(d: Mapping[str, Any]) -> AssetMarket:
    spot = d.get("spot")
    perp = d.get("perp")
    return AssetMarket(
        asset=d["asset"],
        spot=None
        if spot is None
        else SpotQuote(price=dec_from(spot["price"]), timestamp=dt_from(spot["timestamp"])),
        perp=None if perp is None else _perp_from_dict(perp),
        futures=tuple(_future_from_dict(f) for f in d.get("futures") or ()),
        closes=tuple(Close(day=day_from(k), price=dec_from(v)) for k, v in d.get("closes") or ()),
    )


def snapshot_to_dict(s: MarketSnapshot) -> dict[str, Any]:
    """A whole market snapshot (spot, perps, dated futures, closes, Fear & Greed) as plain data."""
    fg = s.fear_greed
    return {
        "as_of": dt_to_str(s.as_of),
        "quote": s.quote,
        "assets": {name: asset_market_to_dict(m) for name, m in s.assets.items()},
        "fear_greed": None
        if fg is None
        else {
            "value": fg.value,
            "timestamp": dt_to_str(fg.timestamp),
            "history": [[day_to_str(day), value] for day, value in fg.history],
        },
    }


def snapshot_from_dict(d: Mapping[str, Any]) -> MarketSnapshot:
    fg = d.get("fear_greed")
    return MarketSnapshot(
        as_of=dt_from(d["as_of"]),
        quote=d["quote"],
        assets={name: asset_market_from_dict(m) for name, m in (d.get("assets") or {}).items()},
        fear_greed=None
        if fg is None
        else FearGreed(
            value=int(fg["value"]),
            timestamp=dt_from(fg["timestamp"]),
            history=tuple((day_from(day), int(v)) for day, v in fg.get("history") or ()),
        ),
    )
