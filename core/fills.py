"""The paper fill model, shared by the paper broker and the backtest so both trade alike."""

from __future__ import annotations

from decimal import Decimal

from core.book import Fill
from core.config import Costs
from core.models import Order

BPS = Decimal("0.0001")


def paper_fill(order: Order, market_price: Decimal, costs: Costs) -> Fill | None:
    """Fill a limit order at the market plus slippage, or not at all if the limit is not reached."""
    slip = costs.slippage_bps * BPS
    price = market_price * (1 + slip) if order.side == "buy" else market_price * (1 - slip)
    if (order.side == "buy" and price > order.limit_price) or (
        order.side == "sell" and price < order.limit_price
    ):
        return None
    fee_bps = costs.spot_fee_bps if order.market == "spot" else costs.futures_fee_bps
    notional = order.amount * price * (order.contract_size if order.market != "spot" else 1)
    return Fill(order=order, amount=order.amount, price=price, fee=notional * fee_bps * BPS)
