"""kill -9 mid-execution, then a restart: no order is sent twice and the proposal ends in its true state.

A real bot process (`crash_worker.py`) approves a basis trade against the loopback exchange (or
on paper), freezes at a checkpoint and is killed with SIGKILL there; a second process starts on
the same store, reconciles and tries to approve the same proposal again.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.codec import dt_to_str, snapshot_to_dict
from core.store import Store
from tests.execution import T0, basis_trade, snapshot
from tests.execution.loopback import make_rig
from tests.fakes.exchange_orders import OrderDesk
from tests.fakes.exchange_server import FakeExchange
from tests.fakes.exchange_state import Behaviour

ROOT = Path(__file__).resolve().parents[2]


async def run_worker(job: dict[str, Any], *, kill_at: str | None = None,
                     kill_after_s: float | None = None) -> list[dict[str, Any]]:
    """Run one bot process; SIGKILL it at checkpoint `kill_at`, or `kill_after_s` after it starts
    executing (between checkpoints, wherever it happens to be)."""
    if kill_at is not None:
        job = {**job, "freeze_at": kill_at}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.execution.crash_worker", json.dumps(job),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    events: list[dict[str, Any]] = []
    assert proc.stdout is not None

    async def read(until: str | None = None) -> None:
        while line := await proc.stdout.readline():  # type: ignore[union-attr]
            events.append(json.loads(line))
            if kill_at is not None and events[-1].get("at") == kill_at:
                proc.send_signal(signal.SIGKILL)
            if until is not None and events[-1].get("at") == until:
                return

    try:
        if kill_after_s is not None:
            await asyncio.wait_for(read("executing"), 60)  # the clock starts as the execution does
            try:
                await asyncio.wait_for(read(), kill_after_s)
            except TimeoutError:
                proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(read(), 60)
        code = await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if kill_at is not None:
        assert code == -signal.SIGKILL, (code, events, (await proc.stderr.read()).decode()[-2000:])  # type: ignore[union-attr]
    else:
        assert code in (0, -signal.SIGKILL), (await proc.stderr.read()).decode()[-3000:]  # type: ignore[union-attr]
    return events


def assert_settled(store_path: Path, pid: str) -> tuple[str, dict[int, Decimal]]:
    with Store.open(store_path) as store:
        assert store.orders_in_flight() == []
        status = store.get_proposal(pid).status
        filled: dict[int, Decimal] = {}
        for row in store.orders_for(pid):
            filled[row["leg"]] = filled.get(row["leg"], Decimal(0)) + (row["filled"] or Decimal(0))
        executing = [r for r in store.audit_log(500) if r["action"] == "proposal.executing"]
        assert len(executing) == 1
    return status, filled


# ── live, against the loopback exchange ─────────────────────────────────────────────────────

LIVE_CASES = [
    # (freeze at, spot behaviour, expected status, spot orders at the exchange, futures orders)
    ("executing", "auto", "failed", 0, 0),
    ("recorded:0", "auto", "failed", 0, 0),  # recorded, never sent
    ("sent:0", "auto", "partially_executed", 1, 0),  # filled at the exchange, not yet in the store
    ("sent:0", "rest", "failed", 1, 0),  # resting at the exchange: canceled by the restart
    ("leg_done:0", "auto", "partially_executed", 1, 0),  # between the legs
    ("recorded:1", "auto", "partially_executed", 1, 0),
    ("sent:1", "auto", "executed", 1, 1),
]


@pytest.mark.parametrize(("point", "spot", "status", "spot_orders", "futures_orders"), LIVE_CASES)
async def test_kill_9_mid_execution_then_restart_live(tmp_path: Path, exchange: FakeExchange, desk: OrderDesk,
                                                      point: str, spot: str, status: str,
                                                      spot_orders: int, futures_orders: int) -> None:
    path = tmp_path / "premia.db"
    rig = await make_rig(exchange, desk, Store.open(path))
    try:
        p = await rig.basis("P-CRASH1")
    finally:
        await rig.close()
    if spot == "rest":
        desk.script(Behaviour("rest"), venue="spot")
    job = {"store": str(path), "mode": "live", "prefix": exchange.prefix, "proposal": p.id}
    events = await run_worker(job, kill_at=point)
    assert not any(e["event"] == "approved" for e in events)

    again = await run_worker(job)
    refused = [e for e in again if e["event"] == "refused"]
    assert refused and "cannot be approved" in refused[0]["message"]
    assert any(p.id in m for m in next(e for e in again if e["event"] == "reconciled")["messages"])

    sent = Counter(r["newClientOrderId"] for r in desk.creates())
    assert all(n == 1 for n in sent.values()), sent  # no client order id ever sent twice
    assert len(desk.creates("spot")) == spot_orders and len(desk.creates("usdm")) == futures_orders
    assert not any(o.open for o in desk.state.orders.values())
    final, filled = assert_settled(path, p.id)
    assert final == status
    # The store agrees with the exchange, order by order.
    for o in desk.state.orders.values():
        assert filled[0 if o.venue == "spot" else 1] == o.executed


@pytest.mark.parametrize("after_s", [0.0, 0.02, 0.05, 0.08, 0.11, 0.14, 0.17, 0.2])
async def test_kill_9_at_arbitrary_moments_live(tmp_path: Path, exchange: FakeExchange, desk: OrderDesk,
                                                after_s: float) -> None:
    path = tmp_path / "premia.db"
    rig = await make_rig(exchange, desk, Store.open(path))
    try:
        p = await rig.basis("P-CRASH2")
    finally:
        await rig.close()
    exchange.latency_s = 0.03  # every request takes a while, so kills land inside the execution
    job = {"store": str(path), "mode": "live", "prefix": exchange.prefix, "proposal": p.id}
    first = await run_worker(job, kill_after_s=after_s)
    if any(e["event"] == "approved" for e in first):
        pytest.skip("the execution finished before the kill")  # the timing did not hit; rare
    again = await run_worker(job)
    # Killed before the one-time start: the restart executes it. Killed after: it refuses.
    started_before = any(e["event"] == "refused" for e in again)
    assert started_before != any(e["event"] == "approved" for e in again), again
    sent = Counter(r["newClientOrderId"] for r in desk.creates())
    assert all(n == 1 for n in sent.values()), sent
    assert not any(o.open for o in desk.state.orders.values())
    _, filled = assert_settled(path, p.id)
    with Store.open(path) as store:
        status = store.get_proposal(p.id).status
    spot_filled = sum((o.executed for o in desk.state.orders.values() if o.venue == "spot"), Decimal(0))
    perp_filled = sum((o.executed for o in desk.state.orders.values() if o.venue == "usdm"), Decimal(0))
    assert (filled.get(0, Decimal(0)), filled.get(1, Decimal(0))) == (spot_filled, perp_filled)
    assert status == ("executed" if spot_filled and perp_filled
                      else "partially_executed" if spot_filled else "failed")


# ── paper ───────────────────────────────────────────────────────────────────────────────────

PAPER_CASES = [
    ("recorded:0", "failed", None),
    ("sent:0", "partially_executed", Decimal("0.02")),
    ("recorded:1", "partially_executed", Decimal("0.02")),
    ("sent:1", "executed", Decimal("0.02")),
]


@pytest.mark.parametrize(("point", "status", "btc"), PAPER_CASES)
async def test_kill_9_mid_execution_then_restart_paper(tmp_path: Path, point: str, status: str,
                                                       btc: Decimal | None) -> None:
    path = tmp_path / "premia.db"
    with Store.open(path) as store:
        store.save_proposal(basis_trade("P-PAPER1"))
    job = {"store": str(path), "mode": "paper", "proposal": "P-PAPER1", "now": dt_to_str(T0),
           "snapshot": json.loads(json.dumps(snapshot_to_dict(snapshot()), default=str))}
    await run_worker(job, kill_at=point)
    again = await run_worker(job)
    assert any(e["event"] == "refused" for e in again)
    final, filled = assert_settled(path, "P-PAPER1")
    assert final == status
    with Store.open(path) as store:
        book = store.get_paper_book()
        assert [r["filled"] for r in store.orders_for("P-PAPER1") if r["status"] == "filled"] == [
            v for v in filled.values() if v]
    if btc is None:
        assert book is None  # nothing filled on paper
    else:
        assert Decimal(book["balances"]["BTC"]) == btc
        short = [Decimal(p["contracts"]) for p in book["positions"]]
        assert short == ([Decimal("-0.02")] if status == "executed" else [])
