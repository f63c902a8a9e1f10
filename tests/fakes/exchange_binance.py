"""Binance on the loopback exchange: spot and USDⓈ-M market data, in Binance's own formats.

Market lists, 24h tickers, premium index, funding info and history, klines; the signed lists ccxt
loads with API keys answer empty. Orders and accounts are `tests/fakes/exchange_orders.py`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.exchange_hosts import BINANCE_DAPI, BINANCE_FAPI, BINANCE_SPOT
from tests.fakes.exchange_recordings import BINANCE_REC, CCXT_REC, DAY_MS, lot_size, tick_size

if TYPE_CHECKING:
    from tests.fakes.exchange_server import FakeExchange, FakeRequest


# ── Binance ─────────────────────────────────────────────────────────────────────────────────


def _binance_bad_symbol() -> web.Response:
    return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)


def _clone_filters(entry: dict, price: str) -> None:
    for f in entry.get("filters", []):
        if f["filterType"] == "PRICE_FILTER":
            f["tickSize"] = tick_size(price)
        elif f["filterType"] in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            f["stepSize"] = f["minQty"] = lot_size(price)


def register_binance(ex: FakeExchange) -> None:
    rec = ex.data
    spot_info = rec.json(f"{BINANCE_REC}/http_spot_market_exchange_info.json")
    fut_info = rec.json(f"{BINANCE_REC}/http_futures_market_exchange_info.json")
    ccxt_binance = rec.json(f"{CCXT_REC}/binance.json")["methods"]
    spot_ticker = ccxt_binance["fetchTicker"][0]["httpResponse"]
    fut_ticker = rec.json(f"{BINANCE_REC}/http_futures_market_ticker_24hr.json")
    quarter_template = next(s for s in fut_info["symbols"] if s["contractType"] != "PERPETUAL")

    def spot_market_list() -> dict:
        info = copy.deepcopy(spot_info)
        template = info["symbols"][0]
        have = {s["baseAsset"] for s in info["symbols"]}
        for base, st in rec.perps.items():
            if base not in have:
                s = copy.deepcopy(template)
                s.update(symbol=f"{base}USDT", baseAsset=base)
                _clone_filters(s, st.index)
                info["symbols"].append(s)
        return info

    def futures_market_list() -> dict:
        info = copy.deepcopy(fut_info)
        shift = ex.week_shift(rec.anchor_ms)
        template = info["symbols"][0]
        have = {s["symbol"] for s in info["symbols"]}
        for base, st in rec.perps.items():
            if f"{base}USDT" not in have:
                s = copy.deepcopy(template)
                s.update(symbol=f"{base}USDT", pair=f"{base}USDT", baseAsset=base)
                _clone_filters(s, st.mark)
                info["symbols"].append(s)
        for sym, (mark, delivery) in rec.quarterlies.items():
            if sym.endswith("USDT") or sym in have or not sym.split("_")[0].endswith("USDT"):
                continue
            pair = sym.split("_")[0]
            s = copy.deepcopy(quarter_template)
            s.update(symbol=sym, pair=pair, baseAsset=pair[:-4], deliveryDate=delivery)
            _clone_filters(s, mark)
            info["symbols"].append(s)
        for s in info["symbols"]:
            if s["contractType"] != "PERPETUAL":
                # The recorded quarterly keeps its distance to expiry from its own recording time.
                anchor = fut_info["serverTime"] if s["symbol"] in have else rec.anchor_ms
                s["deliveryDate"] = s["deliveryDate"] + ex.week_shift(anchor)
                s["onboardDate"] = s["onboardDate"] + shift
        return info

    def mark_of(sym: str) -> tuple[str, str] | None:
        """(mark, index) of a futures id, perpetual or dated."""
        if sym in rec.quarterlies:
            base = sym.split("_")[0][:-4]
            mark = rec.quarterlies[sym][0]
            return mark, rec.perps[base].index if base in rec.perps else mark
        if sym == quarter_template["symbol"]:
            # Not in the snapshot: priced as the snapshot's nearest BTC quarterly.
            near = min(k for k in rec.quarterlies if k.startswith("BTCUSDT_"))
            return rec.quarterlies[near][0], rec.perps["BTC"].index
        st = rec.perps.get(sym[:-4]) if sym.endswith("USDT") else None
        return (st.mark, st.index) if st else None

    def premium_entry(sym: str) -> dict | None:
        st = rec.perps.get(sym[:-4]) if sym.endswith("USDT") else None
        prices = mark_of(sym)
        if prices is None:
            return None
        return {
            "symbol": sym, "markPrice": prices[0], "indexPrice": prices[1],
            "estimatedSettlePrice": prices[1],
            "lastFundingRate": st.funding_rate if st else "0.00000000",
            "interestRate": "0.00010000" if st else "0.00000000",
            "nextFundingTime": ex.next_funding_ms(st.interval_h) if st else 0,
            "time": ex.now_ms(),
        }

    @ex.route("GET", BINANCE_SPOT, "/api/v3/exchangeInfo")
    async def spot_exchange_info(req: FakeRequest) -> Any:
        return {**ex.cached(("binance spot", ex.week_shift(rec.anchor_ms)), spot_market_list),
                "serverTime": ex.now_ms()}

    @ex.route("GET", BINANCE_FAPI, "/fapi/v1/exchangeInfo")
    async def fapi_exchange_info(req: FakeRequest) -> Any:
        shifts = (ex.week_shift(rec.anchor_ms), ex.week_shift(fut_info["serverTime"]))
        return {**ex.cached(("binance usdm", *shifts), futures_market_list),
                "serverTime": ex.now_ms()}

    @ex.route("GET", BINANCE_DAPI, "/dapi/v1/exchangeInfo")
    async def dapi_exchange_info(req: FakeRequest) -> Any:
        # No COIN-M list was ever recorded: the USDⓈ-M envelope with no symbols.
        return {**{k: v for k, v in fut_info.items() if k != "symbols"}, "futuresType": "COIN_MARGINED",
                "serverTime": ex.now_ms(), "symbols": []}

    def ticker(template: dict, sym: str, price: str) -> dict:
        t = dict(template)
        now = ex.now_ms()
        for k in ("lastPrice", "bidPrice", "askPrice", "openPrice", "highPrice", "lowPrice",
                  "weightedAvgPrice", "prevClosePrice"):
            if k in t:
                t[k] = price
        t.update(symbol=sym, priceChange="0", priceChangePercent="0", openTime=now - DAY_MS, closeTime=now)
        return t

    @ex.route("GET", BINANCE_SPOT, "/api/v3/ticker/24hr")
    async def spot_24hr(req: FakeRequest) -> Any:
        sym = req.query.get("symbol", "")
        st = rec.perps.get(sym[:-4]) if sym.endswith("USDT") else None
        return ticker(spot_ticker, sym, st.index) if st else _binance_bad_symbol()

    @ex.route("GET", BINANCE_FAPI, "/fapi/v1/ticker/24hr")
    async def fapi_24hr(req: FakeRequest) -> Any:
        sym = req.query.get("symbol", "")
        prices = mark_of(sym)
        return ticker(fut_ticker, sym, prices[0]) if prices else _binance_bad_symbol()

    @ex.route("GET", BINANCE_FAPI, "/fapi/v1/premiumIndex")
    async def premium_index(req: FakeRequest) -> Any:
        sym = req.query.get("symbol")
        if sym is None:
            entries = [premium_entry(f"{b}USDT") for b in rec.perps]
            return entries + [premium_entry(q) for q in rec.quarterlies]
        entry = premium_entry(sym)
        return entry if entry else _binance_bad_symbol()

    @ex.route("GET", BINANCE_FAPI, "/fapi/v1/fundingInfo")
    async def funding_info(req: FakeRequest) -> Any:
        # Binance lists only symbols whose interval or caps were adjusted (documented format).
        return [
            {"symbol": f"{b}USDT", "adjustedFundingRateCap": "0.02000000",
             "adjustedFundingRateFloor": "-0.02000000", "fundingIntervalHours": st.interval_h,
             "disclaimer": False}
            for b, st in rec.perps.items() if st.interval_h != 8
        ]

    @ex.route("GET", BINANCE_FAPI, "/fapi/v1/fundingRate")
    async def funding_rate(req: FakeRequest) -> Any:
        sym = req.query.get("symbol", "")
        st = rec.perps.get(sym[:-4]) if sym.endswith("USDT") else None
        if st is None:
            return _binance_bad_symbol()
        rows = ex.funding_history("binance", sym[:-4], st.interval_h)
        start, end = int(req.query.get("startTime", 0)), int(req.query.get("endTime", 2**62))
        limit = min(int(req.query.get("limit", 100)), 1000)
        rows = [r for r in rows if start <= r[0] <= end]
        rows = rows[:limit] if "startTime" in req.query else rows[-limit:]
        return [{"symbol": sym, "fundingRate": r, "fundingTime": t, "markPrice": st.mark} for t, r in rows]

    async def klines(req: FakeRequest) -> Any:
        sym = req.query.get("symbol", "")
        base = sym.split("_")[0][:-4]
        if base not in rec.perps:
            return _binance_bad_symbol()
        rows = ex.daily(base, rec.anchor_ms)
        start, end = int(req.query.get("startTime", 0)), int(req.query.get("endTime", 2**62))
        limit = min(int(req.query.get("limit", 500)), 1000)
        rows = [r for r in rows if start <= r[0] <= end]
        rows = rows[:limit] if "startTime" in req.query else rows[-limit:]
        # Binance's kline row; quote volume and trade counts are not in the daily series.
        return [[t, o, h, lo, c, v, t + DAY_MS - 1, "0", 0, "0", "0", "0"] for t, (o, h, lo, c, v) in rows]

    ex.route("GET", BINANCE_SPOT, "/api/v3/klines")(klines)
    ex.route("GET", BINANCE_FAPI, "/fapi/v1/klines")(klines)

    async def nothing_recorded(req: FakeRequest) -> Any:
        # With API keys ccxt also loads these signed lists; none was recorded, so: empty lists.
        return []

    ex.route("GET", BINANCE_SPOT, "/sapi/v1/capital/config/getall")(nothing_recorded)
    ex.route("GET", BINANCE_SPOT, "/sapi/v1/margin/allPairs")(nothing_recorded)
    ex.route("GET", BINANCE_SPOT, "/sapi/v1/margin/isolated/allPairs")(nothing_recorded)

