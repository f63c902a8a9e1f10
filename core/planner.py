"""From an evaluation to a Proposal: spot legs first through stablecoins, then the futures overlay.

Orders are sized in money against the effective targets, rounded down to the market's step,
dropped under its minimum notional, capped, and never allowed to overdraw a balance.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from core.book import Fill, apply_fills
from core.config import Settings
from core.evaluate import Evaluation
from core.memo import SameInputMemo
from core.models import ONE, ZERO, Market, MarketSnapshot, Order, Portfolio, Proposal, Side, Trigger
from core.portfolio import value_portfolio
from core.rules.base import RuleContext, pct
from core.rules.regimes import expected_carry
from core.signals import basis_apr, funding_apr, nearest_future

BPS = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class MarketRule:
    """An exchange's sizing rules for one symbol."""

    min_notional: Decimal
    amount_step: Decimal
    price_step: Decimal


def default_rule(settings: Settings, asset: str) -> MarketRule:
    cfg = settings.assets.get(asset)
    minimum = (cfg.min_notional if cfg and cfg.min_notional is not None
               else settings.orders.min_notional)
    return MarketRule(minimum, Decimal(1).scaleb(-settings.orders.amount_decimals),
                      Decimal(1).scaleb(-settings.orders.price_decimals))


def round_step(x: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of `step` (exchanges reject finer amounts)."""
    return (x / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_step_up(x: Decimal, step: Decimal) -> Decimal:
    """Round up to a multiple of `step` (a buy limit may be a tick more generous, never less)."""
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step


# Default sizing rules per settings object, shared by the planners of its evaluations.
_DEFAULT_RULES: SameInputMemo[dict[str, MarketRule]] = SameInputMemo(64)


def new_proposal_id() -> str:
    return "P-" + secrets.token_hex(3).upper()


@dataclass
class _Draft:
    market: Market
    symbol: str
    asset: str
    side: Side
    amount: Decimal
    price: Decimal
    contract_size: Decimal
    reason: str


class Planner:
    """Sizes orders for one evaluation with the settings' costs, minimums and caps."""

    def __init__(self, settings: Settings, market_rules: Mapping[str, MarketRule] | None = None):
        self.settings = settings
        self.rules = dict(market_rules or {})
        self.warnings: list[str] = []
        self._defaults = _DEFAULT_RULES.get((settings,), (), dict)
        offset = settings.costs.limit_offset_bps * BPS
        self._limit_factor = {"buy": 1 + offset, "sell": 1 - offset}

    def rule(self, symbol: str, asset: str) -> MarketRule:
        found = self.rules.get(symbol) or self._defaults.get(asset)
        if found is None:
            found = self._defaults[asset] = default_rule(self.settings, asset)
        return found

    def _reason(self, triggers: tuple[Trigger, ...], asset: str, scope: str, target: Decimal) -> str:
        own = [t.rule for t in triggers if t.asset in (asset, None)]
        # Legs of assets that did not trigger ride along in the same batch (seed 003 §6.2).
        why = ", ".join(dict.fromkeys(own)) if own else "batched with this rebalance"
        what = "spot" if scope == "spot" else "futures exposure"
        return f"{asset} {what} to {pct(target, 1)} of value ({why})"

    def _sized(self, d: _Draft) -> _Draft | None:
        rule = self.rule(d.symbol, d.asset)
        amount = round_step(d.amount, rule.amount_step)
        notional = amount * d.price * d.contract_size
        cap = self.settings.orders.max_order_notional
        if notional > cap:
            amount = round_step(cap / (d.price * d.contract_size), rule.amount_step)
            self.warnings.append(f"{d.symbol} {d.side} capped at {cap} {self.settings.quote}")
            notional = amount * d.price * d.contract_size
        if amount <= ZERO or notional < rule.min_notional:
            if notional > ZERO or d.amount * d.price > rule.min_notional / 10:
                self.warnings.append(
                    f"{d.symbol} {d.side} of {d.amount * d.price * d.contract_size:.2f} "
                    f"{self.settings.quote} is under the {rule.min_notional} minimum; skipped"
                )
            return None
        d.amount = amount  # a draft is this planner's own working record
        return d

    def spot_drafts(self, ev: Evaluation, snapshot: MarketSnapshot, portfolio: Portfolio,
                    triggers: tuple[Trigger, ...]) -> list[_Draft]:
        v = ev.valuation
        drafts: list[_Draft] = []
        for asset in sorted(set(ev.targets.assets) | {a for a, x in v.spot_value.items() if x}):
            price = snapshot.price(asset)
            if price is None or asset in ev.freshness.stale_spot:
                continue
            target = ev.targets.spot_weight(asset)
            delta = target * v.value - v.spot_value.get(asset, ZERO)
            amount = abs(delta) / price
            if delta < ZERO:
                amount = min(amount, portfolio.balances.get(asset, ZERO))
            drafts.append(_Draft("spot", self.settings.spot_symbol(asset) if asset in self.settings.assets
                                 else f"{asset}/{snapshot.quote}", asset,
                                 "buy" if delta > ZERO else "sell", amount, price, ONE,
                                 self._reason(triggers, asset, "spot", target)))
        return [d for d in map(self._sized, drafts) if d is not None]

    def futures_drafts(self, ev: Evaluation, snapshot: MarketSnapshot, portfolio: Portfolio,
                       triggers: tuple[Trigger, ...]) -> list[_Draft]:
        v = ev.valuation
        drafts: list[_Draft] = []
        for asset in sorted(set(ev.targets.assets) | set(v.futures_notional)):
            market = snapshot.assets.get(asset)
            target = ev.targets.futures_weight(asset)
            delta = target * v.value - v.futures_notional.get(asset, ZERO)
            if market is None or market.perp is None:
                if abs(delta) > 0 and target != 0:
                    self.warnings.append(f"{asset} has no perpetual: futures target not applied")
                continue
            if asset in ev.freshness.stale_perp:
                continue
            reason = self._reason(triggers, asset, "futures", target)
            # Exposure is delta valued at spot, so legs are sized in base units at the spot price:
            # a basis trade then holds exactly as many units short as it holds spot.
            unit_price = snapshot.price(asset) or market.perp.mark
            for symbol, price, size, notional in self._legs(ev, snapshot, portfolio, asset, delta):
                drafts.append(_Draft("future" if symbol != market.perp.symbol else "perp", symbol, asset,
                                     "buy" if notional > 0 else "sell",
                                     abs(notional) / (unit_price * size), price, size, reason))
        return [d for d in map(self._sized, drafts) if d is not None]

    def _legs(self, ev: Evaluation, snapshot: MarketSnapshot, portfolio: Portfolio, asset: str,
              delta: Decimal) -> list[tuple[str, Decimal, Decimal, Decimal]]:
        """Where a futures change goes: new shorts to the better carry (dated basis or perp
        funding), closing buys to dated shorts first so the locked basis is unwound in kind."""
        market = snapshot.assets[asset]
        perp = market.perp
        assert perp is not None
        perp_leg = (perp.symbol, perp.mark, perp.contract_size)
        tradable = [f for f in market.futures if not f.inverse]  # inverse ones only inform the basis
        future = (None if asset in ev.freshness.stale_futures
                  else nearest_future(tradable, snapshot.as_of))
        if delta < 0 and future is not None and market.spot is not None:
            basis = basis_apr(future.price, market.spot.price, future.expiry, snapshot.as_of)
            if basis is not None and basis > funding_apr(perp.funding_rate, perp.funding_interval_hours):
                return [(future.symbol, future.price, future.contract_size, delta)]
        legs: list[tuple[str, Decimal, Decimal, Decimal]] = []
        if delta > 0:
            for f in tradable:
                held = sum((p.contracts * p.contract_size * f.price for p in portfolio.positions
                            if p.symbol == f.symbol and p.contracts < 0), ZERO)
                take = min(delta, -held)
                if take > 0:
                    legs.append((f.symbol, f.price, f.contract_size, take))
                    delta -= take
        if delta != 0:
            legs.append((*perp_leg, delta))
        return legs

    def fund_buys(self, sells: list[_Draft], buys: list[_Draft], futures: list[_Draft],
                  portfolio: Portfolio) -> list[_Draft]:
        """Scale spot buys so that cash after sells, fees and slippage never goes negative."""
        c = self.settings.costs
        spot_cost = 1 + (c.spot_fee_bps + c.limit_offset_bps) * BPS
        cash = portfolio.balances.get(self.settings.quote, ZERO)
        cash += sum((d.amount * d.price * (1 - (c.spot_fee_bps + c.limit_offset_bps) * BPS)
                     for d in sells), ZERO)
        cash -= sum((d.amount * d.price * d.contract_size * c.futures_fee_bps * BPS
                     for d in futures), ZERO)
        need = sum((d.amount * d.price * spot_cost for d in buys), ZERO)
        if need <= cash or need == 0:
            return buys
        scale = max(ZERO, cash) / need
        self.warnings.append(f"spot buys scaled to {pct(scale, 1)} to stay within available "
                             f"{self.settings.quote}")
        scaled = [replace(d, amount=d.amount * scale) for d in buys]
        return [d for d in map(self._sized, scaled) if d is not None]

    def afford_futures(self, sells: list[_Draft], futures: list[_Draft],
                       portfolio: Portfolio) -> list[_Draft]:
        """Drop the futures overlay when stablecoins cannot even pay its fees."""
        c = self.settings.costs
        cash = portfolio.balances.get(self.settings.quote, ZERO) + sum(
            (d.amount * d.price * (1 - (c.spot_fee_bps + c.limit_offset_bps) * BPS) for d in sells), ZERO)
        fees = sum((d.amount * d.price * d.contract_size * c.futures_fee_bps * BPS for d in futures), ZERO)
        if fees <= cash:
            return futures
        self.warnings.append(f"not enough {self.settings.quote} to pay the futures fees: "
                             "futures overlay left out")
        return []

    def to_order(self, d: _Draft, leg: int) -> Order:
        c, rule = self.settings.costs, self.rule(d.symbol, d.asset)
        limit = d.price * self._limit_factor[d.side]  # price × (1 ± limit offset)
        # ROUND_DOWN truncates toward zero, so -round_step(-x) is not a ceiling: a buy limit
        # cut below price × (1 + offset) was never reached by the paper fill at that price.
        limit = round_step(limit, rule.price_step) if d.side == "sell" else (
            round_step_up(limit, rule.price_step))
        notional = d.amount * d.price * d.contract_size
        fee_bps = c.spot_fee_bps if d.market == "spot" else c.futures_fee_bps
        return Order(market=d.market, symbol=d.symbol, asset=d.asset, side=d.side, amount=d.amount,
                     notional=notional, limit_price=limit,
                     reason=d.reason, leg=leg, est_fee=notional * fee_bps * BPS,
                     est_slippage=notional * c.slippage_bps * BPS, contract_size=d.contract_size)


def plan(
    ev: Evaluation,
    snapshot: MarketSnapshot,
    portfolio: Portfolio,
    settings: Settings,
    *,
    strategy: str,
    proposal_id: str | None = None,
    market_rules: Mapping[str, MarketRule] | None = None,
    snapshot_id: str | None = None,
) -> Proposal:
    """The proposal for one evaluation; it has no orders when nothing fired or data is stale."""
    orders, warnings = plan_orders(ev, snapshot, portfolio, settings, market_rules)
    after = simulate(portfolio, orders, settings.quote)
    valuation_after = value_portfolio(after, snapshot, settings.stablecoins)
    now = snapshot.as_of
    return Proposal(
        id=proposal_id or new_proposal_id(),
        created_at=now,
        expires_at=now + timedelta(minutes=settings.proposals.expiry_minutes),
        strategy=strategy,
        triggers=ev.triggers,
        orders=tuple(orders),
        weights_before=ev.valuation.weights,
        weights_after=valuation_after.weights,
        net_futures_exposure_before=ev.valuation.net_futures_exposure,
        net_futures_exposure_after=valuation_after.net_futures_exposure,
        value=ev.valuation.value,
        est_fees=sum((o.est_fee for o in orders), ZERO),
        est_slippage=sum((o.est_slippage for o in orders), ZERO),
        expected_carry_apr=carry_of(ev, snapshot, settings),
        hurdle_apr=settings.strategy.rules.hurdle.min_apr,
        warnings=tuple(dict.fromkeys([*ev.warnings, *warnings])),
        snapshot_id=snapshot_id,
        prices={a: p for a in snapshot.assets if (p := snapshot.price(a)) is not None},
    )


def plan_orders(ev: Evaluation, snapshot: MarketSnapshot, portfolio: Portfolio, settings: Settings,
                market_rules: Mapping[str, MarketRule] | None = None) -> tuple[list[Order], list[str]]:
    """A proposal's orders (spot sells, spot buys, futures) and the planner's own warnings.

    What the backtest executes; `plan` dresses them as a Proposal with the book before and after.
    """
    if ev.freshness.any_spot_stale:
        return [], ["stale data: no orders proposed"]
    if ev.valuation.value <= 0:
        return [], ["the portfolio has no value to rebalance: deposit stablecoins first"]
    if not ev.triggers:
        return [], []
    planner = Planner(settings, market_rules)
    spot = planner.spot_drafts(ev, snapshot, portfolio, ev.triggers) if "spot" in ev.scopes else []
    futures = (planner.futures_drafts(ev, snapshot, portfolio, ev.triggers)
               if "futures" in ev.scopes else [])
    sells = [d for d in spot if d.side == "sell"]
    futures = planner.afford_futures(sells, futures, portfolio)
    buys = planner.fund_buys(sells, [d for d in spot if d.side == "buy"], futures, portfolio)
    orders = [planner.to_order(d, leg) for leg, d in enumerate([*sells, *buys, *futures])]
    return orders, planner.warnings


def simulate(portfolio: Portfolio, orders: list[Order] | tuple[Order, ...], quote: str) -> Portfolio:
    """The portfolio if every order filled at its reference price and estimated fee."""
    fills = [Fill(o, o.amount, o.notional / (o.amount * o.contract_size) if o.amount else o.limit_price,
                  o.est_fee) for o in orders]
    return apply_fills(portfolio, fills, quote)


def carry_of(ev: Evaluation, snapshot: MarketSnapshot, settings: Settings) -> Decimal | None:
    """Expected annual carry of the targeted basis trade, weighted by hedged size."""
    hedged = {a: w for a, w in ev.targets.hedged.items() if w > 0}
    if not hedged:
        return None
    ctx = RuleContext(snapshot=snapshot, valuation=ev.valuation, base=ev.base,
                      strategy=settings.strategy, now=snapshot.as_of, freshness=ev.freshness)
    carries = {a: c for a in hedged if (c := expected_carry(ctx, a)) is not None}
    if not carries:
        return None
    total = sum((hedged[a] for a in carries), ZERO)
    return sum((carries[a] * hedged[a] for a in carries), ZERO) / total
