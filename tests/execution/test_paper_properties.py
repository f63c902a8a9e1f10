"""Property: any sequence of approved proposals leaves a paper book that never went negative and
kept its value apart from fees and slippage; no proposal executes more than once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.brokers import PaperBroker
from core.codec import portfolio_from_dict
from core.errors import ExecutionError
from core.execution import Executor
from core.models import MarketSnapshot, Order
from core.portfolio import value_portfolio
from core.store import Store
from tests.execution import Clock, order, proposal, snapshot
from tests.execution import settings as make_settings

SYMBOLS = ("BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT")

# Sized in money (as the planner does), mostly above the 10 USDT minimum and below the caps.
notionals = st.decimals(min_value=Decimal("5"), max_value=Decimal("6000"), places=2)
legs = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(("buy", "sell")), notionals),
                min_size=1, max_size=3)
proposals = st.lists(st.tuples(legs, st.integers(min_value=1, max_value=3)), min_size=1, max_size=5)
prices = st.tuples(st.decimals(min_value=Decimal("1000"), max_value=Decimal("150000"), places=2),
                   st.decimals(min_value=Decimal("10"), max_value=Decimal("5000"), places=2))
starts = st.tuples(st.decimals(min_value=Decimal("0"), max_value=Decimal("30000"), places=2),
                   st.decimals(min_value=Decimal("0"), max_value=Decimal("0.2"), places=4),
                   st.decimals(min_value=Decimal("0"), max_value=Decimal("20"), places=3))


def value_of(store: Store, snap: MarketSnapshot) -> Decimal:
    book = portfolio_from_dict(store.get_paper_book())
    assert all(v >= 0 for v in book.balances.values()), book.balances
    return value_portfolio(book, snap, ["USDT"]).value


async def run(plan: list, px: tuple[Decimal, Decimal], start: tuple[Decimal, Decimal, Decimal]) -> None:
    btc, eth = px
    snap = snapshot({"BTC": btc, "ETH": eth})
    cfg = make_settings(paper={"balances": {"USDT": str(start[0]), "BTC": str(start[1]),
                                            "ETH": str(start[2])}})
    clock = Clock()

    async def market() -> MarketSnapshot:
        return snap

    with Store.memory() as store:
        broker = PaperBroker(cfg, store, clock)
        ex = Executor(cfg, store, broker, market, clock)
        await ex.reconcile()
        store.put_paper_book({"balances": {"USDT": str(start[0]), "BTC": str(start[1]),
                                           "ETH": str(start[2])}, "positions": []}, clock())
        before = value_of(store, snap)
        for i, (spec, presses) in enumerate(plan):
            pid = f"P-{i:06d}"
            orders: list[Order] = []
            for leg, (sym, side, notional) in enumerate(spec):
                price = btc if sym.startswith("BTC") else eth
                qty = (notional / price).quantize(Decimal("0.00000001"))
                orders.append(order(leg, sym, side, str(qty), price))
            store.save_proposal(proposal(pid, *orders, prices={"BTC": btc, "ETH": eth}))
            executed = 0
            for _ in range(presses):
                try:
                    report = await ex.approve(pid, "alice", "telegram", "1")
                except ExecutionError as exc:
                    event(f"refused: {str(exc).split(':')[0][:40]}")
                    continue
                executed += 1
                event(f"executed: {report.status}")
                # Value moves only by fees and by the slippage of spot fills.
                cost = report.fees
                for f in report.fills:
                    if f.market == "spot" and f.filled:
                        ref = btc if f.symbol.startswith("BTC") else eth
                        cost += f.filled * abs(f.avg_price - ref)
                after = value_of(store, snap)
                assert abs(after - (before - cost)) <= Decimal("1e-12") * max(Decimal(1), before)
                before = after
            assert executed <= 1
            executing = [r for r in store.audit_log(1000)
                         if r["action"] == "proposal.executing" and r["subject"] == pid]
            assert len(executing) == executed
            assert len(store.orders_for(pid)) <= len(orders)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=proposals, px=prices, start=starts)
def test_paper_book_conserves_value_and_never_goes_negative(plan, px, start) -> None:
    asyncio.run(run(plan, px, start))
