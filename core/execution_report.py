"""What an execution did, leg by leg, and the portfolio it left: for chat and for the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.book import funding_payment
from core.brokers.base import OrderReport, OrderRequest, reference_price
from core.models import ZERO, MarketSnapshot, Order, Portfolio

LEG_STATES = ("filled", "partial", "unfilled", "rejected", "skipped")


@dataclass(frozen=True, slots=True)
class LegFill:
    """One leg: what was planned, what filled, at what average price and cost."""

    leg: int
    symbol: str
    market: str
    side: str
    planned: Decimal  # base units (spot) or contracts (futures)
    filled: Decimal
    avg_price: Decimal | None
    fee: Decimal  # quote currency
    slippage: Decimal | None  # fraction against the planned price; positive = worse for us
    status: str  # one of LEG_STATES
    client_order_ids: tuple[str, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else list(v) if isinstance(v, tuple) else v)
                for k, v in ((n, getattr(self, n)) for n in self.__slots__)}


@dataclass(frozen=True)
class ExecutionReport:
    """The outcome of one approval: every leg, funding at current rates, weights and exposure after."""

    proposal_id: str
    status: str
    fills: tuple[LegFill, ...]
    funding: Decimal  # next funding settlement at current rates: + received, − paid (quote)
    weights_after: Mapping[str, Decimal]
    net_futures_exposure_after: Decimal
    messages: tuple[str, ...] = ()
    fresh_proposal_id: str | None = None
    fees: Decimal = field(default=ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {"proposal_id": self.proposal_id, "status": self.status,
                "fills": [f.to_dict() for f in self.fills], "funding": str(self.funding),
                "weights_after": {k: str(v) for k, v in self.weights_after.items()},
                "net_futures_exposure_after": str(self.net_futures_exposure_after),
                "messages": list(self.messages), "fresh_proposal_id": self.fresh_proposal_id,
                "fees": str(self.fees)}

    def text(self, quote: str = "USDT") -> str:
        """A short summary for a phone screen."""
        lines = [f"{self.proposal_id}: {self.status.replace('_', ' ')}"]
        for f in self.fills:
            price = f"@ {f.avg_price:,.6g}" if f.avg_price else ""
            slip = f", slippage {f.slippage * 100:+.2f}%" if f.slippage is not None and f.filled else ""
            lines.append(f"• {f.side} {f.filled:f}/{f.planned:f} {f.symbol} {price} "
                         f"fee {f.fee:,.2f} {quote}{slip} [{f.status}]".replace("  ", " "))
        lines.append(f"Fees {self.fees:,.2f} {quote}; funding next settlement {self.funding:+,.2f} {quote}")
        lines.append(f"Net futures exposure after: {self.net_futures_exposure_after * 100:+.1f}%")
        lines.extend(self.messages)
        return "\n".join(lines)


def leg_fill(order: Order, first: OrderRequest | None, reports: Sequence[OrderReport],
             message: str = "") -> LegFill:
    """Sum a leg's attempts (a cancel-and-replace leg has several) into one line."""
    filled = sum((r.filled for r in reports), ZERO)
    cost = sum((r.filled * r.avg_price for r in reports if r.avg_price is not None), ZERO)
    avg = cost / filled if filled else None
    ref = reference_price(order)
    slip = None
    if avg is not None and ref:
        slip = avg / ref - 1 if order.side == "buy" else 1 - avg / ref
    planned = first.amount if first is not None else ZERO
    if first is None:
        status = "skipped"
    elif filled and filled >= planned:
        status = "filled"
    elif filled:
        status = "partial"
    elif reports and all(r.status in ("rejected", "not_sent") for r in reports):
        status = "rejected"
    else:
        status = "unfilled"
    notes = [message] if message else []
    notes += [r.message for r in reports if r.message]
    return LegFill(order.leg, order.symbol, order.market, order.side, planned, filled, avg,
                   sum((r.fee for r in reports), ZERO), slip, status,
                   tuple(r.client_order_id for r in reports), "; ".join(dict.fromkeys(notes)))


def funding_now(portfolio: Portfolio, snapshot: MarketSnapshot) -> Decimal:
    """Funding at the next settlement of every perpetual position, at the current rate."""
    total = ZERO
    for pos in portfolio.positions:
        market = snapshot.assets.get(pos.asset)
        perp = market.perp if market is not None else None
        if perp is not None and perp.symbol == pos.symbol:
            total += funding_payment(pos, perp.mark, perp.funding_rate)
    return total
