"""Transactions: the paper book moves with its proposal or not at all, nesting, connections, tasks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import StoreError
from core.store import Store
from tests.core.store import T0, make_proposal


def test_the_paper_book_changes_with_its_proposal_or_not_at_all(store: Store) -> None:
    store.save_proposal(make_proposal())
    book0 = {"balances": {"USDT": "10000"}, "positions": []}
    store.put_paper_book(book0, T0)

    with pytest.raises(RuntimeError), store.transaction():
        assert store.transition("P-1", "proposed", "executed", T0, "system", "paper")
        store.put_paper_book({"balances": {"USDT": "0"}, "positions": []}, T0)
        raise RuntimeError("fill crashed half way")
    assert store.get_proposal("P-1").status == "proposed"
    assert store.get_paper_book() == book0

    with store.transaction():
        store.transition("P-1", "proposed", "executed", T0, "system", "paper")
        store.put_paper_book({"balances": {"USDT": "2800", "BTC": "0.144"}, "positions": []}, T0)
    assert store.get_proposal("P-1").status == "executed"
    assert store.get_paper_book()["balances"] == {"USDT": "2800", "BTC": "0.144"}


def test_a_failed_inner_block_rolls_back_only_itself(store: Store) -> None:
    with store.transaction():
        store.set_flag("outer", {}, T0)
        with pytest.raises(KeyError), store.transaction():
            store.set_flag("inner", {}, T0)
            raise KeyError("boom")
    assert store.get_flag("outer") == {}
    assert store.get_flag("inner") is None


def test_a_transaction_is_visible_to_another_connection_only_after_commit(db_path: Path) -> None:
    with Store.open(db_path) as writer, Store.open(db_path) as reader:
        with writer.transaction():
            writer.set_flag("paused", {"by": "alice"}, T0)
            assert reader.get_flag("paused") is None  # WAL: readers see the last commit
        assert reader.get_flag("paused") == {"by": "alice"}


async def test_many_tasks_can_share_one_store(store: Store) -> None:
    store.save_proposal(make_proposal())

    async def approve(n: int) -> bool:
        await asyncio.sleep(0)
        return store.transition("P-1", "proposed", "approved", T0, f"user{n}", "telegram")

    async def alert(n: int) -> int | None:
        await asyncio.sleep(0)
        return store.enqueue_alert("same-key", "rule", {"n": n}, T0, timedelta(hours=1))

    approvals = await asyncio.gather(*(approve(n) for n in range(10)))
    alerts = await asyncio.gather(*(alert(n) for n in range(10)))
    assert approvals.count(True) == 1
    assert sum(a is not None for a in alerts) == 1


async def test_a_task_cannot_slip_into_another_tasks_open_transaction(store: Store) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        with store.transaction():
            store.set_flag("mine", {}, T0)
            inside.set()
            await release.wait()  # the misuse the guard is there to catch

    task = asyncio.create_task(holder())
    await inside.wait()
    with pytest.raises(StoreError, match="do not await inside"):
        store.set_flag("theirs", {}, T0)
    release.set()
    await task
    assert store.get_flag("mine") == {}
    assert store.get_flag("theirs") is None
