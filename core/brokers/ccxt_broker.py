"""The live broker: limit orders through ccxt on one exchange (spot client, futures client).

Amounts and prices are rounded with the market's own precision and the minimum notional is
checked after rounding. Every order carries the client order id the executor recorded, and a
transient failure is never answered by sending again blindly: the order is first looked up by
that id (the request may have reached the exchange even though the answer did not come back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt

from core.config import Settings
from core.errors import ExecutionError
from core.feeds.clients import Client, ExchangeClients
from core.feeds.retry import describe, is_transient, retrying
from core.models import ZERO, MarketSnapshot, Order, Position, market_of

from .base import Balances, OrderReport, OrderRequest, OrderStatus, Wallet, compact_client_order_id

log = logging.getLogger(__name__)
BPS = Decimal("0.0001")
# ccxt's names for the wallets of a unified `transfer` (Binance: MAIN ⇄ UMFUTURE).
WALLET_NAMES: dict[str, str] = {"spot": "spot", "futures": "linear"}


def dec(x: Any) -> Decimal | None:
    """ccxt numbers (floats or strings) as Decimals, through their shortest text form."""
    if x is None or x == "":
        return None
    try:
        return Decimal(str(x))
    except InvalidOperation:
        return None


class CcxtBroker:
    """Trades on one exchange of the config, through the shared ccxt clients."""

    live = True

    def __init__(self, settings: Settings, clients: ExchangeClients, *, exchange: str | None = None,
                 poll_seconds: float = 2.0, retries: int = 3, retry_wait_s: float | None = None) -> None:
        self.settings = settings
        self.clients = clients
        self.exchange = exchange or next(iter(settings.exchanges))
        self.name = self.exchange
        self.poll_seconds = poll_seconds
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self._loaded = False

    # ── clients and markets ────────────────────────────────────────────────────────────────

    def _client(self, market: str) -> Client:
        return self.clients.spot(self.exchange) if market == "spot" else self.clients.futures(self.exchange)

    async def _markets(self) -> None:
        if not self._loaded:
            await self._retry(lambda: self.clients.load_markets(self.exchange))
            self._loaded = True

    async def _retry(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run `fn()` with the feeds' retry policy (transient errors only)."""

        async def call() -> Any:  # tenacity awaits coroutine functions only, not lambdas
            return await fn()

        return await retrying(self.retries, initial_s=self.retry_wait_s)(call)

    def _cid(self, cid: str) -> str:
        okx = self.settings.exchanges[self.exchange].ccxt_id == "okx"
        return compact_client_order_id(cid) if okx else cid

    def use_snapshot(self, snapshot: MarketSnapshot) -> None:
        return None  # orders are priced from the approval's snapshot; fills come from the exchange

    # ── balances ───────────────────────────────────────────────────────────────────────────

    async def balances(self) -> Balances:
        await self._markets()
        spot_raw = await self._retry(lambda: self._client("spot").fetch_balance())
        spot = _amounts(spot_raw, "free")
        totals = _amounts(spot_raw, "total")
        if not self.clients.has_separate_futures(self.exchange):
            return Balances(spot, spot, await self._positions(), shared_wallet=True, totals=totals)
        fut_raw = await self._retry(lambda: self._client("futures").fetch_balance())
        for asset, amount in _amounts(fut_raw, "total").items():
            totals[asset] = totals.get(asset, ZERO) + amount
        return Balances(spot, _amounts(fut_raw, "free"), await self._positions(), totals=totals)

    async def _positions(self) -> tuple[Position, ...]:
        client = self._client("futures")
        if not client.has.get("fetchPositions"):
            return ()
        rows = await self._retry(lambda: client.fetch_positions())
        out = []
        for p in rows:
            contracts = dec(p.get("contracts")) or ZERO
            if contracts and p.get("symbol"):
                signed = -contracts if p.get("side") == "short" else contracts
                out.append(Position(p["symbol"], signed, dec(p.get("contractSize")) or Decimal(1)))
        return tuple(out)

    # ── sizing ─────────────────────────────────────────────────────────────────────────────

    async def prepare(self, order: Order, amount: Decimal, market_price: Decimal, *, leg: int,
                      client_order_id: str, attempt: int = 0) -> OrderRequest:
        await self._markets()
        client = self._client(order.market)
        if order.symbol not in client.markets:
            raise ExecutionError(f"{order.symbol} is not listed on {self.exchange}")
        market = client.market(order.symbol)
        offset = self.settings.costs.limit_offset_bps * BPS
        post_only = self.settings.execution.post_only
        # A taker limit reaches through the market by the offset; a post-only (maker) order
        # must rest on its own side of it, or the exchange refuses it.
        through = 1 + offset if order.side == "buy" else 1 - offset
        behind = 1 - offset if order.side == "buy" else 1 + offset
        raw = market_price * (behind if post_only else through)
        try:
            qty = Decimal(client.amount_to_precision(order.symbol, str(amount)))
            price = Decimal(client.price_to_precision(order.symbol, str(raw)))
        except ccxt.BaseError as exc:  # ccxt refuses an amount that rounds to nothing
            raise ExecutionError(f"{order.symbol} {order.side} of {amount:f} is below the exchange's "
                                 f"smallest amount ({describe(exc)})") from None
        size = dec(market.get("contractSize")) or Decimal(1)
        limits = market.get("limits") or {}
        min_cost = dec((limits.get("cost") or {}).get("min")) or ZERO
        min_amount = dec((limits.get("amount") or {}).get("min")) or ZERO
        own = self.settings.assets.get(order.asset)
        own_min = (own.min_notional if own and own.min_notional is not None
                   else self.settings.orders.min_notional)
        notional = qty * price * size
        minimum = max(min_cost, own_min)
        if qty <= 0 or qty < min_amount or notional < minimum:
            raise ExecutionError(f"{order.symbol} {order.side} of {notional:,.2f} {self.settings.quote} is "
                                 f"under the minimum of {minimum:f} after rounding to the exchange's steps")
        return OrderRequest(order, client_order_id, qty, price, market_price, leg, attempt, post_only)

    async def market_price(self, order: Order) -> Decimal:
        await self._markets()
        client = self._client(order.market)
        ticker = await self._retry(lambda: client.fetch_ticker(order.symbol))
        price = dec(ticker.get("last")) or dec(ticker.get("close"))
        if price is None:
            raise ExecutionError(f"no price for {order.symbol} from {self.exchange}")
        return price

    # ── orders ─────────────────────────────────────────────────────────────────────────────

    async def submit(self, request: OrderRequest) -> OrderReport:
        o, cid = request.order, request.client_order_id
        client = self._client(o.market)
        params: dict[str, Any] = {"clientOrderId": self._cid(cid)}
        if request.post_only:
            params["postOnly"] = True
        attempts = 0

        async def send() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The last try may have reached the exchange: look before sending again.
                found = await self._fetch(request.order, cid)
                if found is not None:
                    return found
            return await client.create_order(o.symbol, "limit", o.side, str(request.amount),
                                             str(request.price), params)

        try:
            raw = await retrying(self.retries, initial_s=self.retry_wait_s)(send)
        except ccxt.BaseError as exc:
            if is_transient(exc):
                found = await self._fetch(request.order, cid)  # one last look; raises if unreachable
                if found is not None:
                    return await self._report(request.order, cid, found)
                return OrderReport(cid, "not_sent", message=f"not accepted by the exchange: {describe(exc)}")
            log.warning("order %s rejected: %s", cid, describe(exc))
            return OrderReport(cid, "rejected", message=_rejection(exc))
        return await self._report(o, cid, raw)

    async def _fetch(self, order: Order, cid: str) -> dict[str, Any] | None:
        """The exchange's view of an order by client id (fetch_order, else open orders), or None."""
        client = self._client(order.market)
        try:
            return await self._retry(lambda: client.fetch_order(None, order.symbol,
                                                                {"clientOrderId": self._cid(cid)}))
        except ccxt.OrderNotFound:
            pass
        if client.has.get("fetchOpenOrders"):
            rows = await self._retry(lambda: client.fetch_open_orders(order.symbol))
            return next((r for r in rows if r.get("clientOrderId") == self._cid(cid)), None)
        return None

    async def wait(self, request: OrderRequest, timeout_s: float) -> OrderReport:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        report = await self.lookup(request.client_order_id, request.payload())
        while not report.done and loop.time() < deadline:
            await asyncio.sleep(min(self.poll_seconds, max(0.0, deadline - loop.time())))
            report = await self.lookup(request.client_order_id, request.payload())
        return report

    async def cancel(self, request: OrderRequest) -> OrderReport:
        return await self.cancel_by_id(request.client_order_id, request.payload())

    async def cancel_by_id(self, client_order_id: str, payload: Mapping[str, Any]) -> OrderReport:
        order = _order_from(payload)
        client = self._client(order.market)
        try:
            await self._retry(lambda: client.cancel_order(None, order.symbol,
                                                          {"clientOrderId": self._cid(client_order_id)}))
        except (ccxt.OrderNotFound, ccxt.InvalidOrder) as exc:
            # Filled (or gone) just before the cancel arrived: the look-up below tells which.
            log.info("cancel of %s refused: %s", client_order_id, describe(exc))
        report = await self.lookup(client_order_id, payload)
        for _ in range(5):  # a cancel can take a moment to show in the order's status
            if report.done:
                break
            await asyncio.sleep(self.poll_seconds / 4)
            report = await self.lookup(client_order_id, payload)
        return report

    async def lookup(self, client_order_id: str, payload: Mapping[str, Any]) -> OrderReport:
        await self._markets()
        order = _order_from(payload)
        found = await self._fetch(order, client_order_id)
        if found is None:
            return OrderReport(client_order_id, "not_sent", message="the exchange has no such order")
        return await self._report(order, client_order_id, found)

    async def _report(self, order: Order, cid: str, raw: Mapping[str, Any]) -> OrderReport:
        filled = dec(raw.get("filled")) or ZERO
        amount = dec(raw.get("amount"))
        avg = dec(raw.get("average")) or (dec(raw.get("price")) if filled else None)
        state = raw.get("status")
        status: OrderStatus
        if state == "closed" or (amount is not None and filled >= amount > 0):
            status = "filled"
        elif state == "open":
            status = "partially_filled" if filled else "open"
        elif state in ("canceled", "expired"):
            status = "canceled"
        else:
            status = "rejected"
        if filled and not (raw.get("fees") or raw.get("fee")):
            raw = {**raw, "fees": await self._trade_fees(order, raw)}
        fee, in_base, estimated = self._fees(order, raw, filled, avg)
        return OrderReport(cid, status, filled, avg, fee, in_base,
                           exchange_order_id=str(raw.get("id")) if raw.get("id") else None,
                           fee_estimated=estimated)

    async def _trade_fees(self, order: Order, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Fees from the order's trades: an order look-up (Binance) does not state them."""
        client = self._client(order.market)
        if not client.has.get("fetchMyTrades") or not raw.get("id"):
            return []
        try:
            trades = await self._retry(lambda: client.fetch_my_trades(
                order.symbol, None, None, {"orderId": raw["id"]}))
        except ccxt.BaseError as exc:  # the fee is then estimated from the config
            log.warning("trades of order %s unavailable: %s", raw["id"], describe(exc))
            return []
        return [t["fee"] for t in trades if str(t.get("order")) == str(raw["id"]) and t.get("fee")]

    def _fees(self, order: Order, raw: Mapping[str, Any], filled: Decimal,
              avg: Decimal | None) -> tuple[Decimal, Decimal, bool]:
        """The fee in the quote currency, the part paid in the base asset, and whether estimated."""
        fees = [f for f in (raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])) if f]
        base, quote = order.asset, self.settings.quote
        total, in_base, known = ZERO, ZERO, bool(fees)
        for f in fees:
            cost, cur = dec(f.get("cost")) or ZERO, f.get("currency")
            if cur == base and avg is not None:
                total += cost * avg
                in_base += cost
            elif cur in (quote, None):
                total += cost
            else:
                known = False  # paid in a third asset (BNB): estimate instead
        if known or not filled or avg is None:
            return total, in_base, False
        c = self.settings.costs
        bps = c.spot_fee_bps if order.market == "spot" else c.futures_fee_bps
        return filled * avg * order.contract_size * bps * BPS, ZERO, True

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, target: Wallet) -> str:
        client = self._client("spot")
        done = await client.transfer(asset, float(amount), WALLET_NAMES[source], WALLET_NAMES[target])
        return str(done.get("id") or "")

    async def close(self) -> None:
        await self.clients.close()


def _amounts(balance: Mapping[str, Any], kind: str) -> dict[str, Decimal]:
    """ccxt's `free` or `total` balances as Decimals, zeros left out."""
    return {a: d for a, v in (balance.get(kind) or {}).items() if (d := dec(v))}


def _rejection(exc: BaseException) -> str:
    """Why the exchange refused an order, in words a person understands."""
    text = describe(exc)
    if isinstance(exc, ccxt.InsufficientFunds) or "-2019" in text or "insufficient" in text.lower():
        return f"insufficient balance at the exchange ({text})"
    if "-1013" in text or "-4164" in text or "NOTIONAL" in text:
        return f"under the exchange's minimum order size ({text})"
    if isinstance(exc, ccxt.OrderImmediatelyFillable | ccxt.OrderNotFillable):
        return f"post-only order would have taken liquidity ({text})"
    return f"refused by the exchange ({text})"


def _order_from(payload: Mapping[str, Any]) -> Order:
    """Enough of an Order to look one up again from what the store recorded."""
    symbol = payload["symbol"]
    return Order(market=payload.get("market") or market_of(symbol), symbol=symbol,
                 asset=payload.get("asset") or symbol.split("/")[0], side=payload.get("side", "buy"),
                 amount=Decimal(payload.get("amount", "0")), notional=ZERO,
                 limit_price=Decimal(payload.get("price", "0")), reason="reconcile",
                 leg=int(payload.get("leg", 0)), contract_size=Decimal(payload.get("contract_size", "1")))
