"""One simulated paper book stepping through replayed days with the live bot's own pieces.

Each day: settle the futures (funding prints since the last step, variation margin to the new
mark), cover a margin shortfall if the quote balance went negative, then evaluate → plan →
paper_fill → apply_fills exactly as the bot and its paper broker do. The backtest and the demo
both drive this class; neither re-implements a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.book import Fill, apply_fill, credit, funding_payments, variation_margin
from core.config import Settings
from core.errors import ExecutionError
from core.evaluate import Evaluation, Evaluator
from core.fills import paper_fill
from core.models import ZERO, MarketSnapshot, Order, Portfolio, Position
from core.planner import plan_orders
from core.portfolio import position_price, value_portfolio
from core.replay import Replay
from core.rules import RuleState
from core.strategy_config import Strategy

BPS = Decimal("0.0001")
# A forced sale covers the shortfall plus this margin, so fees and slippage do not leave it short.
COVER_BUFFER = Decimal("1.01")


@dataclass
class Ledger:
    """Running totals of one simulated book, in the quote currency."""

    fees: Decimal = ZERO
    slippage: Decimal = ZERO
    funding: Decimal = ZERO
    futures_pnl: Decimal = ZERO
    traded: Decimal = ZERO
    orders: int = 0
    unfilled: int = 0
    rebalances: int = 0
    proposals: int = 0
    margin_calls: int = 0
    triggers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Simulation:
    """A paper book driven through snapshots; every money movement goes through core.book."""

    def __init__(self, settings: Settings, strategy: Strategy, replay: Replay,
                 initial: Portfolio) -> None:
        self.settings = settings
        self.strategy = strategy
        self.replay = replay
        self.quote = settings.quote
        self.portfolio = initial
        self.states: Mapping[str, RuleState] = {}
        self.ledger = Ledger()
        self.marks: dict[str, Decimal] = {}
        self.last_as_of: datetime | None = None
        self.bankrupt = False
        self.evaluator = Evaluator(settings, strategy)
        self._state_days: dict[tuple[str, str], int] = {}  # (rule key, state) → evaluated days
        # Days in a row evaluated with the very same states (counted into _state_days on a change).
        self._run: tuple[Mapping[str, RuleState], int] = ({}, 0)

    # ── futures settlement ───────────────────────────────────────────────────────────────────

    def settle(self, snap: MarketSnapshot) -> None:
        """Funding prints settled since the last step and variation margin to today's marks."""
        positions = self.portfolio.positions
        if positions and self.last_as_of is not None:
            ledger, marks, replay, since = self.ledger, self.marks, self.replay, self.last_as_of
            # The ledger's sums are added to in the same order as they would be one by one.
            funding, futures_pnl, total = ledger.funding, ledger.futures_pnl, ZERO
            for pos in positions:
                mark = position_price(pos, snap)
                if mark is None:
                    continue
                symbol = pos.symbol
                if symbol in replay.perp_symbol_set:
                    prints = replay.funding_between(symbol, since, snap.as_of)
                    for paid in funding_payments(pos, mark, prints):
                        funding += paid
                        total += paid
                pnl = variation_margin(pos, marks.get(symbol, mark), mark)
                futures_pnl += pnl
                total += pnl
                marks[symbol] = mark
            ledger.funding, ledger.futures_pnl = funding, futures_pnl
            if total:
                self.portfolio = credit(self.portfolio, total, self.quote)
        self.last_as_of = snap.as_of
        if self.portfolio.balances.get(self.quote, ZERO) < ZERO:
            self._cover(snap)

    def _cover(self, snap: MarketSnapshot) -> None:
        """Sell spot (largest holding first) to bring a negative quote balance back to zero.

        This is the margin call an exchange would make on a losing short; it is counted.
        """
        costs = self.settings.costs
        shortfall = -self.portfolio.balances[self.quote]
        self.ledger.margin_calls += 1
        held = sorted(((amount * price, asset, amount, price)
                       for asset, amount in self.portfolio.balances.items()
                       if asset != self.quote and amount > 0
                       and (price := snap.price(asset)) is not None), reverse=True)
        # Bridge the shortfall while selling, so that no single sale sees a negative balance;
        # the same amount is taken back once the sales are booked.
        self.portfolio = credit(self.portfolio, shortfall, self.quote)
        needed = shortfall * COVER_BUFFER
        for _value, asset, amount, price in held:
            if needed <= 0:
                break
            net = price * (1 - costs.slippage_bps * BPS) * (1 - costs.spot_fee_bps * BPS)
            units = min(amount, needed / net)
            order = Order(market="spot", symbol=self._spot_symbol(asset), asset=asset, side="sell",
                          amount=units, notional=units * price, limit_price=ZERO,
                          reason="margin call: cover the futures loss")
            fill = paper_fill(order, price, costs)
            if fill is not None:
                self._book(fill, price)
                needed -= units * net
        self.portfolio = credit(self.portfolio, -shortfall, self.quote)
        if self.portfolio.balances.get(self.quote, ZERO) < 0:
            self.bankrupt = True
            self.ledger.notes.append(f"the book ran out of collateral on {snap.as_of:%Y-%m-%d}")

    def _spot_symbol(self, asset: str) -> str:
        return self.settings.spot_symbol(asset) if asset in self.settings.assets else f"{asset}/{self.quote}"

    # ── one decision ─────────────────────────────────────────────────────────────────────────

    def evaluate(self, snap: MarketSnapshot) -> Evaluation:
        """The live evaluate(); rule states carry to the next day and regime days are counted."""
        ev = self.evaluator.evaluate(snap, self.portfolio, self.states)
        self.states = ev.states
        states, days = self._run
        if ev.states is states:  # no rule changed state: the evaluator handed the mapping back
            self._run = (states, days + 1)
        else:
            self._count(states, days)
            self._run = (ev.states, 1)
        for t in ev.triggers:
            self.ledger.triggers[t.rule] = self.ledger.triggers.get(t.rule, 0) + 1
        return ev

    def _count(self, states: Mapping[str, RuleState], days: int) -> None:
        if not days:
            return
        counts = self._state_days
        for key, state in states.items():
            pair = (key, state.state)
            counts[pair] = counts.get(pair, 0) + days

    def regime_days(self) -> dict[str, dict[str, int]]:
        """Evaluated days per rule and state; per-asset keys ("volatility_spike:BTC") are summed."""
        self._count(*self._run)
        self._run = (self._run[0], 0)
        out: dict[str, dict[str, int]] = {}
        for (key, state), days in self._state_days.items():
            counts = out.setdefault(key.split(":", 1)[0], {})
            counts[state] = counts.get(state, 0) + days
        return out

    def propose(self, ev: Evaluation, snap: MarketSnapshot) -> list[Order]:
        """The orders the live planner proposes for this evaluation (a Proposal's, without the rest)."""
        self.ledger.proposals += 1
        return plan_orders(ev, snap, self.portfolio, self.settings)[0]

    def execute(self, orders: Sequence[Order], snap: MarketSnapshot) -> list[Fill]:
        """Fill each order with the paper fill model at the snapshot's price, spot legs first."""
        fills: list[Fill] = []
        for order in orders:
            price = _market_price(order, snap)
            fill = None if price is None else paper_fill(order, price, self.settings.costs)
            if fill is None:
                self.ledger.unfilled += 1
                continue
            try:
                self._book(fill, price)
            except ExecutionError as exc:
                self.ledger.unfilled += 1
                self.ledger.notes.append(f"{snap.as_of:%Y-%m-%d} {order.symbol}: {exc}")
                continue
            fills.append(fill)
        if fills:
            self.ledger.rebalances += 1
        if self.portfolio.balances.get(self.quote, ZERO) < 0:
            # Futures slippage is settled in cash and the planner only budgets their fees.
            self._cover(snap)
        return fills

    def _book(self, fill: Fill, market: Decimal) -> None:
        order = fill.order
        self.portfolio = apply_fill(self.portfolio, fill, self.quote)
        self.ledger.orders += 1
        self.ledger.fees += fill.fee
        self.ledger.traded += fill.notional
        size = order.contract_size if order.market != "spot" else Decimal(1)
        self.ledger.slippage += abs(fill.price - market) * fill.amount * size
        if order.market != "spot":
            # The futures leg opened at the fill price but is marked at the market: the
            # difference is its slippage, settled now as variation margin.
            signed = fill.amount if order.side == "buy" else -fill.amount
            pnl = variation_margin(Position(order.symbol, signed, size), fill.price, market)
            self.portfolio = credit(self.portfolio, pnl, self.quote)
            self.ledger.futures_pnl += pnl
            self.marks[order.symbol] = market

    def adopt(self, portfolio: Portfolio, futures_fills: list[tuple[str, Decimal, Decimal, Decimal]],
              fees: Decimal, traded: Decimal, snap: MarketSnapshot) -> None:
        """Take over a book another executor traded (the demo's paper broker).

        `futures_fills` are (symbol, signed contracts, contract size, fill price): each opened at
        its fill price and is marked at the market from now on, as `_book` does for its own fills.
        """
        self.portfolio = portfolio
        self.ledger.fees += fees
        self.ledger.traded += traded
        self.ledger.rebalances += 1
        for symbol, contracts, size, price in futures_fills:
            position = Position(symbol, contracts, size)
            mark = position_price(position, snap) or price
            pnl = variation_margin(position, price, mark)
            self.portfolio = credit(self.portfolio, pnl, self.quote)
            self.ledger.futures_pnl += pnl
            self.marks[symbol] = mark
        if self.portfolio.balances.get(self.quote, ZERO) < 0:
            self._cover(snap)

    def value(self, snap: MarketSnapshot) -> Decimal:
        return value_portfolio(self.portfolio, snap, self.evaluator.stablecoins).value


def _market_price(order: Order, snap: MarketSnapshot) -> Decimal | None:
    if order.market == "spot":
        return snap.price(order.asset)
    market = snap.assets.get(order.asset)
    if market is None:
        return None
    if market.perp is not None and market.perp.symbol == order.symbol:
        return market.perp.mark
    return next((f.price for f in market.futures if f.symbol == order.symbol), None)
