"""What the loopback Binance knows: balances, positions and every order, across client restarts.

Held by `OrderDesk` (tests/fakes/exchange_orders.py); a test may hand the same `ExchangeState` to a
new desk to play a restarted bot. `Behaviour` scripts what the exchange does with an order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tests.fakes.exchange_accounts import ZERO, Venue


@dataclass
class Behaviour:
    """What the exchange does with the next matching order."""

    kind: Literal["auto", "fill", "partial", "rest", "fill_later", "reject", "lost"] = "auto"
    fraction: Decimal = Decimal("0.5")  # partial: the share filled at once
    polls: int = 1  # fill_later: fetches before it fills
    code: int = -2010
    msg: str = "Account has insufficient balance for requested action."
    status: int = 400


@dataclass
class FakeOrder:
    venue: Venue
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    qty: Decimal
    time: int
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    fills: list[dict[str, str]] = field(default_factory=list)
    behaviour: Behaviour = field(default_factory=Behaviour)
    polls: int = 0

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class ExchangeState:
    """Balances, positions and every order: what the exchange knows, across client restarts."""

    spot: dict[str, list[Decimal]] = field(default_factory=dict)  # asset → [free, locked]
    wallet: dict[str, Decimal] = field(default_factory=dict)  # USDⓈ-M wallet by asset
    positions: dict[str, list[Decimal]] = field(default_factory=dict)  # symbol id → [amount, entry]
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    create_requests: list[dict[str, str]] = field(default_factory=list)  # every one received
    transfers: list[dict[str, str]] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(8_389_765_000))

    def free(self, asset: str) -> Decimal:
        return self.spot.get(asset, [ZERO, ZERO])[0]

    def move_spot(self, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        row = self.spot.setdefault(asset, [ZERO, ZERO])
        row[0] += free
        row[1] += locked

    def by_client_id(self, venue: Venue, symbol: str, cid: str) -> FakeOrder | None:
        return next((o for o in self.orders.values() if o.venue == venue and o.symbol == symbol
                     and o.client_order_id == cid), None)

    def created(self, cid: str | None = None) -> list[dict[str, str]]:
        return [r for r in self.create_requests if cid is None or r.get("newClientOrderId") == cid]
