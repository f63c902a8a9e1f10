"""Account endpoints of the loopback Binance: balances, positions, trades, brackets, transfers.

A mixin of `OrderDesk` (tests/fakes/exchange_orders.py), which holds the state they read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.exchange_server import FakeExchange
    from tests.fakes.exchange_state import ExchangeState

Venue = Literal["spot", "usdm"]
ZERO = Decimal(0)


def _s(x: Decimal) -> str:
    return f"{x.normalize():f}" if x else "0"


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "msg": self.msg}, status=self.status)


class AccountEndpoints:
    """What an account asks of Binance besides orders; see the module docstring."""

    server: FakeExchange
    state: ExchangeState
    leverage: int

    def price(self, venue: Venue, symbol: str) -> Decimal:
        raise NotImplementedError

    def available_margin(self, asset: str = "USDT") -> Decimal:
        raise NotImplementedError

    async def _trades(self, venue: Venue, params: dict[str, str]) -> Any:
        """The account's trades in a symbol (optionally of one order), oldest first."""
        rows = []
        for o in self.state.orders.values():
            if o.venue != venue or o.symbol != params.get("symbol") or (
                    params.get("orderId") and str(o.order_id) != params["orderId"]):
                continue
            for f in o.fills:
                quote_qty = _s(Decimal(f["price"]) * Decimal(f["qty"]))
                common = {"symbol": o.symbol, "id": int(f["tradeId"]), "orderId": o.order_id,
                          "price": f["price"], "qty": f["qty"], "quoteQty": quote_qty,
                          "commission": f["commission"], "commissionAsset": f["commissionAsset"],
                          "time": int(f["time"])}
                if venue == "spot":  # /api/v3/myTrades
                    rows.append({**common, "orderListId": -1, "isBuyer": o.side == "BUY",
                                 "isMaker": False, "isBestMatch": True})
                else:  # /fapi/v1/userTrades, as recorded by nautilus
                    rows.append({**common, "side": o.side, "realizedPnl": "0", "marginAsset": "USDT",
                                 "positionSide": "BOTH", "buyer": o.side == "BUY", "maker": False})
        return sorted(rows, key=lambda r: r["id"])

    # ── balances and positions ───────────────────────────────────────────────────────────────────────────

    async def _spot_account(self, venue: Venue, params: dict[str, str]) -> Any:
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                    "seller": "0.00000000"},
                "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False,
                "updateTime": self.server.now_ms(), "accountType": "SPOT",
                "balances": [{"asset": a, "free": _s(f), "locked": _s(lk)}
                             for a, (f, lk) in sorted(self.state.spot.items())],
                "permissions": ["SPOT"], "uid": 365859102}

    def _position_rows(self) -> list[dict[str, Any]]:
        rows = []
        for symbol, (amount, entry) in sorted(self.state.positions.items()):
            mark = self.price("usdm", symbol)
            margin = abs(amount) * mark / self.leverage
            rows.append({"symbol": symbol, "positionSide": "BOTH", "positionAmt": _s(amount),
                         "entryPrice": _s(entry), "breakEvenPrice": _s(entry), "markPrice": _s(mark),
                         "unRealizedProfit": _s(amount * (mark - entry)), "liquidationPrice": "0",
                         "isolatedMargin": "0", "notional": _s(amount * mark), "marginAsset": "USDT",
                         "isolatedWallet": "0", "initialMargin": _s(margin), "maintMargin": _s(margin / 4),
                         "positionInitialMargin": _s(margin), "openOrderInitialMargin": "0", "adl": "1",
                         "bidNotional": "0", "askNotional": "0", "leverage": str(self.leverage),
                         "marginType": "cross", "isAutoAddMargin": "false", "maxNotionalValue": "20000000",
                         "updateTime": self.server.now_ms()})
        return rows

    async def _futures_account(self, venue: Venue, params: dict[str, str]) -> Any:
        rows = self._position_rows()
        unreal = sum((Decimal(r["unRealizedProfit"]) for r in rows), ZERO)
        assets = []
        for asset, balance in sorted(self.state.wallet.items()):
            avail = self.available_margin(asset)
            assets.append({"asset": asset, "walletBalance": _s(balance), "unrealizedProfit": _s(unreal),
                           "marginBalance": _s(balance + unreal), "maintMargin": "0", "initialMargin": "0",
                           "positionInitialMargin": "0", "openOrderInitialMargin": "0",
                           "maxWithdrawAmount": _s(avail), "crossWalletBalance": _s(balance),
                           "crossUnPnl": _s(unreal), "availableBalance": _s(avail), "marginAvailable": True,
                           "updateTime": self.server.now_ms()})
        usdt = self.state.wallet.get("USDT", ZERO)
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "tradeGroupId": -1, "updateTime": 0, "multiAssetsMargin": False,
                "totalInitialMargin": "0", "totalMaintMargin": "0", "totalWalletBalance": _s(usdt),
                "totalUnrealizedProfit": _s(unreal), "totalMarginBalance": _s(usdt + unreal),
                "totalPositionInitialMargin": "0", "totalOpenOrderInitialMargin": "0",
                "totalCrossWalletBalance": _s(usdt), "totalCrossUnPnl": _s(unreal),
                "availableBalance": _s(self.available_margin()),
                "maxWithdrawAmount": _s(self.available_margin()),
                "assets": assets, "positions": rows}

    async def _position_risk(self, venue: Venue, params: dict[str, str]) -> Any:
        rows = self._position_rows()
        return [r for r in rows if "symbol" not in params or r["symbol"] == params["symbol"]]

    async def _brackets(self, venue: Venue, params: dict[str, str]) -> Any:
        # Binance's documented format; no recording exists. One bracket per symbol is enough here.
        symbols = [params["symbol"]] if "symbol" in params else [f"{b}USDT" for b in self.server.data.perps]
        return [{"symbol": s, "notionalCoef": 1.0, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0.0}]} for s in symbols]

    async def _transfer(self, venue: Venue, params: dict[str, str]) -> Any:
        asset, amount, kind = params["asset"], Decimal(params["amount"]), params["type"]
        if kind == "MAIN_UMFUTURE":
            if self.state.free(asset) < amount:
                raise BinanceError(-5002, "You have insufficient balance.")
            self.state.move_spot(asset, -amount)
            self.state.wallet[asset] = self.state.wallet.get(asset, ZERO) + amount
        elif kind == "UMFUTURE_MAIN":
            if self.available_margin(asset) < amount:
                raise BinanceError(-5002, "You have insufficient balance.")
            self.state.wallet[asset] -= amount
            self.state.move_spot(asset, amount)
        else:
            raise BinanceError(-1102, f"Mandatory parameter 'type' was not sent or has a bad value: {kind}")
        tran_id = next(self.state.ids)
        self.state.transfers.append({"type": kind, "asset": asset, "amount": _s(amount),
                                     "tranId": str(tran_id)})
        return {"tranId": tran_id}
