"""What the executor asks of a broker (paper or live) and what it gets back.

The executor drives every order: it records the order in the store, then asks the broker to
`submit` it, `wait` for it, `cancel` it, or `lookup` what became of it after a crash. Brokers
never decide to send an order on their own, so "recorded before sent" holds in one place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from core.models import ZERO, MarketSnapshot, Order, Portfolio, Position

OrderStatus = Literal[
    "pending",  # recorded in the store; not known to have reached the exchange
    "open",  # resting at the exchange, nothing filled yet
    "partially_filled",  # resting at the exchange, part filled
    "filled",  # done, all filled
    "canceled",  # done, the rest canceled (`filled` may be more than zero)
    "rejected",  # the exchange refused it; nothing filled
    "not_sent",  # found after a crash never to have reached the exchange
]
LIVE_STATUSES: frozenset[str] = frozenset({"pending", "open", "partially_filled"})
DONE_STATUSES: frozenset[str] = frozenset({"filled", "canceled", "rejected", "not_sent"})
Wallet = Literal["spot", "futures"]

CLIENT_ID_PREFIX = "premia"
# Binance and Bybit take 36 characters of [A-Za-z0-9._:/-]; OKX takes 32 letters and digits.
CLIENT_ID_MAX = 32


def client_order_id(proposal_id: str, leg: int, attempt: int = 0) -> str:
    """`premia-P7F3K2A-0` (and `…-0r1` for a replacement): letters, digits and '-' only."""
    core = re.sub(r"[^A-Za-z0-9]", "", proposal_id)
    suffix = f"-{leg}" + (f"r{attempt}" if attempt else "")
    head = f"{CLIENT_ID_PREFIX}-"
    if len(head) + len(core) + len(suffix) > CLIENT_ID_MAX or not core:
        # Long ids become a digest: still derived from the proposal, still unique per leg.
        core = "h" + hashlib.sha256(proposal_id.encode()).hexdigest()[:14]
    return head + core + suffix


def compact_client_order_id(cid: str) -> str:
    """The same id without separators, for exchanges that take letters and digits only (OKX)."""
    return cid.replace("-", "")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order as it goes to the exchange: rounded amount and limit price, client order id."""

    order: Order
    client_order_id: str
    amount: Decimal  # base units (spot) or contracts (futures), rounded to the market's step
    price: Decimal  # limit price, rounded to the market's tick
    market_price: Decimal  # the price the limit was set from (paper fills against it)
    leg: int
    attempt: int = 0
    post_only: bool = False

    @property
    def notional(self) -> Decimal:
        return self.amount * self.price * self.order.contract_size

    def payload(self) -> dict[str, Any]:
        """What the store keeps about the order (enough to look it up after a restart)."""
        o = self.order
        return {"symbol": o.symbol, "market": o.market, "asset": o.asset, "side": o.side,
                "amount": str(self.amount), "price": str(self.price),
                "market_price": str(self.market_price), "contract_size": str(o.contract_size),
                "leg": self.leg, "attempt": self.attempt, "post_only": self.post_only,
                "reference_price": str(reference_price(o))}


def reference_price(order: Order) -> Decimal:
    """The price an order was planned at (its notional per unit): slippage is measured from it."""
    units = order.amount * order.contract_size
    return order.notional / units if units else order.limit_price


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What became of one order, in the same terms for paper and live."""

    client_order_id: str
    status: OrderStatus
    filled: Decimal = ZERO
    avg_price: Decimal | None = None
    fee: Decimal = ZERO  # in the quote currency
    fee_in_base: Decimal = ZERO  # the part of the fee taken from the bought asset (Binance spot)
    exchange_order_id: str | None = None
    message: str = ""
    fee_estimated: bool = False
    timed_out: bool = False  # canceled by us after the order timeout

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES


@dataclass(frozen=True, slots=True)
class Balances:
    """Free balances by wallet and the open futures positions."""

    spot: Mapping[str, Decimal]
    futures: Mapping[str, Decimal]
    positions: tuple[Position, ...] = ()
    shared_wallet: bool = False  # the paper book: one wallet serves spot and futures
    # Whole holdings (free, locked in orders, posted as margin) over both wallets, when the
    # venue states them: the portfolio is valued on these, the checks use the free amounts.
    totals: Mapping[str, Decimal] = field(default_factory=dict)

    def portfolio(self) -> Portfolio:
        """Everything held over both wallets, as the planner sees a portfolio."""
        if self.totals:
            return Portfolio(dict(self.totals), self.positions)
        if self.shared_wallet:
            return Portfolio(dict(self.spot), self.positions)
        merged = dict(self.spot)
        for asset, amount in self.futures.items():
            merged[asset] = merged.get(asset, ZERO) + amount
        return Portfolio(merged, self.positions)


class Broker(Protocol):
    """A paper or live trading venue, driven order by order by the executor."""

    name: str
    live: bool

    async def balances(self) -> Balances:
        """Free balances of the spot and futures wallets, and futures positions."""
        ...

    def use_snapshot(self, snapshot: MarketSnapshot) -> None:
        """The market as refreshed on approval (paper fills at it; a live venue has its own)."""
        ...

    async def prepare(self, order: Order, amount: Decimal, market_price: Decimal, *, leg: int,
                      client_order_id: str, attempt: int = 0) -> OrderRequest:
        """Round amount and limit price for the market; ExecutionError if it cannot be sent."""
        ...

    async def market_price(self, order: Order) -> Decimal:
        """The current price of the order's market (to re-price a replacement)."""
        ...

    async def submit(self, request: OrderRequest) -> OrderReport:
        """Send once; on a transient error, look the order up by client id before any re-send."""
        ...

    async def wait(self, request: OrderRequest, timeout_s: float) -> OrderReport:
        """Poll until the order is done or the timeout passes; the latest report."""
        ...

    async def cancel(self, request: OrderRequest) -> OrderReport:
        """Cancel what is left; the final report, fills carried."""
        ...

    async def lookup(self, client_order_id: str, payload: Mapping[str, Any]) -> OrderReport:
        """What the venue knows of an order by client order id ("not_sent" if nothing)."""
        ...

    async def cancel_by_id(self, client_order_id: str, payload: Mapping[str, Any]) -> OrderReport:
        """Cancel an order known only from the store (reconciliation); the final report."""
        ...

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, target: Wallet) -> str:
        """Move funds between wallets; returns the venue's transfer id."""
        ...

    async def close(self) -> None:
        """Release network clients."""
        ...
