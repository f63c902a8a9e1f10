"""Applying fills: emptied balances go, the quote stays, nothing may go negative."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.book import Fill, apply_fill, apply_fills, funding_payment, funding_payments
from core.errors import ExecutionError
from core.models import FundingPrint, Order, Portfolio, Position
from tests.scenarios import AS_OF


def spot(side: str, amount: str, asset: str = "BTC") -> Order:
    return Order(market="spot", symbol=f"{asset}/USDT", asset=asset, side=side, amount=D(amount),
                 notional=D(0), limit_price=D(0), reason="test")


def test_selling_everything_drops_the_balance_and_keeps_the_order_of_the_rest():
    book = Portfolio({"USDT": D(0), "BTC": D("0.5"), "ETH": D(2)})
    after = apply_fill(book, Fill(spot("sell", "0.5"), D("0.5"), D(100), D(1)), "USDT")
    assert list(after.balances.items()) == [("USDT", D(49)), ("ETH", D(2))]
    spent = apply_fill(after, Fill(spot("buy", "0.49"), D("0.49"), D(100), D(0)), "USDT")
    assert list(spent.balances.items()) == [("USDT", D(0)), ("ETH", D(2)), ("BTC", D("0.49"))]


def test_a_fill_that_would_overdraw_names_every_negative_balance():
    book = Portfolio({"USDT": D(10), "BTC": D("0.1")})
    with pytest.raises(ExecutionError, match="USDT -90"):
        apply_fill(book, Fill(spot("buy", "1"), D(1), D(100), D(0)), "USDT")
    with pytest.raises(ExecutionError, match=r"BTC -0\.9"):
        apply_fill(book, Fill(spot("sell", "1"), D(1), D(100), D(0)), "USDT")


def test_funding_payments_are_the_payments_one_by_one():
    short = Position("BTC/USDT:USDT", D("-1.23456789"))
    prints = [FundingPrint(AS_OF, D(r)) for r in ("0.0001", "-0.00003", "0.000123456")]
    mark = D("61234.5678")
    assert funding_payments(short, mark, prints) == [funding_payment(short, mark, p.rate) for p in prints]


legs = st.lists(st.tuples(st.sampled_from(["BTC", "ETH", "perp"]), st.sampled_from(["buy", "sell"]),
                          st.sampled_from(["0.5", "1", "2"]), st.sampled_from(["0", "1"])),
                max_size=8)


@given(legs=legs)
def test_apply_fills_is_apply_fill_one_after_another(legs):
    book = Portfolio({"BTC": D(1), "USDT": D(300), "ETH": D("0.5")})
    fills = []
    for asset, side, amount, fee in legs:
        if asset == "perp":
            order = Order(market="perp", symbol="BTC/USDT:USDT", asset="BTC", side=side, amount=D(amount),
                          notional=D(0), limit_price=D(0), reason="test")
        else:
            order = spot(side, amount, asset)
        fills.append(Fill(order, D(amount), D(100), D(fee)))
    one_by_one: Portfolio | Exception = book
    for fill in fills:
        try:
            one_by_one = apply_fill(one_by_one, fill, "USDT")
        except ExecutionError as exc:
            one_by_one = exc
            break
    try:
        together: Portfolio | Exception = apply_fills(book, fills, "USDT")
    except ExecutionError as exc:
        together = exc
    if isinstance(one_by_one, Exception):
        assert str(together) == str(one_by_one)
    else:
        assert isinstance(together, Portfolio)
        assert list(together.balances.items()) == list(one_by_one.balances.items())
        assert together.positions == one_by_one.positions
