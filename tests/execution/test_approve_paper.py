"""Approving on paper: the lifecycle, the refusals, the book, the audit trail."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers import PaperBroker
from core.codec import portfolio_from_dict
from core.errors import ExecutionError
from core.execution import Executor, MarketMovedError
from core.lifecycle import IllegalTransition, move
from core.models import MarketSnapshot
from core.store import Store
from tests.execution import BTC, ETH, T0, Clock, basis_trade, order, proposal, settings, snapshot


class Market:
    """The refresh callable: returns whatever snapshot the test sets."""

    def __init__(self, snap: MarketSnapshot) -> None:
        self.snap = snap
        self.calls = 0

    async def __call__(self) -> MarketSnapshot:
        self.calls += 1
        return self.snap


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store():
    with Store.memory() as s:
        yield s


@pytest.fixture
def market() -> Market:
    return Market(snapshot())


@pytest.fixture
async def executor(store: Store, clock: Clock, market: Market) -> Executor:
    cfg = settings()
    ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock)
    assert await ex.reconcile() == []
    return ex


def book(store: Store):
    return portfolio_from_dict(store.get_paper_book())


async def test_basis_trade_fills_on_paper_and_is_audited(executor: Executor, store: Store) -> None:
    store.save_proposal(basis_trade("P-AAAAAA"))
    report = await executor.approve("P-AAAAAA", "alice", "telegram", "42")
    assert report.status == "executed"
    assert [f.status for f in report.fills] == ["filled", "filled"]
    spot, perp = report.fills
    # 5 bps slippage each way from the plan (the paper model), 10 bps spot and 5 bps futures fees.
    assert spot.avg_price == BTC * Decimal("1.0005") and spot.slippage == Decimal("0.0005")
    assert perp.avg_price == BTC * Decimal("0.9995") and perp.slippage == Decimal("0.0005")
    assert spot.fee == Decimal("0.02") * spot.avg_price * Decimal("0.001")
    after = book(store)
    assert after.balances["BTC"] == Decimal("0.02")
    assert after.balances["USDT"] == Decimal(10_000) - Decimal("0.02") * spot.avg_price - spot.fee - perp.fee
    assert [(p.symbol, p.contracts) for p in after.positions] == [("BTC/USDT:USDT", Decimal("-0.02"))]
    # Delta-neutral: spot units and short contracts cancel.
    assert report.net_futures_exposure_after < 0 and report.weights_after["BTC"] > 0
    assert report.funding == Decimal("0.02") * BTC * Decimal("0.0001")  # shorts receive positive funding
    stored = store.get_proposal("P-AAAAAA")
    assert (stored.status, stored.decided_by, stored.decided_via) == ("executed", "alice", "telegram")
    orders = store.orders_for("P-AAAAAA")
    assert [o["client_order_id"] for o in orders] == ["premia-PAAAAAA-0", "premia-PAAAAAA-1"]
    assert all(o["status"] == "filled" for o in orders)
    actions = [(r["action"], r["actor"], r["via"], r["chat_id"]) for r in reversed(store.audit_log())]
    assert ("proposal.approved", "alice", "telegram", "42") in actions
    assert ("proposal.executing", "alice", "telegram", "42") in actions
    assert actions[-1][0] == "execution.report"
    assert "executed" in report.text()


async def test_the_audit_row_is_written_before_the_first_order(store: Store, clock: Clock,
                                                              market: Market) -> None:
    cfg = settings()
    seen: list[tuple[str, list[str]]] = []

    def checkpoint(name: str, info: dict) -> None:
        seen.append((name, [r["action"] for r in store.audit_log()]))

    ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock, checkpoint=checkpoint)
    await ex.reconcile()
    store.save_proposal(basis_trade("P-AUDIT1"))
    await ex.approve("P-AUDIT1", "alice", "discord", "7")
    _, actions = next(s for s in seen if s[0] == "recorded")
    assert "proposal.approved" in actions and "proposal.executing" in actions
    assert store.get_order("premia-PAUDIT1-0") is not None


async def test_reject_then_approve_is_refused(executor: Executor, store: Store) -> None:
    store.save_proposal(basis_trade("P-REJECT"))
    assert "Rejected P-REJECT" in await executor.reject("P-REJECT", "bob", "discord", "9")
    with pytest.raises(ExecutionError, match=r"was rejected \(by bob via discord\)"):
        await executor.approve("P-REJECT", "alice", "telegram", "42")
    with pytest.raises(ExecutionError, match="cannot be rejected"):
        await executor.reject("P-REJECT", "alice", "telegram", "42")
    assert store.orders_for("P-REJECT") == [] and store.get_paper_book() is None
    refused = [r for r in store.audit_log() if r["action"] == "approve.refused"]
    assert refused and refused[0]["actor"] == "alice"


async def test_expired_proposal_cannot_execute(executor: Executor, store: Store, clock: Clock) -> None:
    store.save_proposal(basis_trade("P-EXPIRE", minutes=15))
    clock.advance(minutes=15)
    with pytest.raises(ExecutionError, match="expired at 12:15 UTC"):
        await executor.approve("P-EXPIRE", "alice", "telegram", "42")
    assert store.get_proposal("P-EXPIRE").status == "expired"
    assert store.orders_for("P-EXPIRE") == [] and store.get_paper_book() is None


async def test_superseded_proposal_cannot_execute(executor: Executor, store: Store) -> None:
    store.save_proposal(basis_trade("P-OLDONE"))
    store.save_proposal(basis_trade("P-NEWONE"))
    store.supersede_open("P-NEWONE", T0)
    with pytest.raises(ExecutionError, match="a newer proposal replaced it"):
        await executor.approve("P-OLDONE", "alice", "telegram", "42")
    assert store.orders_for("P-OLDONE") == []


async def test_unknown_id_and_empty_proposal(executor: Executor, store: Store) -> None:
    with pytest.raises(ExecutionError, match="There is no proposal P-NOPE"):
        await executor.approve("P-NOPE", "alice", "telegram", "42")
    store.save_proposal(proposal("P-EMPTY"))
    with pytest.raises(ExecutionError, match="no orders"):
        await executor.approve("P-EMPTY", "alice", "telegram", "42")


async def test_pause_switch_refuses(executor: Executor, store: Store) -> None:
    store.save_proposal(basis_trade("P-PAUSED"))
    store.set_flag("paused", {"by": "carol"}, T0)
    with pytest.raises(ExecutionError, match=r"paused \(by carol\)"):
        await executor.approve("P-PAUSED", "alice", "telegram", "42")
    assert store.get_proposal("P-PAUSED").status == "proposed"
    store.clear_flag("paused")
    assert (await executor.approve("P-PAUSED", "alice", "telegram", "42")).status == "executed"


async def test_order_cap_and_daily_turnover_cap(store: Store, clock: Clock, market: Market) -> None:
    cfg = settings(orders={"max_order_notional": 3000, "max_daily_turnover": 5000})
    ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock)
    await ex.reconcile()
    store.save_proposal(proposal("P-BIGONE", order(0, "BTC/USDT", "buy", "0.04", BTC)))
    with pytest.raises(ExecutionError, match="per-order cap"):
        await ex.approve("P-BIGONE", "alice", "telegram", "42")
    store.save_proposal(basis_trade("P-DAYONE", "0.02"))  # 2 × 2,000
    assert (await ex.approve("P-DAYONE", "alice", "telegram", "42")).status == "executed"
    store.save_proposal(basis_trade("P-DAYTWO", "0.01"))  # 2 × 1,000 more: over 5,000
    with pytest.raises(ExecutionError, match="daily cap"):
        await ex.approve("P-DAYTWO", "alice", "telegram", "42")
    clock.advance(hours=12)  # the next UTC day
    store.save_proposal(basis_trade("P-NEXTDY", "0.01", at=clock.now))
    market.snap = snapshot(at=clock.now)
    assert (await ex.approve("P-NEXTDY", "alice", "telegram", "42")).status == "executed"


async def test_insufficient_balance_refuses_before_any_order(executor: Executor, store: Store) -> None:
    store.save_proposal(proposal("P-TOOBIG", order(0, "BTC/USDT", "buy", "0.2", BTC)))  # 20,000 > 10,000
    with pytest.raises(ExecutionError, match="not enough USDT"):
        await executor.approve("P-TOOBIG", "alice", "telegram", "42")
    store.save_proposal(proposal("P-NOETH1", order(0, "ETH/USDT", "sell", "1", ETH)))
    with pytest.raises(ExecutionError, match="not enough ETH to sell"):
        await executor.approve("P-NOETH1", "alice", "telegram", "42")
    assert store.get_proposal("P-TOOBIG").status == "proposed"
    assert store.orders_for("P-TOOBIG") == [] and store.get_paper_book() is None


async def test_stale_market_refuses_and_keeps_the_proposal(executor: Executor, store: Store,
                                                          market: Market, clock: Clock) -> None:
    store.save_proposal(basis_trade("P-STALE1"))
    market.snap = snapshot(quote_age=timedelta(hours=1))
    with pytest.raises(ExecutionError, match="price is stale"):
        await executor.approve("P-STALE1", "alice", "telegram", "42")
    market.snap = snapshot(at=T0 - timedelta(hours=1))
    with pytest.raises(ExecutionError, match="market data is 60 min old"):
        await executor.approve("P-STALE1", "alice", "telegram", "42")
    assert store.get_proposal("P-STALE1").status == "proposed" and store.orders_for("P-STALE1") == []
    market.snap = snapshot()
    assert (await executor.approve("P-STALE1", "alice", "telegram", "42")).status == "executed"


async def test_moved_market_refuses_and_offers_a_fresh_proposal(store: Store, clock: Clock) -> None:
    cfg = settings(paper={"balances": {"USDT": "10000"}})
    market = Market(snapshot({"BTC": BTC * Decimal("1.02"), "ETH": ETH}))
    ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock)
    await ex.reconcile()
    store.save_proposal(basis_trade("P-MOVED1"))
    with pytest.raises(MarketMovedError) as caught:
        await ex.approve("P-MOVED1", "alice", "telegram", "42")
    fresh_id = caught.value.fresh_proposal_id
    assert fresh_id and fresh_id in str(caught.value) and "+2.00%" in str(caught.value)
    assert store.get_proposal("P-MOVED1").status == "superseded"
    fresh = store.get_proposal(fresh_id)
    assert fresh.status == "proposed" and fresh.proposal.orders  # all cash: the strategy buys
    assert fresh.proposal.prices["BTC"] == BTC * Decimal("1.02") and fresh.proposal.snapshot_id
    assert store.get_snapshot(fresh.proposal.snapshot_id) is not None
    assert store.orders_for("P-MOVED1") == []
    # The fresh one executes at the new prices.
    report = await ex.approve(fresh_id, "alice", "telegram", "42")
    assert report.status in ("executed", "partially_executed")


async def test_move_within_tolerance_executes_at_the_new_price(executor: Executor, store: Store,
                                                               market: Market) -> None:
    store.save_proposal(basis_trade("P-SMALL1"))
    market.snap = snapshot({"BTC": BTC * Decimal("1.005"), "ETH": ETH})
    report = await executor.approve("P-SMALL1", "alice", "telegram", "42")
    assert report.status == "executed"
    assert report.fills[0].avg_price == BTC * Decimal("1.005") * Decimal("1.0005")
    assert report.fills[0].slippage == pytest.approx(Decimal("1.005") * Decimal("1.0005") - 1)


async def test_refresh_failure_refuses(store: Store, clock: Clock) -> None:
    async def broken() -> MarketSnapshot:
        raise TimeoutError("feed down")

    cfg = settings()
    ex = Executor(cfg, store, PaperBroker(cfg, store, clock), broken, clock)
    await ex.reconcile()
    store.save_proposal(basis_trade("P-NOFEED"))
    with pytest.raises(ExecutionError, match="Could not fetch the market again"):
        await ex.approve("P-NOFEED", "alice", "telegram", "42")
    assert store.get_proposal("P-NOFEED").status == "proposed"


async def test_approvals_wait_for_reconciliation(store: Store, clock: Clock, market: Market) -> None:
    cfg = settings()
    ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock)
    store.save_proposal(basis_trade("P-EARLY1"))
    with pytest.raises(ExecutionError, match="still being checked"):
        await ex.approve("P-EARLY1", "alice", "telegram", "42")
    await ex.reconcile()
    assert (await ex.approve("P-EARLY1", "alice", "telegram", "42")).status == "executed"


def test_lifecycle_refuses_moves_it_does_not_know(store: Store) -> None:
    store.save_proposal(basis_trade("P-ILLEGL"))
    with pytest.raises(IllegalTransition):
        move(store, "P-ILLEGL", "proposed", "executed", T0, "x", "y")
    with pytest.raises(IllegalTransition):
        move(store, "P-ILLEGL", "rejected", "approved", T0, "x", "y")
    assert store.get_proposal("P-ILLEGL").status == "proposed"
