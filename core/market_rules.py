"""Sizing rules of each symbol from ccxt market metadata, with config fallbacks."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from core.planner import MarketRule


def _dec(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def rule_from_market(market: Mapping[str, Any], fallback: MarketRule) -> MarketRule:
    """A symbol's minimum notional and steps; ccxt 4 gives steps as tick sizes (TICK_SIZE mode)."""
    limits, precision = market.get("limits") or {}, market.get("precision") or {}
    minimum = _dec((limits.get("cost") or {}).get("min"))
    amount_min = _dec((limits.get("amount") or {}).get("min"))
    step = _dec(precision.get("amount"))
    tick = _dec(precision.get("price"))
    return MarketRule(
        # The config's minimum is a floor of the user's own; the exchange may demand more.
        min_notional=max(minimum, fallback.min_notional) if minimum is not None else fallback.min_notional,
        amount_step=step if step and step > 0 else (amount_min or fallback.amount_step),
        price_step=tick if tick and tick > 0 else fallback.price_step,
    )


def rules_from_markets(markets: Mapping[str, Mapping[str, Any]], symbols: set[str],
                       fallback: MarketRule) -> dict[str, MarketRule]:
    """Rules for the symbols Premia trades; unknown symbols keep the config fallback."""
    return {s: rule_from_market(markets[s], fallback) for s in symbols if s in markets}
