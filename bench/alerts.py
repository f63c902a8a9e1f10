"""Benchmark: trigger → Telegram latency, and the /status round trip, against the fake Bot API.

The fake Bot API runs on its own event loop in another thread (Telegram does not share ours) and
stamps each sendMessage as it arrives. Premia runs as in production: the real dispatcher over a
real SQLite store file, a real python-telegram-bot Application polling the fake, the real outbox
drain and TelegramNotifier. Figures are p50/p99 in ms over many runs; on loopback the network
costs almost nothing, so they are Premia's own overhead (target: p99 < 50 ms).
Run: `.venv/bin/python -m bench.alerts`.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.fakes.telegram_api import FakeBotAPI

RUNS = 300
WARMUP = 20
TOKEN = "123456:BENCH-token-abcdefghijklmnopqrstuv"
CHAT = 1001


class StampedBotAPI(FakeBotAPI):
    """The fake Bot API, stamping every sendMessage with its arrival time."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []
        self.notify: Any = None  # set by the bench: called (thread-safely) on each arrival

    async def _api_sendMessage(self, params: dict, files: dict) -> Any:
        self.arrivals.append((time.perf_counter(), str(params.get("text", ""))))
        if self.notify is not None:
            self.notify()
        return await super()._api_sendMessage(params, files)


class ThreadedAPI:
    """Runs a StampedBotAPI on its own loop in a daemon thread."""

    def __init__(self) -> None:
        self.api = StampedBotAPI()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="fake-bot-api", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.api.__aenter__())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> ThreadedAPI:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.__aexit__(None, None, None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def push_text(self, text: str) -> None:
        self.loop.call_soon_threadsafe(self.api.push_text, text)


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return round(statistics.median(ms), 2), round(cuts[98], 2)


async def _bench(folder: Path) -> dict[str, Any]:
    from chatbot import telegram as tg
    from chatbot.alert_render import AlertPump, AlertRenderer
    from core.config import TelegramConfig
    from tests.chatbot.test_commands_world import TRADER, paper_world

    world = await paper_world(folder)
    world.store.subscribe("telegram", CHAT)
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    with ThreadedAPI() as fake:
        fake.api.notify = lambda: loop.call_soon_threadsafe(arrived.set)
        app = tg.build_application(TOKEN, world.dispatcher, TelegramConfig(base_url=fake.api.base_url))
        await tg.start(app, poll_timeout=10)
        notifier = tg.TelegramNotifier.for_application(app)
        pump = AlertPump(world.store, [notifier], AlertRenderer(world.store, world.settings, world.clock),
                         world.clock, interval_s=3600)
        pump_task = asyncio.create_task(pump.run())
        payload = {"rule": "volatility_spike", "asset": "BTC",
                   "values": {"ratio": "2.40", "threshold": "2.0"},
                   "explanation": "BTC 7-day volatility is 2.4× its 30-day baseline: reduce BTC"}

        async def arrival() -> float:
            await asyncio.wait_for(arrived.wait(), 10)
            arrived.clear()
            return fake.api.arrivals[-1][0]

        alert_s: list[float] = []
        for i in range(WARMUP + RUNS):
            world.store.enqueue_alert(f"bench:{i}", "trigger", payload, world.clock(), timedelta(seconds=1))
            committed = time.perf_counter()
            pump.poke()  # what the scheduler does right after an engine cycle
            landed = await arrival()
            if i >= WARMUP:
                alert_s.append(landed - committed)

        status_s: list[float] = []
        for i in range(WARMUP + RUNS):
            sent = time.perf_counter()
            fake.push_text("/status")
            landed = await arrival()
            if i >= WARMUP:
                status_s.append(landed - sent)
        assert fake.api.arrivals[-1][1].startswith("<b>Portfolio")

        dispatch_s: list[float] = []
        for _ in range(RUNS):
            started = time.perf_counter()
            await world.dispatcher.handle_text(TRADER, "/status")
            dispatch_s.append(time.perf_counter() - started)

        pump_task.cancel()
        await asyncio.gather(pump_task, return_exceptions=True)
        await tg.stop(app)
    world.store.close()
    a50, a99 = percentiles(alert_s)
    s50, s99 = percentiles(status_s)
    d50, d99 = percentiles(dispatch_s)
    return {
        "runs": RUNS,
        "alert p50 ms": a50, "alert p99 ms": a99,
        "/status round trip p50 ms": s50, "/status round trip p99 ms": s99,
        "/status dispatcher only p50 ms": d50, "/status dispatcher only p99 ms": d99,
        "target p99 < 50 ms": "met" if max(a99, s99) < 50 else "NOT met",
    }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="premia-bench-") as folder:
        figures = asyncio.run(_bench(Path(folder)))
    for key, value in figures.items():
        print(f"{key:34} {value}")
    return figures


if __name__ == "__main__":
    main()
