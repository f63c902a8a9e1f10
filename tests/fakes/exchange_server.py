"""A loopback exchange: Binance (spot + USDⓈ-M), Bybit and OKX on 127.0.0.1, serving recorded payloads.

Point a ccxt client at it with `ExchangeConfig.urls = {"*": server.prefix}`: every API URL becomes
`PREFIX/<original host>/<path>`, so requests are routed by (method, original host, path); the
hosts are in `tests/fakes/exchange_hosts.py`.

What is served, and from where: `tests/fakes/exchange_recordings.py`; the routes of each exchange:
`exchange_binance.py`, `exchange_bybit.py`, `exchange_okx.py`. Recorded calendar fields (delivery,
listing) move by whole weeks so weekdays and hours stay; snapshot times (`time`, `ts`,
`closeTime`) become the time of the request.

Tests inject faults per route (`fail`, `delay`, `malformed`, `binance_error`), add latency, and
read `requests`. Other endpoints (orders, balances, positions) are added by registering a handler
for (method, host, path) with `@server.route("POST", BINANCE_SPOT, "/api/v3/order")`; the handler
gets a `FakeRequest` (`params()` merges query and body) and returns JSON-able data or a
`web.Response`. Run alone (`python -m tests.fakes.exchange_server [latency_s]`) it prints its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.exchange_binance import register_binance
from tests.fakes.exchange_bybit import register_bybit
from tests.fakes.exchange_okx import register_okx
from tests.fakes.exchange_recordings import HOUR_MS, WEEK_MS, load_recordings, shared_data_dir


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
        register_binance(self)
        register_bybit(self)
        register_okx(self)

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


# ── as a process of its own (the benchmarks keep it off the measured event loop) ───────────


async def _serve_forever(latency_s: float) -> None:
    async with FakeExchange(latency_s=latency_s) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    asyncio.run(_serve_forever(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
