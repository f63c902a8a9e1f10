"""A loopback exchange: Binance (spot + USDⓈ-M), Bybit and OKX on 127.0.0.1, serving recorded payloads.

Point a ccxt client at it with `ExchangeConfig.urls = {"*": server.prefix}`: every API URL becomes
`PREFIX/<original host>/<path>`, so requests are routed by (method, original host, path).

What is served, and from where (all under `$PREMIA_SHARED_DATA/raw`, see `data/SOURCES.md`):
- market lists: nautilus_trader's recorded Binance spot/futures `exchangeInfo` (with the quarterly
  `BTCUSDT_220325`), Bybit `instruments-info` and OKX `instruments`, each extended in code with
  clones of a recorded entry for every USDT perpetual in the Binance full-market `premiumIndex`
  snapshot (danghungithp, 2025-06-17), tick and lot sizes scaled to the price;
- prices and funding: that snapshot, overridden where an exchange's own recording exists (Bybit's
  BTCUSDT ticker from ccxt's static tests, OKX's BTC mark/index/funding from nautilus). The OKX
  recordings are weeks apart, so OKX BTC's mark and index disagree by design of the data;
- funding intervals: implied by the snapshot's `nextFundingTime` (e.g. WIFUSDT is 4h); Binance's
  `fundingInfo` (never recorded) is synthesized in Binance's documented format from them;
- settled funding and daily candles: `derived/` series (real rates and closes) moved onto a grid
  that ends now; recorded calendar fields (delivery, listing) move by whole weeks so weekdays and
  hours stay; snapshot times (`time`, `ts`, `closeTime`) become the time of the request.

Tests inject faults per route (`fail`, `delay`, `malformed`, `binance_error`), add latency, and
read `requests`. Other endpoints (orders, balances, positions) are added by registering a handler
for (method, host, path) with `@server.route("POST", BINANCE_SPOT, "/api/v3/order")`; the handler
gets a `FakeRequest` (`params()` merges query and body) and returns JSON-able data or a
`web.Response`. Run alone (`python -m tests.fakes.exchange_server [latency_s]`) it prints its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

BINANCE_SPOT = "api.binance.com"
BINANCE_FAPI = "fapi.binance.com"
BINANCE_DAPI = "dapi.binance.com"
BYBIT = "api.bybit.com"
OKX = "www.okx.com"

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

_NAUTILUS = "raw/nautechsystems__nautilus_trader"
_BINANCE_REC = f"{_NAUTILUS}/tests/integration_tests/adapters/binance/resources/http_responses"
_BYBIT_REC = f"{_NAUTILUS}/crates/adapters/bybit/test_data"
_OKX_REC = f"{_NAUTILUS}/crates/adapters/okx/test_data"
_CCXT_REC = "raw/ccxt__ccxt/ts/src/test/static/response_excerpts"
_PREMIUM_INDEX = "raw/danghungithp__funding-rate-binance-bot/premiumIndex.json"


class SharedDataMissing(RuntimeError):
    """The recorded payloads (`$PREMIA_SHARED_DATA`) are not on this machine."""


def shared_data_dir() -> Path:
    """$PREMIA_SHARED_DATA, else `<repo>/../shared/data`; raise SharedDataMissing when absent."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    path = Path(os.environ.get("PREMIA_SHARED_DATA", default))
    if not (path / _PREMIUM_INDEX).is_file() or not (path / "derived").is_dir():
        raise SharedDataMissing(f"recorded exchange payloads not found under {path}; set PREMIA_SHARED_DATA")
    return path


# ── the recorded data, loaded once per process ──────────────────────────────────────────────


@dataclass(frozen=True)
class PerpState:
    """One USDT perpetual as the Binance snapshot saw it."""

    mark: str
    index: str
    funding_rate: str
    interval_h: int


@dataclass
class Recordings:
    root: Path
    anchor_ms: int  # the time the full-market snapshot was taken
    perps: dict[str, PerpState]  # by base asset
    quarterlies: dict[str, tuple[str, int]]  # snapshot id → (mark, delivery ms)
    funding: dict[tuple[str, str], list[str]]  # (exchange, base) → settled rates, oldest first
    closes: dict[str, list[tuple[date, list[str]]]]  # base → daily [o, h, l, c, v], oldest first

    def json(self, rel: str) -> Any:
        return _load_json(self.root / rel)


@cache
def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _implied_interval_h(time_ms: int, next_ms: int) -> int:
    """The funding interval that puts the next settlement where the snapshot says it is."""
    for hours in (1, 2, 4, 8):
        step = hours * HOUR_MS
        if (time_ms // step + 1) * step == next_ms:
            return hours
    return 8


@cache
def load_recordings(root: Path) -> Recordings:
    snapshot = _load_json(root / _PREMIUM_INDEX)
    anchor = max(int(e["time"]) for e in snapshot)
    perps: dict[str, PerpState] = {}
    quarterlies: dict[str, tuple[str, int]] = {}
    for e in snapshot:
        sym = e["symbol"]
        if "_" in sym:
            expiry = datetime.strptime(sym.split("_")[1], "%y%m%d").replace(hour=8, tzinfo=UTC)
            quarterlies[sym] = (e["markPrice"], int(expiry.timestamp() * 1000))
        elif sym.endswith("USDT") and int(e["nextFundingTime"]):
            interval = _implied_interval_h(int(e["time"]), int(e["nextFundingTime"]))
            perps[sym[:-4]] = PerpState(e["markPrice"], e["indexPrice"], e["lastFundingRate"], interval)
    funding: dict[tuple[str, str], list[str]] = defaultdict(list)
    with (root / "derived/funding_rates_clean.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["exchange"] in ("binance", "bybit") and row["symbol"].endswith("/USDT:USDT"):
                funding[(row["exchange"], row["symbol"].split("/")[0])].append(row["funding_rate"])
    closes: dict[str, list[tuple[date, list[str]]]] = defaultdict(list)
    with (root / "derived/prices_daily_clean.csv").open() as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["timestamp_utc"][:10])
            ohlcv = [row[k] for k in ("open", "high", "low", "close", "volume_base")]
            closes[row["symbol"].split("/")[0]].append((day, ohlcv))
    return Recordings(
        root, anchor, perps, quarterlies,
        {k: [f"{Decimal(r):.8f}" for r in v[-1000:]] for k, v in funding.items()},
        {k: sorted(v) for k, v in closes.items()},
    )


def _power_of_ten(exp: int) -> str:
    return f"{Decimal(1).scaleb(exp):f}"


def _tick(price: str) -> str:
    """Price tick for a cloned market: about 5 significant digits, never coarser than 0.01."""
    return _power_of_ten(min(-2, math.floor(math.log10(float(price))) - 4))


def _lot(price: str) -> str:
    """Quantity step for a cloned market: one step is worth between 0.1 and 1 quote units."""
    return _power_of_ten(-(math.floor(math.log10(float(price))) + 1))


# ── requests, faults, routes ────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    host: str
    path: str
    query: dict[str, str]
    started: float  # time.monotonic()
    finished: float | None = None


@dataclass
class FakeRequest:
    """What a route handler sees."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    body: str
    headers: dict[str, str]
    server: FakeExchange

    def params(self) -> dict[str, str]:
        """Query and body parameters together (url-encoded or JSON), as order endpoints need."""
        body: dict[str, str] = {}
        if self.body.lstrip().startswith("{"):
            body = {k: str(v) for k, v in json.loads(self.body).items()}
        elif self.body:
            body = dict(parse_qsl(self.body, keep_blank_values=True))
        return {**self.query, **body}


@dataclass
class Fault:
    """A scripted failure for requests matching (method, host, path) and the query subset."""

    kind: str  # "status" | "delay" | "malformed" | "binance_error"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    times: int | None = None  # None: every matching request
    query: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, query: dict[str, str]) -> bool:
        live = self.times is None or self.hits < self.times
        return live and all(query.get(k) == v for k, v in self.query.items())


Handler = Callable[[FakeRequest], Awaitable[Any]]
_LISTS: dict[tuple, Any] = {}  # market lists by (data root, exchange, kind, week shift)
Route = tuple[str, str, str]


class FakeExchange:
    """The loopback server. `async with FakeExchange() as ex:` then use `ex.prefix`."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        latency_s: float = 0.0,
    ) -> None:
        self.data = load_recordings(data_dir or shared_data_dir())
        self.clock = clock
        self.latency_s = latency_s
        self.routes: dict[Route, Handler] = {}
        self.faults: dict[Route, list[Fault]] = defaultdict(list)
        self.requests: list[RecordedRequest] = []
        self.unmatched: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # ends injected delays at once when the server closes
        self.port = 0
        _register_binance(self)
        _register_bybit(self)
        _register_okx(self)

    # lifecycle
    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{host}/{path:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.prefix

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless the server is closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def __aenter__(self) -> FakeExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def prefix(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # routes and faults
    def route(self, method: str, host: str, path: str) -> Callable[[Handler], Handler]:
        """Decorator registering a handler; it returns JSON-able data or a `web.Response`."""

        def register(handler: Handler) -> Handler:
            self.routes[(method.upper(), host, path)] = handler
            return handler

        return register

    def inject(self, host: str, path: str, fault: Fault, method: str = "GET") -> Fault:
        self.faults[(method.upper(), host, path)].append(fault)
        return fault

    def fail(self, host: str, path: str, status: int, *, times: int | None = None,
             retry_after: int | None = None, query: dict[str, str] | None = None) -> Fault:
        """Answer with an HTTP error status (429 carries Retry-After when given)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"code": -1003, "msg": "Too many requests."} if status == 429 else None
        return self.inject(host, path, Fault("status", status, body, headers, times=times,
                                             query=query or {}))

    def delay(self, host: str, path: str, seconds: float, *, times: int | None = None,
              query: dict[str, str] | None = None) -> Fault:
        return self.inject(host, path, Fault("delay", delay_s=seconds, times=times, query=query or {}))

    def malformed(self, host: str, path: str, *, times: int | None = None,
                  query: dict[str, str] | None = None) -> Fault:
        return self.inject(host, path, Fault("malformed", 200, times=times, query=query or {}))

    def binance_error(self, host: str, path: str, code: int = -1121, msg: str = "Invalid symbol.",
                      *, times: int | None = None, query: dict[str, str] | None = None) -> Fault:
        return self.inject(host, path, Fault("binance_error", 400, {"code": code, "msg": msg},
                                             times=times, query=query or {}))

    def clear_faults(self) -> None:
        self.faults.clear()

    def requests_to(self, host: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests
                if (host is None or r.host == host) and (path is None or r.path == path)]

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """Market lists are big and change weekly at most: built once a process (never mutated)."""
        full = (self.data.root, *key)
        if full not in _LISTS:
            _LISTS[full] = build()
        return _LISTS[full]

    # time
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def week_shift(self, anchor_ms: int) -> int:
        """Whole weeks from a recording's moment to now: keeps weekdays and hours of day."""
        return (self.now_ms() - anchor_ms) // WEEK_MS * WEEK_MS

    def funding_history(self, exchange: str, base: str, interval_h: int) -> list[tuple[int, str]]:
        """Settled (time ms, rate) oldest first, on this symbol's grid, the last one at or before now."""
        rates = self.data.funding.get((exchange, base)) or self.data.funding.get(("binance", base), [])
        step = interval_h * HOUR_MS
        last = self.now_ms() // step * step
        return [(last - (len(rates) - 1 - i) * step, r) for i, r in enumerate(rates)]

    def daily(self, base: str, anchor_ms: int) -> list[tuple[int, list[str]]]:
        """Daily candles up to the recording's day, moved so that day is today (open ms, ohlcv)."""
        anchor_day = datetime.fromtimestamp(anchor_ms / 1000, UTC).date()
        today = datetime.fromtimestamp(self.now_ms() / 1000, UTC).date()
        rows = [(d, v) for d, v in self.data.closes.get(base, []) if d <= anchor_day][-1000:]
        out = []
        for day, ohlcv in rows:
            moved = today - timedelta(days=(anchor_day - day).days)
            midnight = datetime(moved.year, moved.month, moved.day, tzinfo=UTC)
            out.append((int(midnight.timestamp() * 1000), ohlcv))
        return out

    def next_funding_ms(self, interval_h: int) -> int:
        step = interval_h * HOUR_MS
        return (self.now_ms() // step + 1) * step

    # dispatch
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.match_info["host"]
        path = "/" + request.match_info["path"]
        query = dict(request.query)
        started = time.monotonic()
        record = RecordedRequest(request.method, host, path, query, started)
        index = len(self.requests)
        self.requests.append(record)
        try:
            if self.latency_s:
                await self.sleep(self.latency_s)
            key = (request.method, host, path)
            for fault in self.faults.get(key, []):
                if fault.matches(query):
                    fault.hits += 1
                    early = await self._apply(fault)
                    if early is not None:
                        return early
                    break
            handler = self.routes.get(key)
            if handler is None:
                self.unmatched.append(record)
                return web.json_response({"error": f"no fake route for {request.method} {host}{path}"},
                                         status=404)
            body = await request.text()
            result = await handler(FakeRequest(request.method, host, path, query, body,
                                               dict(request.headers), self))
            if isinstance(result, web.StreamResponse):
                return result
            return web.json_response(result)
        finally:
            self.requests[index] = RecordedRequest(request.method, host, path, query, started,
                                                   time.monotonic())

    async def _apply(self, fault: Fault) -> web.Response | None:
        if fault.kind == "delay":
            await self.sleep(fault.delay_s)
            return None
        if fault.kind == "malformed":
            return web.Response(text='{"symbol": "BTCUSDT", "markPrice": "1065', status=200,
                                content_type="application/json")
        body = json.dumps(fault.body) if fault.body is not None else "Service Unavailable"
        content_type = "application/json" if fault.body is not None else "text/plain"
        return web.Response(text=body, status=fault.status, headers=fault.headers,
                            content_type=content_type)


# ── Binance ─────────────────────────────────────────────────────────────────────────────────


def _binance_bad_symbol() -> web.Response:
    return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)


def _clone_filters(entry: dict, price: str) -> None:
    for f in entry.get("filters", []):
        if f["filterType"] == "PRICE_FILTER":
            f["tickSize"] = _tick(price)
        elif f["filterType"] in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            f["stepSize"] = f["minQty"] = _lot(price)


def _register_binance(ex: FakeExchange) -> None:
    rec = ex.data
    spot_info = rec.json(f"{_BINANCE_REC}/http_spot_market_exchange_info.json")
    fut_info = rec.json(f"{_BINANCE_REC}/http_futures_market_exchange_info.json")
    ccxt_binance = rec.json(f"{_CCXT_REC}/binance.json")["methods"]
    spot_ticker = ccxt_binance["fetchTicker"][0]["httpResponse"]
    fut_ticker = rec.json(f"{_BINANCE_REC}/http_futures_market_ticker_24hr.json")
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


# ── Bybit (v5) ──────────────────────────────────────────────────────────────────────────────


def _bybit_envelope(result: Any, now: int) -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now}


def _bybit_bad_symbol(now: int) -> dict:
    return {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {},
            "retExtInfo": {}, "time": now}


def _register_bybit(ex: FakeExchange) -> None:
    rec = ex.data
    spot = rec.json(f"{_BYBIT_REC}/http_get_instruments_spot.json")
    linear = rec.json(f"{_BYBIT_REC}/http_get_instruments_linear.json")
    recorded = next(e for e in rec.json(f"{_CCXT_REC}/bybit.json")["methods"]["fetchFundingRate"])
    recorded_ticker = recorded["httpResponse"]["result"]["list"][0]
    anchor = int(recorded["httpResponse"]["time"])
    funding_hist = rec.json(f"{_BYBIT_REC}/http_get_funding_history.json")

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
            m["priceFilter"]["tickSize"] = _tick(st.mark)
            if category == "linear":
                m["fundingInterval"] = st.interval_h * 60
                m["lotSizeFilter"].update(qtyStep=_lot(st.mark), minOrderQty=_lot(st.mark))
            else:
                m["lotSizeFilter"].update(basePrecision=_lot(st.index), minOrderQty=_lot(st.index))
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


# ── OKX (v5) ────────────────────────────────────────────────────────────────────────────────


def _okx(data: list[dict]) -> dict:
    return {"code": "0", "msg": "", "data": data}


def _okx_bad_instrument() -> dict:
    return {"code": "51001", "msg": "Instrument ID does not exist", "data": []}


def _register_okx(ex: FakeExchange) -> None:
    rec = ex.data
    recorded = {kind: rec.json(f"{_OKX_REC}/http_get_instruments_{kind}.json")["data"]
                for kind in ("spot", "swap", "futures")}
    anchor = max(int(i["listTime"]) for i in recorded["futures"])
    mark = rec.json(f"{_OKX_REC}/http_get_mark_price.json")["data"][0]
    index = rec.json(f"{_OKX_REC}/http_get_index_price.json")["data"][0]
    funding = rec.json(f"{_OKX_REC}/ws_funding_rate.json")["data"][0]
    history = rec.json(f"{_OKX_REC}/http_get_funding_rate_history.json")["data"]
    ticker_template = rec.json(f"{_OKX_REC}/ws_tickers.json")["data"][0]

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
            i.update(instId=inst_id, tickSz=_tick(st.mark))
            if kind == "spot":
                i.update(baseCcy=base, quoteCcy="USDT", lotSz=_lot(st.index), minSz=_lot(st.index))
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


# ── as a process of its own (the benchmarks keep it off the measured event loop) ───────────


async def _serve_forever(latency_s: float) -> None:
    async with FakeExchange(latency_s=latency_s) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    asyncio.run(_serve_forever(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
