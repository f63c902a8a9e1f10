"""The live broker alone against the loopback Binance: rounding, rejections, retries, look-ups."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.brokers import OrderRequest
from core.errors import ExecutionError
from tests.execution import order
from tests.execution.loopback import Rig, make_rig
from tests.fakes.exchange_hosts import BINANCE_FAPI, BINANCE_SPOT
from tests.fakes.exchange_orders import OrderDesk
from tests.fakes.exchange_server import FakeExchange, Fault
from tests.fakes.exchange_state import Behaviour

BTC_SPOT = Decimal("106647.69847826")  # the recorded index, which the loopback serves as spot
BTC_MARK = Decimal("106599.9")


async def spot_buy(rig: Rig, amount: str, cid: str = "premia-PTEST01-0") -> OrderRequest:
    return await rig.broker.prepare(order(0, "BTC/USDT", "buy", amount, BTC_SPOT), Decimal(amount),
                                    BTC_SPOT, leg=0, client_order_id=cid)


async def test_prepare_rounds_to_the_market_and_checks_the_minimum_after(rig: Rig) -> None:
    r = await spot_buy(rig, "0.0123456789")
    assert r.amount == Decimal("0.01234")  # spot step 0.00001, rounded down
    assert r.price == Decimal("106701.02")  # 5 bps through, on the 0.01 tick
    perp = order(1, "BTC/USDT:USDT", "sell", "0.0129", BTC_MARK)
    fr = await rig.broker.prepare(perp, Decimal("0.0129"), BTC_MARK, leg=1, client_order_id="x-1")
    assert (fr.amount, fr.price) == (Decimal("0.012"), Decimal("106546.6"))
    # 0.00009 BTC is 9.6 USDT: under Binance's 10 USDT minimum once rounded, so never sent.
    with pytest.raises(ExecutionError, match="under the minimum of 10"):
        await spot_buy(rig, "0.000099")
    with pytest.raises(ExecutionError, match="smallest amount"):
        await spot_buy(rig, "0.000001")
    assert rig.creates() == []


async def test_post_only_rests_behind_the_market_and_fills_when_it_comes(exchange: FakeExchange,
                                                                         desk: OrderDesk) -> None:
    rig = await make_rig(exchange, desk, execution={"post_only": True})
    try:
        r = await spot_buy(rig, "0.01")
        assert r.post_only and r.price == Decimal("106594.37")  # 5 bps under the market
        report = await rig.broker.submit(r)
        assert report.status == "open" and rig.creates("spot")[0]["type"] == "LIMIT_MAKER"
        desk.set_price("spot", "BTCUSDT", "106500")
        filled = await rig.broker.wait(r, 2)
        assert filled.status == "filled" and filled.avg_price == Decimal("106594.37")
    finally:
        await rig.close()


async def test_insufficient_balance_is_a_rejection(exchange: FakeExchange) -> None:
    desk = OrderDesk(exchange)
    desk.fund(spot={"USDT": "100"})
    rig = await make_rig(exchange, desk)
    try:
        report = await rig.broker.submit(await spot_buy(rig, "0.02"))
        assert report.status == "rejected" and "insufficient balance" in report.message
        assert report.filled == 0 and len(rig.creates("spot")) == 1
    finally:
        await rig.close()


async def test_minimum_notional_rejection_minus_1013(rig: Rig) -> None:
    rig.desk.min_notional["spot"] = Decimal("5000")  # the exchange raised its minimum meanwhile
    report = await rig.broker.submit(await spot_buy(rig, "0.02"))
    assert report.status == "rejected"
    assert "minimum order size" in report.message and "-1013" in report.message


async def test_futures_margin_rejection(exchange: FakeExchange) -> None:
    desk = OrderDesk(exchange)
    desk.fund(futures={"USDT": "10"})
    rig = await make_rig(exchange, desk)
    try:
        perp = order(1, "BTC/USDT:USDT", "sell", "0.05", BTC_MARK)
        r = await rig.broker.prepare(perp, Decimal("0.05"), BTC_MARK, leg=1, client_order_id="premia-PM-1")
        report = await rig.broker.submit(r)
        assert report.status == "rejected" and "insufficient balance" in report.message
    finally:
        await rig.close()


async def test_rate_limit_is_retried_after_a_look_up(rig: Rig) -> None:
    body = {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."}
    rig.server.inject(BINANCE_SPOT, "/api/v3/order", Fault("status", 429, body, {"Retry-After": "0"},
                                                           times=1), method="POST")
    report = await rig.broker.submit(await spot_buy(rig, "0.02"))
    assert report.status == "filled"
    posts = [q for q in rig.server.requests_to(BINANCE_SPOT, "/api/v3/order") if q.method == "POST"]
    looks = [q for q in rig.server.requests_to(BINANCE_SPOT, "/api/v3/order") if q.method == "GET"]
    assert len(posts) == 2 and len(rig.creates("spot")) == 1  # the 429 never reached the desk
    assert looks and looks[0].started < posts[1].started  # looked up before sending again


async def test_a_lost_answer_is_found_by_client_order_id_not_sent_again(rig: Rig) -> None:
    rig.desk.script(Behaviour("lost"), venue="usdm")
    perp = order(1, "BTC/USDT:USDT", "sell", "0.02", BTC_MARK)
    r = await rig.broker.prepare(perp, Decimal("0.02"), BTC_MARK, leg=1, client_order_id="premia-PLOST1-1")
    report = await rig.broker.submit(r)
    assert report.status == "filled" and report.filled == Decimal("0.02")
    assert report.fee == Decimal("0.02") * BTC_MARK * Decimal("0.0004")  # from the trades
    assert [c["newClientOrderId"] for c in rig.creates("usdm")] == ["premia-PLOST1-1"]
    assert rig.desk.state.positions["BTCUSDT"][0] == Decimal("-0.02")
    assert rig.server.requests_to(BINANCE_FAPI, "/fapi/v1/userTrades")


async def test_lookup_and_cancel_by_client_order_id(rig: Rig) -> None:
    rig.desk.script(Behaviour("rest"), venue="spot")
    r = await spot_buy(rig, "0.02", "premia-PLOOK1-0")
    assert (await rig.broker.submit(r)).status == "open"
    seen = await rig.broker.lookup("premia-PLOOK1-0", r.payload())
    assert seen.status == "open" and seen.exchange_order_id
    gone = await rig.broker.lookup("premia-PNEVER-0", r.payload())
    assert gone.status == "not_sent"
    canceled = await rig.broker.cancel_by_id("premia-PLOOK1-0", r.payload())
    assert canceled.status == "canceled" and canceled.filled == 0
    # Cancelling again (already gone) still reports the truth.
    assert (await rig.broker.cancel_by_id("premia-PLOOK1-0", r.payload())).status == "canceled"


async def test_balances_value_what_is_locked_in_orders_and_margin(rig: Rig) -> None:
    rig.desk.script(Behaviour("rest"), venue="spot")
    await rig.broker.submit(await spot_buy(rig, "0.02", "premia-PLOCK1-0"))
    balances = await rig.broker.balances()
    locked = Decimal("0.02") * Decimal("106701.02")
    assert balances.spot["USDT"] == Decimal(10_000) - locked  # free, for the checks
    assert balances.portfolio().balances["USDT"] == Decimal(15_000)  # held, for valuation
