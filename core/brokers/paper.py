"""The paper broker: fills with core.fills.paper_fill (the backtest's model) on the store's paper book.

Each fill writes the new book and the order's status in one store transaction, so after a crash
an order is either filled in the book and marked filled, or neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.book import apply_fill
from core.codec import portfolio_from_dict, portfolio_to_dict
from core.config import Settings
from core.errors import ExecutionError
from core.fills import paper_fill
from core.models import Market, MarketSnapshot, Order, Portfolio
from core.planner import default_rule, round_step, round_step_up
from core.portfolio_source import seed_portfolio
from core.store import Store

from .base import Balances, OrderReport, OrderRequest, Wallet

BPS = Decimal("0.0001")


def snapshot_price(snapshot: MarketSnapshot, asset: str, market: Market, symbol: str) -> Decimal | None:
    """The price an order of this market trades at: spot, the perpetual's mark, or the future's."""
    if market == "spot":
        return snapshot.price(asset)
    m = snapshot.assets.get(asset)
    if m is None:
        return None
    if market == "perp":
        return m.perp.mark if m.perp is not None and m.perp.symbol == symbol else None
    return next((f.price for f in m.futures if f.symbol == symbol), None)


class PaperBroker:
    """Trades on paper against the latest snapshot the executor gave it."""

    name = "paper"
    live = False

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.snapshot: MarketSnapshot | None = None

    def use_snapshot(self, snapshot: MarketSnapshot) -> None:
        """Fills price against this snapshot from now on."""
        self.snapshot = snapshot

    def book(self) -> Portfolio:
        raw = self.store.get_paper_book()
        return seed_portfolio(self.settings) if raw is None else portfolio_from_dict(raw)

    async def balances(self) -> Balances:
        book = self.book()
        quote = self.settings.quote
        return Balances(spot=dict(book.balances), futures={quote: book.balances.get(quote, Decimal(0))},
                        positions=book.positions, shared_wallet=True)

    async def prepare(self, order: Order, amount: Decimal, market_price: Decimal, *, leg: int,
                      client_order_id: str, attempt: int = 0) -> OrderRequest:
        rule = default_rule(self.settings, order.asset)
        offset = self.settings.costs.limit_offset_bps * BPS
        raw = market_price * (1 + offset if order.side == "buy" else 1 - offset)
        # Round the limit away from the market: it may be a tick more generous, never less.
        step = rule.price_step
        price = round_step_up(raw, step) if order.side == "buy" else round_step(raw, step)
        qty = round_step(amount, rule.amount_step)
        notional = qty * price * order.contract_size
        if qty <= 0 or notional < rule.min_notional:
            raise ExecutionError(f"{order.symbol} {order.side} of {notional:.2f} {self.settings.quote} is "
                                 f"under the {rule.min_notional} minimum after rounding")
        return OrderRequest(order, client_order_id, qty, price, market_price, leg, attempt,
                            self.settings.execution.post_only)

    async def market_price(self, order: Order) -> Decimal:
        price = None if self.snapshot is None else snapshot_price(
            self.snapshot, order.asset, order.market, order.symbol)
        if price is None:
            raise ExecutionError(f"no paper price for {order.symbol}")
        return price

    async def submit(self, request: OrderRequest) -> OrderReport:
        cid = request.client_order_id
        at = self.clock()
        with self.store.transaction():
            row = self.store.get_order(cid)
            if row is not None and row["status"] not in ("pending",):
                return _report(row)  # already filled or refused: never fill twice
            order = replace(request.order, amount=request.amount, limit_price=request.price)
            fill = paper_fill(order, request.market_price, self.settings.costs)
            if fill is None:
                report = OrderReport(cid, "canceled", message="the limit was not reached at the paper price")
            else:
                try:
                    after = apply_fill(self.book(), fill, self.settings.quote)
                except ExecutionError as exc:
                    report = OrderReport(cid, "rejected", message=f"insufficient paper balance: {exc}")
                else:
                    self.store.put_paper_book(portfolio_to_dict(after), at)
                    report = OrderReport(cid, "filled", fill.amount, fill.price, fill.fee,
                                         exchange_order_id=f"paper-{cid}")
            self.store.update_order(cid, report.status, at, exchange_order_id=report.exchange_order_id,
                                    filled=report.filled, avg_price=report.avg_price, fee=report.fee,
                                    payload_patch={"message": report.message} if report.message else None)
        return report

    async def wait(self, request: OrderRequest, timeout_s: float) -> OrderReport:
        return await self.lookup(request.client_order_id, request.payload())

    async def cancel(self, request: OrderRequest) -> OrderReport:
        return await self.lookup(request.client_order_id, request.payload())

    async def lookup(self, client_order_id: str, payload: Mapping[str, Any]) -> OrderReport:
        row = self.store.get_order(client_order_id)
        if row is None or row["status"] == "pending":
            # Fill and status are written together: a pending paper order never filled.
            return OrderReport(client_order_id, "not_sent", message="never filled on paper")
        return _report(row)

    async def cancel_by_id(self, client_order_id: str, payload: Mapping[str, Any]) -> OrderReport:
        return await self.lookup(client_order_id, payload)

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, target: Wallet) -> str:
        return "paper-shared-wallet"  # one paper wallet serves spot and futures

    async def close(self) -> None:
        return None


def _report(row: Mapping[str, Any]) -> OrderReport:
    payload = row.get("payload") or {}
    return OrderReport(row["client_order_id"], row["status"], row["filled"] or Decimal(0),
                       row["avg_price"], row["fee"] or Decimal(0),
                       exchange_order_id=row["exchange_order_id"], message=payload.get("message", ""))
