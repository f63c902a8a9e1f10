"""Live mode end to end: real ccxt against the loopback Binance, spot first then the hedge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ExecutionError
from tests.execution.loopback import Rig, make_rig
from tests.fakes.exchange_hosts import BINANCE_FAPI
from tests.fakes.exchange_orders import OrderDesk
from tests.fakes.exchange_server import FakeExchange, Fault
from tests.fakes.exchange_state import Behaviour

SPOT_FEE = Decimal("0.001")


async def test_basis_trade_fills_and_the_hedge_matches_the_spot_fill(rig: Rig) -> None:
    p = await rig.basis("P-LIVE01", "0.02")
    report = await rig.executor.approve(p.id, "alice", "telegram", "42")
    assert report.status == "executed", report.text()
    spot_req, perp_req = rig.creates("spot"), rig.creates("usdm")
    assert [r["newClientOrderId"] for r in spot_req] == ["premia-PLIVE01-0"]
    assert [r["newClientOrderId"] for r in perp_req] == ["premia-PLIVE01-1"]
    spot_price = p.orders[0].notional / p.orders[0].amount
    sent = spot_req[0]
    assert (sent["type"], sent["side"], sent["timeInForce"]) == ("LIMIT", "BUY", "GTC")
    assert sent["quantity"] == "0.02"
    # Limit at the configured 5 bps through the market, on the market's 0.01 tick.
    assert Decimal(sent["price"]) == (spot_price * Decimal("1.0005")).quantize(Decimal("0.01"))
    # Binance takes the spot fee in BTC: 0.01998 BTC arrive, so the hedge is 0.019 contracts
    # (the futures step is 0.001) rather than 0.02: delta-neutral to within one step.
    assert rig.desk.state.free("BTC") == Decimal("0.02") * (1 - SPOT_FEE)
    assert perp_req[0]["quantity"] == "0.019" and perp_req[0]["side"] == "SELL"
    assert rig.desk.state.positions["BTCUSDT"][0] == Decimal("-0.019")
    spot, perp = report.fills
    assert (spot.filled, spot.status) == (Decimal("0.02"), "filled")
    assert spot.fee == pytest.approx(Decimal("0.00002") * spot.avg_price)
    assert (perp.filled, perp.status) == (Decimal("0.019"), "filled") and "re-sized" in perp.message
    assert report.net_futures_exposure_after < 0 and report.funding != 0
    rows = rig.store.orders_for(p.id)
    assert [(r["status"], r["filled"]) for r in rows] == [("filled", Decimal("0.02")),
                                                          ("filled", Decimal("0.019"))]
    assert all(r["exchange_order_id"] for r in rows)
    assert rig.server.unmatched == []


async def test_partial_fill_with_cancel_and_report(exchange: FakeExchange, desk: OrderDesk) -> None:
    rig = await make_rig(exchange, desk, execution={"on_timeout": "cancel_report"})
    try:
        desk.script(Behaviour("partial", fraction=Decimal("0.5")), venue="spot")
        p = await rig.basis("P-PART01", "0.02")
        report = await rig.executor.approve(p.id, "alice", "telegram", "42")
        assert report.status == "partially_executed"
        spot, perp = report.fills
        assert (spot.filled, spot.status) == (Decimal("0.01"), "partial")
        assert "timed out" in spot.message
        # The hedge follows the 0.00999 BTC that arrived.
        assert perp.filled == Decimal("0.009") and rig.creates("usdm")[0]["quantity"] == "0.009"
        order = rig.store.get_order("premia-PPART01-0")
        assert (order["status"], order["filled"]) == ("canceled", Decimal("0.01"))
        assert len(rig.creates("spot")) == 1 and rig.store.get_proposal(p.id).status == "partially_executed"
        assert not any(o.open for o in desk.state.orders.values())
        # The locked USDT of the canceled half is free again.
        assert desk.state.spot["USDT"][1] == 0
    finally:
        await rig.close()


async def test_timeout_cancels_and_replaces_the_rest(exchange: FakeExchange, desk: OrderDesk) -> None:
    rig = await make_rig(exchange, desk, execution={"on_timeout": "cancel_replace", "max_replaces": 2})
    try:
        desk.script(Behaviour("partial", fraction=Decimal("0.25")), Behaviour("rest"), venue="spot")
        p = await rig.basis("P-REPL01", "0.02")
        report = await rig.executor.approve(p.id, "alice", "telegram", "42")
        assert report.status == "executed", report.text()
        ids = [r["newClientOrderId"] for r in rig.creates("spot")]
        assert ids == ["premia-PREPL01-0", "premia-PREPL01-0r1", "premia-PREPL01-0r2"]
        assert [r["quantity"] for r in rig.creates("spot")] == ["0.02", "0.015", "0.015"]
        spot = report.fills[0]
        assert spot.filled == Decimal("0.02") and spot.status == "filled"
        assert spot.client_order_ids == tuple(ids)
        statuses = [(o["client_order_id"], o["status"], o["filled"]) for o in rig.store.orders_for(p.id)
                    if o["leg"] == 0]
        assert statuses == [("premia-PREPL01-0", "canceled", Decimal("0.005")),
                            ("premia-PREPL01-0r1", "canceled", Decimal("0")),
                            ("premia-PREPL01-0r2", "filled", Decimal("0.015"))]
    finally:
        await rig.close()


async def test_exchange_rejection_fails_the_proposal_and_skips_the_hedge(rig: Rig) -> None:
    rig.desk.script(Behaviour("reject", code=-2010,
                              msg="Account has insufficient balance for requested action."), venue="spot")
    p = await rig.basis("P-REJ001")
    report = await rig.executor.approve(p.id, "alice", "telegram", "42")
    assert report.status == "failed"
    spot, perp = report.fills
    assert spot.status == "rejected" and "insufficient balance" in spot.message
    assert perp.status == "skipped" and "did not fill" in perp.message
    assert rig.creates("usdm") == []
    assert rig.store.get_proposal(p.id).status == "failed"


async def test_wallet_shortfall_is_a_required_step_without_auto_transfer(exchange: FakeExchange) -> None:
    desk = OrderDesk(exchange)
    desk.fund(spot={"USDT": "10000"})  # nothing in the futures wallet
    rig = await make_rig(exchange, desk)
    try:
        p = await rig.basis("P-XFER01")
        with pytest.raises(ExecutionError, match=r"move [0-9,.]+ USDT from the spot to the futures wallet"):
            await rig.executor.approve(p.id, "alice", "telegram", "42")
        assert rig.creates() == [] and rig.store.get_proposal(p.id).status == "proposed"
    finally:
        await rig.close()


async def test_auto_transfer_moves_margin_after_the_spot_legs(exchange: FakeExchange) -> None:
    desk = OrderDesk(exchange)
    desk.fund(spot={"USDT": "10000"})
    rig = await make_rig(exchange, desk, execution={"auto_transfer": True})
    try:
        p = await rig.basis("P-XFER02")
        report = await rig.executor.approve(p.id, "alice", "telegram", "42")
        assert report.status == "executed", report.text()
        (transfer,) = desk.state.transfers
        assert transfer["type"] == "MAIN_UMFUTURE" and Decimal(transfer["amount"]) > 400
        assert any("Transferred" in m for m in report.messages)
        assert any(r["action"] == "transfer" for r in rig.store.audit_log())
    finally:
        await rig.close()


async def test_balances_come_from_both_wallets(rig: Rig) -> None:
    balances = await rig.broker.balances()
    assert balances.spot["USDT"] == Decimal("10000") and balances.futures["USDT"] == Decimal("5000")
    assert not balances.shared_wallet and balances.positions == ()
    assert balances.portfolio().balances["USDT"] == Decimal("15000")


async def test_futures_orders_refused_by_an_outage_are_never_blindly_resent(rig: Rig) -> None:
    rig.server.inject(BINANCE_FAPI, "/fapi/v1/order", Fault("status", 503), method="POST")
    p = await rig.basis("P-OUT001")
    report = await rig.executor.approve(p.id, "alice", "telegram", "42")
    assert report.status == "partially_executed"
    spot, perp = report.fills
    assert spot.status == "filled" and perp.status == "rejected"
    assert "not accepted by the exchange" in perp.message
    assert rig.creates("usdm") == []  # every try was answered 503 before reaching the desk
    looks = rig.server.requests_to(BINANCE_FAPI, "/fapi/v1/order")
    # Each re-send was preceded by a look-up by client order id.
    methods = [q.method for q in looks]
    assert methods.count("POST") == 4 and methods.count("GET") >= 3
    assert rig.store.get_order("premia-POUT001-1")["status"] == "not_sent"


async def test_exchange_gone_mid_execution_is_settled_by_the_next_reconcile(rig: Rig) -> None:
    for method in ("POST", "GET"):
        rig.server.inject(BINANCE_FAPI, "/fapi/v1/order", Fault("status", 503), method=method)
    rig.server.inject(BINANCE_FAPI, "/fapi/v1/openOrders", Fault("status", 503))
    p = await rig.basis("P-OUT002")
    with pytest.raises(ExecutionError, match=r"reconciled at the next start\. Do not approve it again"):
        await rig.executor.approve(p.id, "alice", "telegram", "42")
    assert rig.store.get_proposal(p.id).status == "executing"
    assert [o["client_order_id"] for o in rig.store.orders_in_flight()] == ["premia-POUT002-1"]
    rig.server.clear_faults()
    messages = await rig.executor.reconcile()
    assert rig.store.get_proposal(p.id).status == "partially_executed"
    assert any("settled as partially executed" in m for m in messages)
    assert rig.store.orders_in_flight() == [] and rig.creates("usdm") == []


async def test_an_answer_lost_in_an_outage_is_found_before_the_report(rig: Rig) -> None:
    # The hedge reaches the exchange, its answer is lost, and every look-up fails for a while:
    # 4 sends' worth of look-ups (4 tries each) inside submit, then the executor reconciles.
    rig.desk.script(Behaviour("lost"), venue="usdm")
    rig.server.inject(BINANCE_FAPI, "/fapi/v1/order", Fault("status", 503, times=16), method="GET")
    p = await rig.basis("P-OUT003")
    report = await rig.executor.approve(p.id, "alice", "telegram", "42")
    assert report.status == "executed", report.text()
    assert any("interrupted" in m for m in report.messages)
    perp = report.fills[1]
    assert perp.filled == Decimal("0.019") and perp.client_order_ids == ("premia-POUT003-1",)
    assert len(rig.creates("usdm")) == 1
