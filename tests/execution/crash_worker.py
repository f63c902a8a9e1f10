"""A bot process for the crash tests: approve a proposal (and freeze at a checkpoint), or restart.

    python -m tests.execution.crash_worker '<json job>'

The job names the store file, paper or live (the loopback exchange's prefix), the action
("approve" or "restart": reconcile, then try to approve the same proposal again) and, for
"approve", the checkpoint at which to freeze: the worker prints the checkpoint as a JSON line
and blocks, and the test kills it with SIGKILL there. Every other event is a JSON line too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.brokers import CcxtBroker, PaperBroker
from core.codec import dt_from, snapshot_from_dict
from core.errors import ExecutionError
from core.execution import Executor
from core.feeds.clients import ExchangeClients
from core.models import MarketSnapshot
from core.store import Store
from tests.execution import settings as paper_settings
from tests.execution.loopback import feed, live_settings, set_keys, utc_now
from tests.feeds import TEST_CCXT


def say(**event: Any) -> None:
    print(json.dumps(event, default=str), flush=True)


def checkpoint_hook(freeze_at: str | None):
    def hook(name: str, info: Mapping[str, Any]) -> None:
        label = name if "leg" not in info else f"{name}:{info['leg']}"
        if info.get("attempt"):
            label += f"r{info['attempt']}"
        say(event="checkpoint", at=label)
        if label == freeze_at:
            time.sleep(3600)  # frozen mid-execution, event loop and all, until SIGKILL

    return hook


async def main(job: dict[str, Any]) -> None:
    store = Store.open(job["store"])
    clients = None
    if job["mode"] == "live":
        set_keys()
        cfg = live_settings(job["prefix"], **job.get("settings", {}))
        clients = ExchangeClients(cfg, TEST_CCXT)
        broker: Any = CcxtBroker(cfg, clients, exchange="binance", poll_seconds=0.05, retry_wait_s=0.01)
        refresh, clock = feed(clients, cfg), utc_now
    else:
        cfg = paper_settings(**job.get("settings", {}))
        fixed = dt_from(job["now"])
        snap = snapshot_from_dict(job["snapshot"])

        async def refresh() -> MarketSnapshot:
            return snap

        def clock() -> datetime:
            return fixed

        broker = PaperBroker(cfg, store, clock)
    executor = Executor(cfg, store, broker, refresh, clock, checkpoint=checkpoint_hook(job.get("freeze_at")))
    try:
        say(event="reconciled", messages=await executor.reconcile())
        try:
            report = await executor.approve(job["proposal"], "alice", "telegram", "42")
            say(event="approved", status=report.status)
        except ExecutionError as exc:
            say(event="refused", message=str(exc))
    finally:
        if clients is not None:
            await clients.close()
        store.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
