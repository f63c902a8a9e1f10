"""A loopback alternative.me: `/fng/?limit=N` answered from a recorded API response.

The body is paleaura01's verbatim `?limit=365` response (`data/SOURCES.md` D3), moved by whole
days so its newest reading is today. Tests can make it answer an HTTP error, a malformed body or
slowly, and read the requests it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.exchange_recordings import shared_data_dir

RECORDED = "raw/paleaura01__trading-bot/data/fear_greed.json"
DAY_S = 86_400


class FakeFearGreed:
    """`async with FakeFearGreed() as fng:` then fetch `fng.url`."""

    def __init__(self, data_dir: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.recorded = json.loads(((data_dir or shared_data_dir()) / RECORDED).read_text())
        self.clock = clock
        self.status = 200
        self.body: str | None = None  # answered verbatim instead of the data when set
        self.delay_s = 0.0
        self.requests: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0

    def payload(self, limit: int) -> dict[str, Any]:
        """The recorded response, newest reading moved to today, cut to `limit` (0: all)."""
        data = copy.deepcopy(self.recorded)
        newest = int(data["data"][0]["timestamp"])
        shift = (int(self.clock()) // DAY_S * DAY_S) - newest
        for entry in data["data"]:
            entry["timestamp"] = str(int(entry["timestamp"]) + shift)
        if limit > 0:
            data["data"] = data["data"][:limit]
        return data

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        if self.delay_s:
            with contextlib.suppress(TimeoutError):  # a closing server ends the delay at once
                await asyncio.wait_for(self._closing.wait(), self.delay_s)
        if self.status != 200:
            return web.Response(status=self.status, text="Internal Server Error")
        if self.body is not None:
            return web.Response(text=self.body, content_type="application/json")
        return web.json_response(self.payload(int(request.query.get("limit", "1"))))

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/fng/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fng/"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeFearGreed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
