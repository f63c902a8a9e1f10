"""Applying fills to a portfolio: the one place balances and positions change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from core.errors import ExecutionError
from core.models import ZERO, FundingPrint, Order, Portfolio, Position


@dataclass(frozen=True, slots=True)
class Fill:
    """What actually traded for one order leg."""

    order: Order
    amount: Decimal
    price: Decimal
    fee: Decimal

    @property
    def notional(self) -> Decimal:
        return self.amount * self.price * (self.order.contract_size if self.order.market != "spot" else 1)


def apply_fill(portfolio: Portfolio, fill: Fill, quote: str) -> Portfolio:
    """The portfolio after one fill; refuses anything that would make a balance negative."""
    balances = dict(portfolio.balances)
    positions = _book_fill(balances, portfolio.positions, fill, quote)
    return Portfolio(balances=balances, positions=positions)


def apply_fills(portfolio: Portfolio, fills: Iterable[Fill], quote: str) -> Portfolio:
    """apply_fill of each fill in turn (the same checks, the same result), on one copy of the balances."""
    balances, positions, applied = dict(portfolio.balances), portfolio.positions, False
    for fill in fills:
        positions, applied = _book_fill(balances, positions, fill, quote), True
    return Portfolio(balances=balances, positions=positions) if applied else portfolio


def _book_fill(balances: dict[str, Decimal], positions: tuple[Position, ...], fill: Fill,
               quote: str) -> tuple[Position, ...]:
    """One fill into `balances` (changed in place) and `positions` (returned): emptied balances
    other than the quote's are removed; a negative balance is refused before anything is kept."""
    order = fill.order
    balances[quote] = balances.get(quote, ZERO) - fill.fee
    buy = order.side == "buy"
    if order.market == "spot":
        cash = fill.amount * fill.price
        balances[order.asset] = balances.get(order.asset, ZERO) + (fill.amount if buy else -fill.amount)
        balances[quote] -= cash if buy else -cash
    else:
        signed = fill.amount if buy else -fill.amount
        positions = _add_contracts(positions, order.symbol, signed, order.contract_size)
    if min(balances.values()) < ZERO:
        negative = {a: v for a, v in balances.items() if v < ZERO}
        raise ExecutionError(
            "fill would leave a negative balance: "
            + ", ".join(f"{a} {v}" for a, v in sorted(negative.items()))
        )
    if not all(balances.values()):
        for asset in [a for a, v in balances.items() if not v and a != quote]:
            del balances[asset]
    return positions


def _add_contracts(
    positions: Iterable[Position], symbol: str, contracts: Decimal, size: Decimal
) -> tuple[Position, ...]:
    out, found = [], False
    for p in positions:
        if p.symbol == symbol:
            found = True
            if p.contracts + contracts != 0:
                out.append(Position(symbol, p.contracts + contracts, p.contract_size))
        else:
            out.append(p)
    if not found and contracts != 0:
        out.append(Position(symbol, contracts, size))
    return tuple(out)




def funding_payment(position: Position, mark: Decimal, rate: Decimal) -> Decimal:
    """Funding received (+) or paid (−) at one settlement: longs pay shorts when the rate is positive."""
    return -position.base_units * mark * rate


def funding_payments(position: Position, mark: Decimal, prints: Iterable[FundingPrint]) -> list[Decimal]:
    """`funding_payment` at each of several settlements at one mark (the very same products)."""
    notional = -position.base_units * mark  # funding_payment's first product, made once
    return [notional * p.rate for p in prints]


def variation_margin(position: Position, old_mark: Decimal, new_mark: Decimal) -> Decimal:
    """Profit or loss of a futures position between two marks, settled in the quote currency."""
    return position.base_units * (new_mark - old_mark)


def credit(portfolio: Portfolio, amount: Decimal, quote: str) -> Portfolio:
    """Add (or take) quote currency, e.g. funding or settled futures P&L."""
    balances = dict(portfolio.balances)
    balances[quote] = balances.get(quote, ZERO) + amount
    return Portfolio(balances=balances, positions=portfolio.positions)
