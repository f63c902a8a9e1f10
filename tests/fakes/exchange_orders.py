"""Order endpoints for the loopback exchange: Binance spot and USDⓈ-M, in Binance's own formats.

`OrderDesk(server)` registers, on a running or not yet started `FakeExchange`:
create / fetch / cancel order, open orders, trades, account (balances), positions, leverage
brackets and wallet transfers. Responses follow the recorded payloads in `$PREMIA_SHARED_DATA/raw` (ccxt's
`createOrder`, `fetchBalance`, `fetchPositions` excerpts; nautilus' `http_futures_account_*`);
filters (tick, step, minimum notional) come from the served exchangeInfo, and errors carry
Binance's codes: -1013 filter failure, -2010 insufficient balance, -2019 margin, -2013/-2011
unknown order, -4164 futures notional, -5022 post-only would take, -1022 bad signature.

Requests must be signed (HMAC-SHA256 with the desk's secret, X-MBX-APIKEY header), like the
real API. Fills: a marketable limit order fills at the market price at once, a passive one
rests; a script (`desk.script(...)`) overrides that per order: full, partial, resting forever,
filling later, rejected, or processed with its answer lost. The `ExchangeState` lives in the
server, so it outlives any client: a restarted bot finds its orders there.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.fakes.exchange_accounts import ZERO, AccountEndpoints, BinanceError, Venue, _s
from tests.fakes.exchange_hosts import BINANCE_FAPI, BINANCE_SPOT
from tests.fakes.exchange_server import FakeExchange, FakeRequest
from tests.fakes.exchange_state import Behaviour, ExchangeState, FakeOrder

API_KEY = "premia-test-key"
SECRET = "premia-test-secret"  # a test value; real secrets never reach tests


class OrderDesk(AccountEndpoints):
    """The trading half of the loopback Binance; see the module docstring."""

    def __init__(self, server: FakeExchange, state: ExchangeState | None = None, *,
                 spot_fee: Decimal = Decimal("0.001"), futures_fee: Decimal = Decimal("0.0004"),
                 leverage: int = 20) -> None:
        self.server = server
        self.state = state or ExchangeState()
        self.spot_fee, self.futures_fee, self.leverage = spot_fee, futures_fee, leverage
        self.prices: dict[tuple[Venue, str], Decimal] = {}
        self.min_notional: dict[Venue, Decimal] = {}  # overrides the exchangeInfo filter
        self._scripts: list[tuple[Venue | None, str | None, Behaviour]] = []
        self._filters: dict[Venue, dict[str, dict[str, dict[str, str]]]] = {}
        self._register()

    # ── test controls ──────────────────────────────────────────────────────────────────────

    def fund(self, spot: dict[str, str] | None = None, futures: dict[str, str] | None = None) -> None:
        for asset, amount in (spot or {}).items():
            self.state.move_spot(asset, Decimal(amount))
        for asset, amount in (futures or {}).items():
            self.state.wallet[asset] = self.state.wallet.get(asset, ZERO) + Decimal(amount)

    def script(self, *behaviours: Behaviour, venue: Venue | None = None, symbol: str | None = None) -> None:
        """The next matching orders get these behaviours, in turn (then "auto" again)."""
        self._scripts.extend((venue, symbol, b) for b in behaviours)

    def set_price(self, venue: Venue, symbol: str, price: str) -> None:
        self.prices[(venue, symbol)] = Decimal(price)

    def price(self, venue: Venue, symbol: str) -> Decimal:
        if (venue, symbol) in self.prices:
            return self.prices[(venue, symbol)]
        rec = self.server.data
        if symbol in rec.quarterlies:
            return Decimal(rec.quarterlies[symbol][0])
        st = rec.perps[symbol[:-4]]
        return Decimal(st.index if venue == "spot" else st.mark)

    def creates(self, venue: Venue | None = None) -> list[dict[str, str]]:
        return [r for r in self.state.create_requests if venue is None or r["venue"] == venue]

    # ── plumbing ───────────────────────────────────────────────────────────────────────────

    def _register(self) -> None:
        routes = [
            ("POST", BINANCE_SPOT, "/api/v3/order", self._create, "spot"),
            ("GET", BINANCE_SPOT, "/api/v3/order", self._fetch, "spot"),
            ("DELETE", BINANCE_SPOT, "/api/v3/order", self._cancel, "spot"),
            ("GET", BINANCE_SPOT, "/api/v3/openOrders", self._open_orders, "spot"),
            ("GET", BINANCE_SPOT, "/api/v3/account", self._spot_account, "spot"),
            ("GET", BINANCE_SPOT, "/api/v3/myTrades", self._trades, "spot"),
            ("POST", BINANCE_SPOT, "/sapi/v1/asset/transfer", self._transfer, "spot"),
            ("POST", BINANCE_FAPI, "/fapi/v1/order", self._create, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v1/order", self._fetch, "usdm"),
            ("DELETE", BINANCE_FAPI, "/fapi/v1/order", self._cancel, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v1/openOrders", self._open_orders, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v1/userTrades", self._trades, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v2/account", self._futures_account, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v3/account", self._futures_account, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v2/positionRisk", self._position_risk, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v3/positionRisk", self._position_risk, "usdm"),
            ("GET", BINANCE_FAPI, "/fapi/v1/leverageBracket", self._brackets, "usdm"),
        ]
        for method, host, path, handler, venue in routes:
            self.server.route(method, host, path)(self._signed(handler, venue))

    def _signed(self, handler: Any, venue: Venue) -> Any:
        async def run(req: FakeRequest) -> Any:
            params = dict(req.query)
            raw_body = req.body or ""
            params.update(dict(parse_qsl(raw_body, keep_blank_values=True)))
            try:
                self._verify(req, raw_body)
                return await handler(venue, params)
            except BinanceError as exc:
                return exc.response()
        return run

    def _verify(self, req: FakeRequest, body: str) -> None:
        if req.headers.get("X-MBX-APIKEY") != API_KEY:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if "&signature=" in body:
            signed, sig = body.rsplit("&signature=", 1)
        else:
            items = [(k, v) for k, v in req.query.items() if k != "signature"]
            signed, sig = urlencode(items), req.query.get("signature", "")
        good = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, sig):
            raise BinanceError(-1022, "Signature for this request is not valid.")

    async def filters(self, venue: Venue, symbol: str) -> dict[str, dict[str, str]]:
        if venue not in self._filters:
            host, path = ((BINANCE_SPOT, "/api/v3/exchangeInfo") if venue == "spot"
                          else (BINANCE_FAPI, "/fapi/v1/exchangeInfo"))
            info = await self.server.routes[("GET", host, path)](
                FakeRequest("GET", host, path, {}, "", {}, self.server))
            self._filters[venue] = {s["symbol"]: {f["filterType"]: f for f in s["filters"]}
                                    for s in info["symbols"]}
        found = self._filters[venue].get(symbol)
        if found is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return found

    def _behaviour(self, venue: Venue, symbol: str) -> Behaviour:
        for i, (v, s, b) in enumerate(self._scripts):
            if (v is None or v == venue) and (s is None or s == symbol):
                del self._scripts[i]
                return b
        return Behaviour()

    def _order(self, venue: Venue, params: dict[str, str]) -> FakeOrder:
        symbol = params.get("symbol", "")
        if params.get("orderId"):
            found = self.state.orders.get(int(params["orderId"]))
            found = found if found is not None and found.venue == venue and found.symbol == symbol else None
        else:
            found = self.state.by_client_id(venue, symbol, params.get("origClientOrderId", ""))
        if found is None:
            raise BinanceError(-2013, "Order does not exist.")
        return found

    # ── orders ─────────────────────────────────────────────────────────────────────────────

    async def _create(self, venue: Venue, params: dict[str, str]) -> Any:
        self.state.create_requests.append({"venue": venue, **params})
        symbol, side = params.get("symbol", ""), params.get("side", "")
        flt = await self.filters(venue, symbol)
        qty, price = Decimal(params.get("quantity", "0")), Decimal(params.get("price", "0"))
        cid = params.get("newClientOrderId") or f"web_{next(self.state.ids)}"
        kind = params.get("type", "LIMIT")
        tif = params.get("timeInForce", "GTC")
        self._validate(venue, flt, qty, price, cid, symbol)
        behaviour = self._behaviour(venue, symbol)
        if behaviour.kind == "reject":
            raise BinanceError(behaviour.code, behaviour.msg, behaviour.status)
        market = self.price(venue, symbol)
        marketable = price >= market if side == "BUY" else price <= market
        post_only = kind == "LIMIT_MAKER" or tif == "GTX"
        if post_only and marketable and behaviour.kind in ("auto", "lost"):
            if venue == "spot":
                raise BinanceError(-2010, "Order would immediately match and take.")
            raise BinanceError(-5022, "Due to the order could not be executed as maker, the Post Only "
                                      "order will be rejected.")
        self._reserve(venue, symbol, side, qty, price)
        now = self.server.now_ms()
        order = FakeOrder(venue, next(self.state.ids), cid, symbol, side, kind, tif, price, qty, now,
                          update_time=now, behaviour=behaviour)
        self.state.orders[order.order_id] = order
        if behaviour.kind == "fill" or (behaviour.kind in ("auto", "lost") and marketable):
            self._fill(order, qty, market if marketable else price)
        elif behaviour.kind == "partial":
            step = Decimal(flt["LOT_SIZE"]["stepSize"])
            part = (qty * behaviour.fraction / step).to_integral_value() * step
            self._fill(order, part, market if marketable else price)
        if behaviour.kind == "lost":
            # Processed, then the answer is lost on the way back: the client must look it up.
            return web.Response(text="Service Unavailable", status=503)
        return self._payload(order, created=True)

    def _validate(self, venue: Venue, flt: dict, qty: Decimal, price: Decimal, cid: str,
                  symbol: str) -> None:
        if self.state.by_client_id(venue, symbol, cid) is not None:
            if venue == "spot":
                raise BinanceError(-2010, "Duplicate order sent.")
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        lot, tick = flt["LOT_SIZE"], flt["PRICE_FILTER"]
        if qty < Decimal(lot["minQty"]) or qty % Decimal(lot["stepSize"]) != 0:
            raise BinanceError(-1013 if venue == "spot" else -1111,
                               "Filter failure: LOT_SIZE" if venue == "spot"
                               else "Precision is over the maximum defined for this asset.")
        if price % Decimal(tick["tickSize"]) != 0:
            raise BinanceError(-1013 if venue == "spot" else -4014,
                               "Filter failure: PRICE_FILTER" if venue == "spot"
                               else "Price not increased by tick size.")
        rule = flt.get("MIN_NOTIONAL") or flt.get("NOTIONAL") or {}
        minimum = self.min_notional.get(venue, Decimal(rule.get("minNotional") or rule.get("notional") or 0))
        if qty * price < minimum:
            if venue == "spot":
                raise BinanceError(-1013, "Filter failure: NOTIONAL")
            raise BinanceError(-4164, f"Order's notional must be no smaller than {_s(minimum)} "
                                      "(unless you choose reduce only).")

    def _split(self, symbol: str) -> tuple[str, str]:
        pair = symbol.split("_")[0]
        return pair[:-4], pair[-4:]

    def _reserve(self, venue: Venue, symbol: str, side: str, qty: Decimal, price: Decimal) -> None:
        base, quote = self._split(symbol)
        if venue == "spot":
            asset, amount = (quote, qty * price) if side == "BUY" else (base, qty)
            if self.state.free(asset) < amount:
                raise BinanceError(-2010, "Account has insufficient balance for requested action.")
            self.state.move_spot(asset, -amount, amount)
            return
        held = self.state.positions.get(symbol, [ZERO, ZERO])[0]
        signed = qty if side == "BUY" else -qty
        added = max(ZERO, abs(held + signed) - abs(held))
        if added * price / self.leverage > self.available_margin(quote):
            raise BinanceError(-2019, "Margin is insufficient.")

    def available_margin(self, asset: str = "USDT") -> Decimal:
        used = sum((abs(a) * self.price("usdm", s) / self.leverage
                    for s, (a, _) in self.state.positions.items()), ZERO)
        pending = sum(((o.qty - o.executed) * o.price / self.leverage for o in self.state.orders.values()
                       if o.venue == "usdm" and o.open), ZERO)
        return self.state.wallet.get(asset, ZERO) - used - pending

    def _fill(self, order: FakeOrder, qty: Decimal, price: Decimal) -> None:
        if qty <= 0:
            return
        base, quote = self._split(order.symbol)
        notional = qty * price
        if order.venue == "spot":
            buy = order.side == "BUY"
            # The limit price was locked; the fill may be cheaper: unlock at the limit, pay the fill.
            locked_asset, locked = (quote, qty * order.price) if buy else (base, qty)
            self.state.move_spot(locked_asset, locked - (notional if buy else qty), -locked)
            fee = (qty if buy else notional) * self.spot_fee
            fee_asset = base if buy else quote
            self.state.move_spot(base if buy else quote, (qty if buy else notional) - fee)
        else:
            fee, fee_asset = notional * self.futures_fee, quote
            self.state.wallet[quote] = self.state.wallet.get(quote, ZERO) - fee
            self._position(order.symbol, qty if order.side == "BUY" else -qty, price, quote)
        order.executed += qty
        order.cum_quote += notional
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        order.update_time = self.server.now_ms()
        order.fills.append({"price": _s(price), "qty": _s(qty), "commission": _s(fee),
                            "commissionAsset": fee_asset, "tradeId": str(next(self.state.ids)),
                            "time": str(order.update_time)})

    def _position(self, symbol: str, signed: Decimal, price: Decimal, quote: str) -> None:
        amount, entry = self.state.positions.get(symbol, [ZERO, ZERO])
        new = amount + signed
        if amount and (amount > 0) != (signed > 0):  # reducing: realize P&L on the closed part
            closed = min(abs(signed), abs(amount))
            pnl = closed * (price - entry) * (1 if amount > 0 else -1)
            self.state.wallet[quote] = self.state.wallet.get(quote, ZERO) + pnl
            entry = entry if abs(signed) <= abs(amount) else price
        else:
            entry = (abs(amount) * entry + abs(signed) * price) / abs(new) if new else ZERO
        self.state.positions[symbol] = [new, entry if new else ZERO]

    def _advance(self, order: FakeOrder) -> None:
        """A resting order may fill as time passes (scripted `fill_later`, or the price crossed)."""
        if not order.open:
            return
        order.polls += 1
        market = self.price(order.venue, order.symbol)
        crossed = market <= order.price if order.side == "BUY" else market >= order.price
        b = order.behaviour
        if (b.kind == "fill_later" and order.polls >= b.polls) or (b.kind == "auto" and crossed):
            self._fill(order, order.qty - order.executed, order.price)

    async def _fetch(self, venue: Venue, params: dict[str, str]) -> Any:
        order = self._order(venue, params)
        self._advance(order)
        return self._payload(order)

    async def _cancel(self, venue: Venue, params: dict[str, str]) -> Any:
        order = self._order(venue, params)
        if not order.open:
            raise BinanceError(-2011, "Unknown order sent.")
        left = order.qty - order.executed
        if venue == "spot":
            base, quote = self._split(order.symbol)
            asset, amount = (quote, left * order.price) if order.side == "BUY" else (base, left)
            self.state.move_spot(asset, amount, -amount)
        order.status = "CANCELED"
        order.update_time = self.server.now_ms()
        out = self._payload(order)
        if venue == "spot":
            out = {**out, "origClientOrderId": order.client_order_id,
                   "clientOrderId": f"cancel{order.order_id}", "transactTime": order.update_time}
        return out

    async def _open_orders(self, venue: Venue, params: dict[str, str]) -> Any:
        symbol = params.get("symbol")
        for o in list(self.state.orders.values()):
            if o.venue == venue and (symbol is None or o.symbol == symbol):
                self._advance(o)
        return [self._payload(o) for o in self.state.orders.values()
                if o.venue == venue and o.open and (symbol is None or o.symbol == symbol)]

    def _payload(self, o: FakeOrder, created: bool = False) -> dict[str, Any]:
        if o.venue == "spot":
            out: dict[str, Any] = {
                "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
                "clientOrderId": o.client_order_id, "price": _s(o.price), "origQty": _s(o.qty),
                "executedQty": _s(o.executed), "cummulativeQuoteQty": _s(o.cum_quote),
                "status": o.status, "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
                "workingTime": o.time, "origQuoteOrderQty": "0", "selfTradePreventionMode": "EXPIRE_MAKER"}
            if created:  # newOrderRespType FULL
                return {**out, "transactTime": o.time, "fills": o.fills}
            return {**out, "stopPrice": "0", "icebergQty": "0", "time": o.time,
                    "updateTime": o.update_time, "isWorking": True}
        avg = o.cum_quote / o.executed if o.executed else ZERO
        out = {"orderId": o.order_id, "symbol": o.symbol, "status": o.status,
               "clientOrderId": o.client_order_id, "price": _s(o.price), "avgPrice": _s(avg),
               "origQty": _s(o.qty), "executedQty": _s(o.executed), "cumQty": _s(o.executed),
               "cumQuote": _s(o.cum_quote), "timeInForce": o.time_in_force, "type": o.type,
               "reduceOnly": False, "closePosition": False, "side": o.side, "positionSide": "BOTH",
               "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
               "origType": o.type, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
               "goodTillDate": 0, "updateTime": o.update_time}
        return out if created else {**out, "time": o.time}
