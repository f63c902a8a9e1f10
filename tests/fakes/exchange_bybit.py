"""Bybit (v5) on the loopback exchange: instruments, tickers, funding history, klines, time."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.fakes.exchange_hosts import BYBIT
from tests.fakes.exchange_recordings import BYBIT_REC, CCXT_REC, HOUR_MS, lot_size, tick_size

if TYPE_CHECKING:
    from tests.fakes.exchange_server import FakeExchange, FakeRequest




def _bybit_bad_symbol(now: int) -> dict:
    return {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {},
            "retExtInfo": {}, "time": now}


def _bybit_envelope(result: Any, now: int) -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now}


def _bybit_bad_symbol(now: int) -> dict:
    return {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {},
            "retExtInfo": {}, "time": now}


def register_bybit(ex: FakeExchange) -> None:
    rec = ex.data
    spot = rec.json(f"{BYBIT_REC}/http_get_instruments_spot.json")
    linear = rec.json(f"{BYBIT_REC}/http_get_instruments_linear.json")
    recorded = next(e for e in rec.json(f"{CCXT_REC}/bybit.json")["methods"]["fetchFundingRate"])
    recorded_ticker = recorded["httpResponse"]["result"]["list"][0]
    anchor = int(recorded["httpResponse"]["time"])
    funding_hist = rec.json(f"{BYBIT_REC}/http_get_funding_history.json")

    def markets(category: str) -> list[dict]:
        if category not in ("spot", "linear"):
            return []
        source = spot if category == "spot" else linear
        out = copy.deepcopy(source["result"]["list"])
        have = {m["baseCoin"] for m in out}
        for m in out:
            if category == "linear":
                # nautilus's fixture states hours; Bybit's v5 API states minutes (480).
                m["fundingInterval"] = rec.perps[m["baseCoin"]].interval_h * 60
        for base, st in rec.perps.items():
            if base in have:
                continue
            m = copy.deepcopy(source["result"]["list"][0])
            m.update(symbol=f"{base}USDT", baseCoin=base)
            m["priceFilter"]["tickSize"] = tick_size(st.mark)
            if category == "linear":
                m["fundingInterval"] = st.interval_h * 60
                m["lotSizeFilter"].update(qtyStep=lot_size(st.mark), minOrderQty=lot_size(st.mark))
            else:
                m["lotSizeFilter"].update(basePrecision=lot_size(st.index), minOrderQty=lot_size(st.index))
            out.append(m)
        return out

    @ex.route("GET", BYBIT, "/v5/market/instruments-info")
    async def instruments(req: FakeRequest) -> Any:
        category = req.query.get("category", "spot")
        listed = ex.cached(("bybit", category), lambda: markets(category))
        return _bybit_envelope({"category": category, "nextPageCursor": "", "list": listed},
                               ex.now_ms())

    def perp_ticker(base: str) -> dict:
        st = rec.perps[base]
        t = dict(recorded_ticker)
        if base != "BTC":
            for k in ("lastPrice", "markPrice", "prevPrice24h", "highPrice24h", "lowPrice24h",
                      "prevPrice1h", "bid1Price", "ask1Price"):
                t[k] = st.mark
            t.update(indexPrice=st.index, fundingRate=st.funding_rate)
        t.update(symbol=f"{base}USDT", nextFundingTime=str(ex.next_funding_ms(st.interval_h)))
        t.pop("timestamp", None)
        return t

    @ex.route("GET", BYBIT, "/v5/market/tickers")
    async def tickers(req: FakeRequest) -> Any:
        category = req.query.get("category", "linear")
        sym = req.query.get("symbol", "")
        bases = [sym[:-4]] if sym else list(rec.perps)
        if any(b not in rec.perps for b in bases) or (sym and not sym.endswith("USDT")):
            return _bybit_bad_symbol(ex.now_ms())
        rows = [perp_ticker(b) for b in bases]
        if category == "spot":
            # No spot ticker was recorded: the linear one, priced at its own index.
            rows = [{k: r[k] for k in ("symbol", "prevPrice24h", "price24hPcnt", "highPrice24h",
                                       "lowPrice24h", "turnover24h", "volume24h")}
                    | {"lastPrice": r["indexPrice"], "bid1Price": r["indexPrice"],
                       "ask1Price": r["indexPrice"], "usdIndexPrice": r["indexPrice"]} for r in rows]
        return _bybit_envelope({"category": category, "list": rows}, ex.now_ms())

    @ex.route("GET", BYBIT, "/v5/market/funding/history")
    async def funding_history(req: FakeRequest) -> Any:
        sym = req.query.get("symbol", "")
        base = sym[:-4]
        if base not in rec.perps:
            return _bybit_bad_symbol(ex.now_ms())
        rows = ex.funding_history("bybit", base, rec.perps[base].interval_h)
        if base == "BTC" and not rec.funding.get(("bybit", "BTC")):
            # nautilus's two recorded prints (newest first), moved to the latest settlements.
            step = rec.perps[base].interval_h * HOUR_MS
            last = ex.now_ms() // step * step
            recorded_rows = funding_hist["result"]["list"]
            rows = [(last - i * step, e["fundingRate"]) for i, e in enumerate(recorded_rows)][::-1]
        start, end = int(req.query.get("startTime", 0)), int(req.query.get("endTime", 2**62))
        rows = [r for r in rows if start <= r[0] <= end][::-1][: int(req.query.get("limit", 200))]
        return _bybit_envelope({"category": "linear", "list": [
            {"symbol": sym, "fundingRate": r, "fundingRateTimestamp": str(t)} for t, r in rows]},
            ex.now_ms())

    @ex.route("GET", BYBIT, "/v5/market/kline")
    async def kline(req: FakeRequest) -> Any:
        sym = req.query.get("symbol", "")
        rows = ex.daily(sym[:-4], anchor)
        start, end = int(req.query.get("start", 0)), int(req.query.get("end", 2**62))
        rows = [r for r in rows if start <= r[0] <= end][::-1][: int(req.query.get("limit", 200))]
        return _bybit_envelope({"category": req.query.get("category"), "symbol": sym, "list": [
            [str(t), o, h, lo, c, v, "0"] for t, (o, h, lo, c, v) in rows]}, ex.now_ms())

    @ex.route("GET", BYBIT, "/v5/market/time")
    async def server_time(req: FakeRequest) -> Any:
        now = ex.now_ms()
        return _bybit_envelope({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}, now)
