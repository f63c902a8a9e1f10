"""Valuing a portfolio against a snapshot: weights, drift, delta, net futures exposure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from core.errors import SnapshotError
from core.models import ZERO, MarketSnapshot, Portfolio, Position, base_asset


@dataclass(frozen=True, slots=True)
class Valuation:
    """A portfolio seen through one snapshot. Weights and exposures are fractions of `value`."""

    value: Decimal
    quote: str
    spot_value: Mapping[str, Decimal]
    futures_notional: Mapping[str, Decimal]
    stable_value: Decimal
    # What `delta` is made of, worked out on demand: most valuations never ask for it.
    portfolio: Portfolio

    @property
    def delta(self) -> dict[str, Decimal]:
        """Net base units per asset: spot held plus futures (signed)."""
        units: dict[str, Decimal] = {}
        for position in self.portfolio.positions:
            asset = asset_of(position.symbol)
            units[asset] = units.get(asset, ZERO) + position.base_units
        balances = self.portfolio.balances
        return {a: balances.get(a, ZERO) + units.get(a, ZERO)
                for a in {**self.spot_value, **self.futures_notional}}

    def weight(self, asset: str) -> Decimal:
        return self.spot_value.get(asset, ZERO) / self.value if self.value else ZERO

    @property
    def weights(self) -> dict[str, Decimal]:
        """Spot weights per asset, stablecoins summed under the quote currency."""
        out = {a: self.weight(a) for a in self.spot_value}
        out[self.quote] = self.stable_value / self.value if self.value else ZERO
        return out

    def futures_weight(self, asset: str) -> Decimal:
        return self.futures_notional.get(asset, ZERO) / self.value if self.value else ZERO

    @property
    def net_futures_exposure(self) -> Decimal:
        """Signed futures notional over portfolio value (positive = net long)."""
        total = sum(self.futures_notional.values(), ZERO)
        return total / self.value if self.value else ZERO

    @property
    def hedged_share(self) -> Decimal:
        """Share of crypto spot value covered by short futures on the same asset."""
        spot = sum(self.spot_value.values(), ZERO)
        if not spot:
            return ZERO
        covered = sum(
            (min(v, max(ZERO, -self.futures_notional.get(a, ZERO))) for a, v in self.spot_value.items()),
            ZERO,
        )
        return covered / spot


def position_price(position: Position, snapshot: MarketSnapshot) -> Decimal | None:
    """The price that values a position's exposure: spot (delta terms), else the contract's own."""
    asset = _ASSETS.get(position.symbol) or asset_of(position.symbol)
    market = snapshot.assets.get(asset)
    if market is not None and market.spot is not None:  # the usual case, without another call
        return market.spot.price
    return _position_price(position, asset, snapshot)


def asset_of(symbol: str) -> str:
    """`Position.asset` for a symbol, remembered: books hold the same few symbols every day."""
    asset = _ASSETS.get(symbol)
    if asset is None:
        if len(_ASSETS) > 4096:
            _ASSETS.clear()
        asset = _ASSETS[symbol] = base_asset(symbol)
    return asset


_ASSETS: dict[str, str] = {}


def _position_price(position: Position, asset: str, snapshot: MarketSnapshot) -> Decimal | None:
    market = snapshot.assets.get(asset)
    if market is None:
        return None
    if market.spot is not None:
        return market.spot.price
    if market.perp is not None and market.perp.symbol == position.symbol:
        return market.perp.mark
    for future in market.futures:
        if future.symbol == position.symbol:
            return future.price
    return market.spot.price if market.spot else None


def value_portfolio(
    portfolio: Portfolio, snapshot: MarketSnapshot, stablecoins: Iterable[str]
) -> Valuation:
    """Value spot balances and futures notionals in the snapshot's quote currency.

    A frozenset of stablecoins that holds the quote is used as it is (an evaluator's own).
    """
    quote = snapshot.quote
    stables = (stablecoins if isinstance(stablecoins, frozenset) and quote in stablecoins
               else frozenset(stablecoins) | {quote})
    markets = snapshot.assets
    spot_value: dict[str, Decimal] = dict.fromkeys(markets, ZERO)
    stable_value = ZERO
    for asset, amount in portfolio.balances.items():
        if amount < ZERO:
            raise SnapshotError(f"balance of {asset} is negative ({amount})")
        if asset in stables:
            stable_value += amount
            continue
        market = markets.get(asset)  # snapshot.price: the quote is among the stables
        if market is None or market.spot is None:
            if amount == 0:
                continue
            raise SnapshotError(f"holding {amount} {asset} but the snapshot has no spot price for it")
        spot_value[asset] = amount * market.spot.price
    notional: dict[str, Decimal] = {}
    for position in portfolio.positions:
        asset = _ASSETS.get(position.symbol) or asset_of(position.symbol)
        market = markets.get(asset)
        price = (market.spot.price if market is not None and market.spot is not None
                 else _position_price(position, asset, snapshot))
        if price is None:
            raise SnapshotError(f"position in {position.symbol} but no price for {asset}")
        notional[asset] = notional.get(asset, ZERO) + position.base_units * price
    value = stable_value + sum(spot_value.values(), ZERO)
    return Valuation(value, quote, spot_value, notional, stable_value, portfolio)


def drift_pp(weight: Decimal, target: Decimal) -> Decimal:
    """Drift in percentage points: weight − target (40% target at 47% → +7)."""
    return (weight - target) * 100


def outside_band(weight: Decimal, target: Decimal, band_pp: Decimal) -> bool:
    """True when the weight left the band: a ±5 band around 40% acts below 35% or above 45%."""
    return abs(drift_pp(weight, target)) > band_pp
