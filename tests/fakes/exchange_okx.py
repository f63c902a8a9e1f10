"""OKX (v5) on the loopback exchange: instruments, tickers, mark and index, funding, candles."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.exchange_hosts import OKX
from tests.fakes.exchange_recordings import HOUR_MS, OKX_REC, lot_size, tick_size

if TYPE_CHECKING:
    from tests.fakes.exchange_server import FakeExchange, FakeRequest


def _okx(data: list[dict]) -> dict:
    return {"code": "0", "msg": "", "data": data}


def _okx_bad_instrument() -> dict:
    return {"code": "51001", "msg": "Instrument ID does not exist", "data": []}


def register_okx(ex: FakeExchange) -> None:
    rec = ex.data
    recorded = {kind: rec.json(f"{OKX_REC}/http_get_instruments_{kind}.json")["data"]
                for kind in ("spot", "swap", "futures")}
    anchor = max(int(i["listTime"]) for i in recorded["futures"])
    mark = rec.json(f"{OKX_REC}/http_get_mark_price.json")["data"][0]
    index = rec.json(f"{OKX_REC}/http_get_index_price.json")["data"][0]
    funding = rec.json(f"{OKX_REC}/ws_funding_rate.json")["data"][0]
    history = rec.json(f"{OKX_REC}/http_get_funding_rate_history.json")["data"]
    ticker_template = rec.json(f"{OKX_REC}/ws_tickers.json")["data"][0]

    def instruments(kind: str) -> list[dict]:
        out = copy.deepcopy(recorded.get(kind, []))
        shift = ex.week_shift(anchor)
        for i in out:
            if i["expTime"]:
                i["expTime"] = str(int(i["expTime"]) + shift)
            if i["listTime"]:
                i["listTime"] = str(int(i["listTime"]) + shift)
        template = {"spot": out[0] if out else None,
                    "swap": next((i for i in out if i["instId"] == "BTC-USDT-SWAP"), None)}.get(kind)
        if template is None:
            return out
        have = {i["instId"] for i in out}
        for base, st in rec.perps.items():
            inst_id = f"{base}-USDT" if kind == "spot" else f"{base}-USDT-SWAP"
            if inst_id in have:
                continue
            i = copy.deepcopy(template)
            i.update(instId=inst_id, tickSz=tick_size(st.mark))
            if kind == "spot":
                i.update(baseCcy=base, quoteCcy="USDT", lotSz=lot_size(st.index), minSz=lot_size(st.index))
            else:
                # Contract value sized like BTC's (about a thousand dollars a contract).
                ct_val = Decimal(1).scaleb(round(math.log10(1000 / float(st.mark))))
                i.update(instFamily=f"{base}-USDT", uly=f"{base}-USDT", ctValCcy=base, ctVal=f"{ct_val:f}")
            out.append(i)
        return out

    @ex.route("GET", OKX, "/api/v5/public/instruments")
    async def public_instruments(req: FakeRequest) -> Any:
        kind = {"SPOT": "spot", "SWAP": "swap", "FUTURES": "futures"}.get(req.query.get("instType", ""))
        if not kind:
            return _okx([])
        return _okx(ex.cached(("okx", kind, ex.week_shift(anchor)), lambda: instruments(kind)))

    def base_of(inst_id: str) -> str | None:
        parts = inst_id.split("-")
        return parts[0] if len(parts) >= 2 and parts[0] in rec.perps else None

    @ex.route("GET", OKX, "/api/v5/market/ticker")
    async def market_ticker(req: FakeRequest) -> Any:
        inst_id = req.query.get("instId", "")
        base = base_of(inst_id)
        if base is None:
            return _okx_bad_instrument()
        parts = inst_id.split("-")
        st = rec.perps[base]
        if len(parts) == 3 and parts[2] != "SWAP":  # dated future: the snapshot's quarterly, if any
            near = [q for q in rec.quarterlies if q.startswith(f"{base}USDT_")]
            price = rec.quarterlies[min(near)][0] if near else st.mark
            inst_type = "FUTURES"
        elif len(parts) == 3:
            price, inst_type = (mark["markPx"] if base == "BTC" else st.mark), "SWAP"
        else:
            price, inst_type = (index["idxPx"] if base == "BTC" else st.index), "SPOT"
        t = dict(ticker_template)
        for k in ("last", "askPx", "bidPx", "open24h", "high24h", "low24h", "sodUtc0", "sodUtc8"):
            t[k] = price
        t.update(instId=inst_id, instType=inst_type, ts=str(ex.now_ms()))
        return _okx([t])

    @ex.route("GET", OKX, "/api/v5/public/mark-price")
    async def mark_price(req: FakeRequest) -> Any:
        inst_id = req.query.get("instId", "")
        base = base_of(inst_id)
        if base is None:
            return _okx_bad_instrument()
        px = mark["markPx"] if inst_id == mark["instId"] else rec.perps[base].mark
        return _okx([{**mark, "instId": inst_id, "markPx": px, "ts": str(ex.now_ms())}])

    @ex.route("GET", OKX, "/api/v5/market/index-tickers")
    async def index_tickers(req: FakeRequest) -> Any:
        inst_id = req.query.get("instId", "")
        base = base_of(inst_id)
        if base is None:
            return _okx_bad_instrument()
        px = index["idxPx"] if inst_id == index["instId"] else rec.perps[base].index
        return _okx([{**index, "instId": inst_id, "idxPx": px, "ts": str(ex.now_ms())}])

    @ex.route("GET", OKX, "/api/v5/public/funding-rate")
    async def funding_rate(req: FakeRequest) -> Any:
        inst_id = req.query.get("instId", "")
        base = base_of(inst_id)
        if base is None or not inst_id.endswith("-SWAP"):
            return _okx_bad_instrument()
        recorded_step = int(funding["nextFundingTime"]) - int(funding["fundingTime"])
        step = recorded_step if base == "BTC" else rec.perps[base].interval_h * HOUR_MS
        now = ex.now_ms()
        nxt = (now // step + 1) * step
        rate = funding["fundingRate"] if base == "BTC" else rec.perps[base].funding_rate
        return _okx([{**funding, "instType": "SWAP", "instId": inst_id, "fundingRate": rate,
                      "fundingTime": str(nxt), "nextFundingTime": str(nxt + step), "ts": str(now)}])

    @ex.route("GET", OKX, "/api/v5/public/funding-rate-history")
    async def funding_rate_history(req: FakeRequest) -> Any:
        inst_id = req.query.get("instId", "")
        base = base_of(inst_id)
        if base is None:
            return _okx_bad_instrument()
        step = rec.perps[base].interval_h * HOUR_MS
        if base == "BTC":
            last = ex.now_ms() // step * step
            rows = [(last - i * step, e["fundingRate"], e["realizedRate"]) for i, e in enumerate(history)]
        else:
            settled = ex.funding_history("binance", base, rec.perps[base].interval_h)
            rows = [(t, r, r) for t, r in settled][::-1]
        before = int(req.query.get("before", 0))
        rows = [r for r in rows if r[0] > before][: int(req.query.get("limit", 100))]
        return _okx([{"instType": "SWAP", "instId": inst_id, "fundingRate": r, "realizedRate": rr,
                      "fundingTime": str(t), "method": "current_period"} for t, r, rr in rows])

    async def candles(req: FakeRequest) -> Any:
        inst_id = req.query.get("instId", "")
        base = base_of(inst_id)
        if base is None:
            return _okx_bad_instrument()
        rows = ex.daily(base, int(mark["ts"]))[::-1]
        after = int(req.query.get("after", 2**62))
        before = int(req.query.get("before", 0))
        rows = [r for r in rows if before < r[0] < after][: int(req.query.get("limit", 100))]
        return _okx([[str(t), o, h, lo, c, v, "0", "0", "1"] for t, (o, h, lo, c, v) in rows])

    ex.route("GET", OKX, "/api/v5/market/candles")(candles)
    ex.route("GET", OKX, "/api/v5/market/history-candles")(candles)
