"""`premia run`'s wiring with the real engine: the scheduler's jobs, auto-execution, pause.

Real ccxt against the loopback exchange, the real Fear & Greed format, a real SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatbot.app import AUTO_ACTOR, BotProcess
from chatbot.wiring import build_services
from core.config import settings_from_dict
from tests.engine import loopback_config
from tests.fakes.exchange_server import FakeExchange
from tests.fakes.fng_server import FakeFearGreed

pytestmark = pytest.mark.usefixtures("short_retry_waits")


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not seen within {timeout} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running_bot(servers: tuple[FakeExchange, FakeFearGreed], tmp_path: Path,
                      **top: Any) -> AsyncIterator[BotProcess]:
    """`premia run` in this process over the loopback servers, stopped and closed afterwards."""
    ex, fng = servers
    config = loopback_config(ex.prefix, fng.url, tmp_path / "premia.db", **top)
    for exchange in config["exchanges"].values():
        exchange["options"] = {"enableRateLimit": False}
    settings = settings_from_dict(config)
    bot = BotProcess(settings, build_services(settings), env={})
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
        bot.services.store.close()


def outbox(bot: BotProcess) -> list[dict[str, Any]]:
    return bot.services.store.pending_alerts("test", datetime.now(UTC) + timedelta(days=1), limit=100)


async def test_premia_run_schedules_every_engine_job_and_records_the_first_poll(servers, tmp_path) -> None:
    async with running_bot(servers, tmp_path) as bot:
        store = bot.services.store
        await until(lambda: "poll" in store.job_runs(), 30, "the first poll's job run")
        jobs = {j.id for j in bot.scheduler.get_jobs()}
        assert jobs == {"poll", "funding", "fear_greed", "digest", "watchdog", "markets", "heartbeat"}
        run = store.job_runs()["poll"]
        assert run["outcome"] == "ok" and "proposal P-" in run["detail"]
        assert bot.cycles == 1
        [alert] = [a for a in outbox(bot) if a["kind"] == "proposal"]
        assert store.get_proposal(alert["payload"]["proposal_id"]).status == "proposed"
        # After the first poll the funding job knows the next settlement of each perpetual.
        funding = bot.scheduler.get_job("funding").next_run_time
        assert funding is not None and funding - datetime.now(UTC) <= timedelta(hours=8, minutes=2)
    assert not bot.scheduler.running


async def test_auto_execute_trades_the_new_proposal_on_paper_and_reports_to_chat(servers, tmp_path) -> None:
    async with running_bot(servers, tmp_path, proposals={"auto_execute": True}) as bot:
        store = bot.services.store
        await until(lambda: any(a["kind"] == "execution" for a in outbox(bot)), 60, "an execution report")
        [report] = [a for a in outbox(bot) if a["kind"] == "execution"]
        pid = report["key"].removeprefix("execution:")
        assert store.get_proposal(pid).status == "executed"
        assert report["payload"]["title"] == f"Proposal {pid} · executed (paper)"
        assert report["payload"]["text"].startswith("Executed automatically")
        assert report["payload"]["table"]["rows"]
        assert any(e["actor"] == AUTO_ACTOR and e["subject"] == pid for e in store.audit_log(200))
        assert store.get_paper_book()["balances"]["BTC"]  # the book now holds what was bought


async def test_without_auto_execute_a_proposal_waits_for_a_person(servers, tmp_path) -> None:
    async with running_bot(servers, tmp_path) as bot:
        store = bot.services.store
        await until(lambda: "poll" in store.job_runs(), 30, "the first poll")
        await asyncio.sleep(0.3)
        [alert] = [a for a in outbox(bot) if a["kind"] == "proposal"]
        assert store.get_proposal(alert["payload"]["proposal_id"]).status == "proposed"
        assert not [a for a in outbox(bot) if a["kind"] == "execution"]


async def test_pause_keeps_polling_and_alerting_but_proposes_nothing(servers, tmp_path) -> None:
    from core.store import Store

    with Store.open(tmp_path / "premia.db") as store:  # paused before the bot starts
        store.set_flag("paused", {"by": "owner"}, datetime.now(UTC))
    async with running_bot(servers, tmp_path) as bot:
        store = bot.services.store
        await until(lambda: "poll" in store.job_runs(), 30, "the first poll")
        assert store.job_runs()["poll"]["outcome"] == "skipped"
        assert store.open_proposals(datetime.now(UTC)) == []
        [alert] = [a for a in outbox(bot) if a["kind"] == "trigger"]
        assert "No order proposed: paused" in alert["payload"]["text"]
