"""Two approvals of one proposal at once execute it once: in one loop, in two threads, two stores."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from core.brokers import PaperBroker
from core.errors import ExecutionError
from core.execution import Executor
from core.execution_report import ExecutionReport
from core.models import MarketSnapshot
from core.store import Store
from tests.execution import Clock, basis_trade, settings, snapshot


def executions(store: Store, pid: str) -> int:
    return sum(1 for r in store.audit_log(500) if r["action"] == "proposal.executing" and r["subject"] == pid)


async def test_double_tap_in_one_loop_executes_once() -> None:
    clock, cfg = Clock(), settings()

    async def slow_market() -> MarketSnapshot:
        await asyncio.sleep(0.01)  # both approvals are past their first checks before either starts
        return snapshot()

    with Store.memory() as store:
        telegram = Executor(cfg, store, PaperBroker(cfg, store, clock), slow_market, clock)
        discord = Executor(cfg, store, PaperBroker(cfg, store, clock), slow_market, clock)
        await telegram.reconcile()
        await discord.reconcile()
        store.save_proposal(basis_trade("P-TWICE1"))
        results = await asyncio.gather(
            telegram.approve("P-TWICE1", "alice", "telegram", "1"),
            discord.approve("P-TWICE1", "alice", "discord", "2"),
            telegram.approve("P-TWICE1", "alice", "telegram", "1"),
            return_exceptions=True)
        reports = [r for r in results if isinstance(r, ExecutionReport)]
        refusals = [r for r in results if isinstance(r, ExecutionError)]
        assert len(reports) == 1 and len(refusals) == 2, results
        assert all("cannot be approved" in str(r) for r in refusals)
        assert len(store.orders_for("P-TWICE1")) == 2
        assert executions(store, "P-TWICE1") == 1
        assert store.get_paper_book()["balances"]["BTC"] == "0.02"


def test_two_threads_with_two_stores_on_one_file_execute_once(tmp_path: Path) -> None:
    path = tmp_path / "premia.db"
    cfg = settings()
    Store.open(path).close()
    with Store.open(path) as setup:
        setup.save_proposal(basis_trade("P-THREAD"))
    both_checked = threading.Barrier(2, timeout=10)
    results: list[object] = []

    def run(via: str) -> None:
        clock = Clock()

        async def market() -> MarketSnapshot:
            # Each thread reaches the one-time start only after both passed every check.
            await asyncio.to_thread(both_checked.wait)
            return snapshot()

        async def main() -> object:
            with Store.open(path) as store:
                ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock)
                ex.reconciled = True  # the other thread may be mid-execution: no start-up reconcile
                try:
                    return await ex.approve("P-THREAD", "alice", via, via)
                except ExecutionError as exc:
                    return exc

        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=run, args=(via,)) for via in ("telegram", "discord")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    reports = [r for r in results if isinstance(r, ExecutionReport)]
    assert len(reports) == 1 and reports[0].status == "executed", results
    with Store.open(path) as store:
        assert executions(store, "P-THREAD") == 1
        assert len(store.orders_for("P-THREAD")) == 2
        assert store.get_paper_book()["balances"]["BTC"] == "0.02"
        assert store.get_proposal("P-THREAD").status == "executed"
