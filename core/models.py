"""Domain records shared by every part of Premia: market data, portfolio, triggers, proposals.

Money, prices and quantities are `Decimal`; rates and fractions are `Decimal` too so that order
sizing never meets a float. Times are timezone-aware UTC `datetime`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

Market = Literal["spot", "perp", "future"]
Side = Literal["buy", "sell"]

ZERO = Decimal(0)
ONE = Decimal(1)


def base_asset(symbol: str) -> str:
    """The base asset of a ccxt symbol: "BTC/USDT:USDT-250328" → "BTC"."""
    return symbol.split("/", 1)[0].upper()


def market_of(symbol: str) -> Market:
    """Classify a ccxt unified symbol: spot "BTC/USDT", perp "BTC/USDT:USDT", dated "…-250328"."""
    if ":" not in symbol:
        return "spot"
    settle = symbol.split(":", 1)[1]
    return "future" if "-" in settle else "perp"


@dataclass(frozen=True, slots=True)
class SpotQuote:
    price: Decimal
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class FundingPrint:
    """One settled funding payment: the rate per interval, at its settlement time."""

    time: datetime
    rate: Decimal


@dataclass(frozen=True, slots=True)
class PerpQuote:
    symbol: str
    mark: Decimal
    index: Decimal
    funding_rate: Decimal
    funding_interval_hours: Decimal
    timestamp: datetime
    funding_history: tuple[FundingPrint, ...] = ()
    next_funding_time: datetime | None = None
    contract_size: Decimal = ONE


@dataclass(frozen=True, slots=True)
class FutureQuote:
    """A dated (delivery) future.

    An inverse (coin-margined) one has its contract size in the quote currency and settles in
    the asset: its price still tells the basis, but Premia does not trade it.
    """

    symbol: str
    price: Decimal
    expiry: datetime
    timestamp: datetime
    contract_size: Decimal = ONE
    inverse: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    day: date
    price: Decimal


@dataclass(frozen=True, slots=True)
class AssetMarket:
    asset: str
    spot: SpotQuote | None = None
    perp: PerpQuote | None = None
    futures: tuple[FutureQuote, ...] = ()
    closes: tuple[Close, ...] = ()


FEAR_GREED_LABELS: tuple[tuple[int, str], ...] = (
    (25, "Extreme Fear"),
    (46, "Fear"),
    (54, "Neutral"),
    (75, "Greed"),
    (100, "Extreme Greed"),
)


def fear_greed_label(value: int) -> str:
    """alternative.me's classification of an index value (0-25 Extreme Fear … 76-100 Extreme Greed)."""
    for upper, label in FEAR_GREED_LABELS:
        if value <= upper:
            return label
    return "Extreme Greed"


@dataclass(frozen=True, slots=True)
class FearGreed:
    value: int
    timestamp: datetime
    history: tuple[tuple[date, int], ...] = ()

    @property
    def label(self) -> str:
        return fear_greed_label(self.value)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    as_of: datetime
    quote: str
    assets: Mapping[str, AssetMarket]
    fear_greed: FearGreed | None = None

    def price(self, asset: str) -> Decimal | None:
        """Spot price of an asset in the quote currency (1 for the quote itself)."""
        if asset == self.quote:
            return ONE
        market = self.assets.get(asset)
        if market is None or market.spot is None:
            return None
        return market.spot.price


@dataclass(frozen=True, slots=True)
class Position:
    """A futures position: signed contracts (negative = short) of `contract_size` base units."""

    symbol: str
    contracts: Decimal
    contract_size: Decimal = ONE

    @property
    def asset(self) -> str:
        return base_asset(self.symbol)

    @property
    def market(self) -> Market:
        return market_of(self.symbol)

    @property
    def base_units(self) -> Decimal:
        return self.contracts * self.contract_size


@dataclass(frozen=True, slots=True)
class Portfolio:
    balances: Mapping[str, Decimal]
    positions: tuple[Position, ...] = ()


@dataclass(frozen=True, slots=True)
class Order:
    """One leg of a proposal. `amount` is base units for spot and contracts for futures."""

    market: Market
    symbol: str
    asset: str
    side: Side
    amount: Decimal
    notional: Decimal
    limit_price: Decimal
    reason: str
    leg: int = 0
    est_fee: Decimal = ZERO
    est_slippage: Decimal = ZERO
    contract_size: Decimal = ONE


@dataclass(frozen=True, slots=True)
class Trigger:
    """A rule that fired, with the numbers it compared so that it can explain itself."""

    rule: str
    asset: str | None
    explanation: str
    values: Mapping[str, str] = field(default_factory=dict)
    state_from: str | None = None
    state_to: str | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    id: str
    created_at: datetime
    expires_at: datetime
    strategy: str
    triggers: tuple[Trigger, ...]
    orders: tuple[Order, ...]
    weights_before: Mapping[str, Decimal]
    weights_after: Mapping[str, Decimal]
    net_futures_exposure_before: Decimal
    net_futures_exposure_after: Decimal
    value: Decimal
    est_fees: Decimal = ZERO
    est_slippage: Decimal = ZERO
    expected_carry_apr: Decimal | None = None
    hurdle_apr: Decimal | None = None
    warnings: tuple[str, ...] = ()
    snapshot_id: str | None = None
    prices: Mapping[str, Decimal] = field(default_factory=dict)
