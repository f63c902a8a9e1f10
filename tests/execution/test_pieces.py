"""The small pieces: client order ids, the lifecycle table, hedge sizing, wallet checks, brokers."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers import CcxtBroker, PaperBroker, build_broker, client_order_id, startup_message
from core.brokers.base import Balances, OrderRequest, compact_client_order_id
from core.errors import ConfigError, ExecutionError
from core.execution import Executor
from core.execution_checks import check_balances, hedged_amount, margin_needed
from core.lifecycle import ALLOWED, STATES, TERMINAL, allowed, final_status, sources
from core.models import Position
from core.reconcile import reconcile
from core.store import Store
from tests.execution import BTC, T0, Clock, basis_trade, order, settings, snapshot
from tests.execution.loopback import KEY_ENV, SECRET_ENV, live_settings

BINANCE_ID = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")
OKX_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


@pytest.mark.parametrize("pid", ["P-7F3K2A", "P-000001", "x" * 80, "P_ü/weird id", ""])
def test_client_order_ids_fit_every_exchange_and_stay_distinct(pid: str) -> None:
    ids = {client_order_id(pid, leg, attempt) for leg in range(12) for attempt in range(4)}
    assert len(ids) == 48
    for cid in ids:
        assert BINANCE_ID.match(cid) and OKX_ID.match(compact_client_order_id(cid)), cid
    assert client_order_id(pid, 0) == client_order_id(pid, 0)  # derived, not random


def test_client_order_id_shape() -> None:
    assert client_order_id("P-7F3K2A", 0) == "premia-P7F3K2A-0"
    assert client_order_id("P-7F3K2A", 1, 2) == "premia-P7F3K2A-1r2"


def test_lifecycle_table() -> None:
    assert {"executed", "partially_executed", "failed", "rejected", "expired", "superseded"} == TERMINAL
    assert set(ALLOWED) | TERMINAL == STATES
    assert allowed("proposed", "approved") and not allowed("proposed", "executing")
    assert not any(allowed(t, s) for t in TERMINAL for s in STATES)
    assert sources("failed") == {"approved", "executing"}
    assert final_status(2, 2, True) == "executed"
    assert final_status(2, 1, True) == "partially_executed"
    assert final_status(2, 0, False) == "failed"


def test_hedge_follows_the_spot_fill() -> None:
    spot = order(0, "BTC/USDT", "buy", "0.02", BTC)
    hedge = order(1, "BTC/USDT:USDT", "sell", "0.02", BTC)
    assert hedged_amount(hedge, Decimal("0.02"), [(spot, Decimal("0.02"))]) == Decimal("0.02")
    assert hedged_amount(hedge, Decimal("0.02"), [(spot, Decimal("0.0125"))]) == Decimal("0.0125")
    assert hedged_amount(hedge, Decimal("0.02"), [(spot, Decimal(0))]) == 0
    # A hedge that also covers older holdings loses only the unfilled spot units.
    assert hedged_amount(hedge, Decimal("0.05"), [(spot, Decimal("0.01"))]) == Decimal("0.04")
    # A partial hedge shrinks in proportion.
    assert hedged_amount(hedge, Decimal("0.01"), [(spot, Decimal("0.01"))]) == Decimal("0.005")
    # Same direction (adding exposure) or another asset: not a hedge.
    long_perp = order(1, "BTC/USDT:USDT", "buy", "0.02", BTC)
    eth = order(0, "ETH/USDT", "buy", "1", Decimal(2500))
    assert hedged_amount(long_perp, Decimal("0.02"), [(spot, Decimal(0))]) == Decimal("0.02")
    assert hedged_amount(hedge, Decimal("0.02"), [(eth, Decimal(0))]) == Decimal("0.02")


def request(o, amount: str | None = None) -> OrderRequest:
    qty = Decimal(amount) if amount else o.amount
    return OrderRequest(o, client_order_id("P-T", o.leg), qty, o.limit_price, BTC, o.leg)


def test_wallet_checks_name_the_transfer_or_make_it() -> None:
    reqs = [request(order(0, "BTC/USDT", "buy", "0.02", BTC)),
            request(order(1, "BTC/USDT:USDT", "sell", "0.02", BTC))]
    rich = Balances({"USDT": Decimal(5000)}, {"USDT": Decimal(1000)})
    assert check_balances(reqs, rich, settings()) == []
    no_margin = Balances({"USDT": Decimal(5000)}, {"USDT": Decimal(0)})
    with pytest.raises(ExecutionError, match=r"move 400\.80 USDT from the spot to the futures wallet"):
        check_balances(reqs, no_margin, settings())
    (t,) = check_balances(reqs, no_margin, settings(execution={"auto_transfer": True}))
    assert (t.source, t.target, t.before, t.amount) == ("spot", "futures", "futures", Decimal("400.80"))
    cash_in_futures = Balances({"USDT": Decimal(100)}, {"USDT": Decimal(5000)})
    (t,) = check_balances(reqs, cash_in_futures, settings(execution={"auto_transfer": True}))
    assert (t.source, t.target, t.before) == ("futures", "spot", "spot")
    with pytest.raises(ExecutionError, match="not enough USDT"):
        check_balances(reqs, Balances({"USDT": Decimal(1000)}, {"USDT": Decimal(100)}), settings())


def test_reducing_a_position_needs_no_margin() -> None:
    close = request(order(1, "BTC/USDT:USDT", "buy", "0.02", BTC))
    held = {"BTC/USDT:USDT": Decimal("-0.05")}
    assert margin_needed(close, held, Decimal("0.2")) == 0
    flip = request(order(1, "BTC/USDT:USDT", "buy", "0.13", BTC))  # −0.05 → +0.08: 0.03 more exposure
    expected = Decimal("0.03") * flip.price * Decimal("0.2")
    assert margin_needed(flip, held, Decimal("0.2")) == pytest.approx(expected)
    short = (Position("BTC/USDT:USDT", Decimal("-0.05")),)
    bal = Balances({"USDT": Decimal(10)}, {"USDT": Decimal(10)}, short)
    assert check_balances([close], bal, settings()) == []


def test_live_mode_needs_keys_and_announces_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = live_settings("http://127.0.0.1:9")
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with Store.memory() as store:
        with pytest.raises(ConfigError, match=f"export {KEY_ENV} and {SECRET_ENV}"):
            build_broker(cfg, store, Clock())
        monkeypatch.setenv(KEY_ENV, "k")
        monkeypatch.setenv(SECRET_ENV, "s")
        assert isinstance(build_broker(cfg, store, Clock()), CcxtBroker)
        assert "LIVE trading on binance" in startup_message(cfg)
        assert "k" not in startup_message(cfg).split() and "s" not in startup_message(cfg).split()
        assert isinstance(build_broker(settings(), store, Clock()), PaperBroker)
        live = build_broker(cfg, store, Clock())
        with pytest.raises(ConfigError, match='needs mode = "live"'):
            Executor(settings(), store, live, market, Clock())
    assert startup_message(settings()).startswith("📝 Paper trading")


async def market():
    return snapshot()


async def test_an_approved_proposal_left_by_a_crash_is_marked_failed() -> None:
    clock, cfg = Clock(), settings()
    with Store.memory() as store:
        store.save_proposal(basis_trade("P-HALF01"))
        assert store.transition("P-HALF01", "proposed", "approved", T0, "alice", "telegram")
        messages = await reconcile(store, PaperBroker(cfg, store, clock), clock)
        assert store.get_proposal("P-HALF01").status == "failed"
        assert "interrupted before any order was sent" in messages[0]


async def test_unreachable_paper_limit_fails_and_skips_the_hedge() -> None:
    # Slippage beyond the limit offset: the paper model cannot fill the spot leg.
    clock, cfg = Clock(), settings(costs={"slippage_bps": 20, "limit_offset_bps": 5})
    with Store.memory() as store:
        ex = Executor(cfg, store, PaperBroker(cfg, store, clock), market, clock)
        await ex.reconcile()
        store.save_proposal(basis_trade("P-NOFILL"))
        report = await ex.approve("P-NOFILL", "alice", "telegram", "1")
        assert report.status == "failed"
        assert [f.status for f in report.fills] == ["unfilled", "skipped"]
        assert "limit was not reached" in report.fills[0].message
        assert store.get_paper_book() is None


async def test_an_unsettled_proposal_is_reconciled_however_many_came_after_it() -> None:
    clock, cfg = Clock(), settings()
    with Store.memory() as store:
        store.save_proposal(basis_trade("P-OLD001"))
        assert store.transition("P-OLD001", "proposed", "approved", T0, "alice", "telegram")
        for i in range(600):
            later = basis_trade(f"P-{i:06X}")
            store.save_proposal(replace(later, created_at=later.created_at + timedelta(minutes=i + 1)))
        await reconcile(store, PaperBroker(cfg, store, clock), clock)
        assert store.get_proposal("P-OLD001").status == "failed"
        assert [sp.id for sp in store.proposals_with_status({"approved", "executing"})] == []


def test_the_futures_margin_rate_comes_from_the_config() -> None:
    reqs = [request(order(0, "BTC/USDT", "buy", "0.02", BTC)),
            request(order(1, "BTC/USDT:USDT", "sell", "0.02", BTC))]
    no_margin = Balances({"USDT": Decimal(5000)}, {"USDT": Decimal(0)})
    cfg = settings(execution={"futures_margin_rate": "0.5"})
    with Store.memory() as store:
        executor = Executor(cfg, store, PaperBroker(cfg, store, Clock()), market, Clock())
    assert executor.margin_rate == Decimal("0.5")
    with pytest.raises(ExecutionError, match=r"move 1,000\.50 USDT from the spot"):
        check_balances(reqs, no_margin, cfg, margin_rate=executor.margin_rate)
