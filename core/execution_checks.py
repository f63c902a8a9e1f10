"""Pre-trade checks on approval: fresh and unmoved market, order caps, daily turnover, wallets.

Pure functions of their arguments (no I/O, no clock): the executor gathers the inputs and turns
a failed check into a refusal a person can read on a phone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal

from core.brokers.base import Balances, OrderRequest, Wallet, reference_price
from core.brokers.paper import snapshot_price
from core.config import Settings
from core.errors import ExecutionError
from core.evaluate import check_freshness
from core.models import ZERO, MarketSnapshot, Order, Proposal

BPS = Decimal("0.0001")
CENT = Decimal("0.01")
# Initial margin assumed for new futures exposure when checking the futures wallet (5× leverage).
# Binance's default leverage is higher; this leaves headroom against liquidation.
DEFAULT_MARGIN_RATE = Decimal("0.2")


@dataclass(frozen=True, slots=True)
class MarketCheck:
    """What the fresh market says about a proposal: stale parts, moved prices, leg prices."""

    stale: tuple[str, ...]
    moved: tuple[str, ...]
    leg_prices: Mapping[int, Decimal]


@dataclass(frozen=True, slots=True)
class Transfer:
    """Funds to move between wallets, and when: before the spot legs or before the futures legs."""

    asset: str
    amount: Decimal
    source: Wallet
    target: Wallet
    before: str  # "spot" | "futures"

    def describe(self) -> str:
        return f"move {self.amount:,.2f} {self.asset} from the {self.source} to the {self.target} wallet"


def fmt_price(x: Decimal) -> str:
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.6g}"


def _moved(name: str, then: Decimal, now: Decimal) -> str:
    return f"{name} {fmt_price(then)} → {fmt_price(now)} ({(now / then - 1) * 100:+.2f}%)"


def check_market(p: Proposal, snapshot: MarketSnapshot, settings: Settings, now: datetime) -> MarketCheck:
    """Stale data and moves beyond `proposals.price_tolerance` since the proposal was made."""
    limits = settings.staleness
    stale: list[str] = []
    age = (now - snapshot.as_of).total_seconds()
    if age > limits.spot_seconds:
        stale.append(f"the market data is {int(age // 60)} min old")
    fresh = check_freshness(snapshot, limits)
    moved: list[str] = []
    tol = settings.proposals.price_tolerance
    prices: dict[int, Decimal] = {}
    for o in p.orders:
        price = snapshot_price(snapshot, o.asset, o.market, o.symbol)
        stale_set = {"spot": fresh.stale_spot, "perp": fresh.stale_perp,
                     "future": fresh.stale_futures}[o.market]
        if price is None:
            stale.append(f"no {o.market} price for {o.symbol}")
            continue
        if o.asset in stale_set:
            stale.append(f"the {o.symbol} price is stale")
        prices[o.leg] = price
        ref = reference_price(o)
        if ref and abs(price / ref - 1) > tol:
            moved.append(_moved(o.symbol, ref, price))
    legs = {o.asset for o in p.orders if o.market == "spot"}
    for asset, then in sorted(p.prices.items()):
        now_price = snapshot.price(asset)
        if now_price is None or not then or asset in legs:
            continue
        if abs(now_price / then - 1) > tol:
            moved.append(_moved(asset, then, now_price))
    return MarketCheck(tuple(dict.fromkeys(stale)), tuple(dict.fromkeys(moved)), prices)


def check_caps(requests: Sequence[OrderRequest], settings: Settings, turnover_today: Decimal) -> None:
    """Refuse orders over the per-order cap, and a total that would break the daily turnover cap."""
    caps, quote = settings.orders, settings.quote
    for r in requests:
        if r.notional > caps.max_order_notional:
            raise ExecutionError(
                f"leg {r.leg} ({r.order.symbol} {r.order.side}, {r.notional:,.0f} {quote}) is over the "
                f"{caps.max_order_notional:,.0f} {quote} per-order cap (orders.max_order_notional)")
    total = sum((r.notional for r in requests), ZERO)
    if turnover_today + total > caps.max_daily_turnover:
        raise ExecutionError(
            f"this would trade {total:,.0f} {quote} on top of {turnover_today:,.0f} already today, over "
            f"the {caps.max_daily_turnover:,.0f} {quote} daily cap (orders.max_daily_turnover)")


def fee_of(r: OrderRequest, settings: Settings) -> Decimal:
    bps = settings.costs.spot_fee_bps if r.order.market == "spot" else settings.costs.futures_fee_bps
    return r.notional * bps * BPS


def margin_needed(r: OrderRequest, positions: Mapping[str, Decimal], rate: Decimal) -> Decimal:
    """Initial margin for the exposure a futures order adds (none for an order that reduces it)."""
    held = positions.get(r.order.symbol, ZERO)
    signed = r.amount if r.order.side == "buy" else -r.amount
    added = max(ZERO, abs(held + signed) - abs(held))
    return added * r.order.contract_size * r.price * rate


def _up(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_UP)


def check_balances(requests: Sequence[OrderRequest], balances: Balances, settings: Settings, *,
                   margin_rate: Decimal = DEFAULT_MARGIN_RATE) -> list[Transfer]:
    """Refuse what the wallets cannot pay for; the transfers between wallets that would fix it.

    Transfers are returned only when `execution.auto_transfer` allows them; otherwise a needed
    transfer is a refusal naming it as the step the person must take first.
    """
    quote = settings.quote
    spot = [r for r in requests if r.order.market == "spot"]
    futures = [r for r in requests if r.order.market != "spot"]
    for r in spot:
        if r.order.side == "sell" and balances.spot.get(r.order.asset, ZERO) < r.amount:
            have = balances.spot.get(r.order.asset, ZERO)
            raise ExecutionError(f"not enough {r.order.asset} to sell: the spot wallet holds {have}, "
                                 f"leg {r.leg} sells {r.amount}")
    spot_need = sum((r.notional + fee_of(r, settings) for r in spot if r.order.side == "buy"), ZERO) - sum(
        (r.notional - fee_of(r, settings) for r in spot if r.order.side == "sell"), ZERO)
    positions = {p.symbol: p.contracts for p in balances.positions}
    fut_fees = sum((fee_of(r, settings) for r in futures), ZERO)
    spot_cash = balances.spot.get(quote, ZERO)
    if balances.shared_wallet:
        # The paper book holds no margin: it only must not go negative (fees included).
        if spot_need + fut_fees > spot_cash:
            raise ExecutionError(f"not enough {quote}: {spot_cash:,.2f} held, "
                                 f"{spot_need + fut_fees:,.2f} needed for these orders and fees")
        return []
    fut_need = fut_fees + sum((margin_needed(r, positions, margin_rate) for r in futures), ZERO)
    fut_cash = balances.futures.get(quote, ZERO)
    spot_short, fut_short = max(ZERO, spot_need - spot_cash), max(ZERO, fut_need - fut_cash)
    if spot_short + fut_short > 0 and spot_need + fut_need > spot_cash + fut_cash:
        raise ExecutionError(f"not enough {quote}: the spot and futures wallets hold "
                             f"{spot_cash + fut_cash:,.2f}, these orders need {spot_need + fut_need:,.2f} "
                             "(fees and futures margin included)")
    transfers = []
    if spot_short > 0:
        transfers.append(Transfer(quote, _up(spot_short), "futures", "spot", "spot"))
    if fut_short > 0:
        transfers.append(Transfer(quote, _up(fut_short), "spot", "futures", "futures"))
    if transfers and not settings.execution.auto_transfer:
        steps = "; ".join(t.describe() for t in transfers)
        raise ExecutionError(f"a transfer between wallets is needed first: {steps}. Do it on the "
                             "exchange and approve again, or set execution.auto_transfer = true")
    return transfers


def hedged_amount(fut: Order, planned: Decimal, spot_legs: Iterable[tuple[Order, Decimal]]) -> Decimal:
    """Contracts for a futures leg that hedges a spot leg, re-sized to the spot leg's actual fill.

    A hedge is a futures leg on the same asset in the opposite direction. When it is at least as
    big as the spot leg (a basis trade, maybe covering older holdings too) the unfilled spot units
    come off it; when it is smaller (a partial hedge) it shrinks in proportion.
    """
    amount = planned
    for spot, filled_units in spot_legs:
        if spot.asset != fut.asset or spot.side == fut.side or spot.amount <= 0:
            continue
        planned_units = planned * fut.contract_size
        if planned_units >= spot.amount:
            amount -= (spot.amount - filled_units) / fut.contract_size
        else:
            amount = amount * filled_units / spot.amount
    return max(ZERO, amount)


def turnover_key(day: datetime) -> str:
    """The flag that holds a UTC day's traded notional."""
    return f"turnover:{day.astimezone(UTC).date().isoformat()}"
