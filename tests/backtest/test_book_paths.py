"""A backtest book's shortcuts change nothing: each preset's run equals one stepped the long way.

The long way builds every piece afresh each day — a new Evaluator (so no rule, target or drift
row is remembered), a copy of the states, a full Proposal from `plan`, funding paid print by
print — and counts regime days day by day. The runs must agree to the last digit.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from core.backtest import STRATEGY, run_presets, shared_replay, trading_days
from core.backtest_sim import Simulation
from core.book import funding_payment, variation_margin
from core.config import load_presets
from core.evaluate import Evaluator
from core.models import ZERO, Portfolio
from core.planner import plan
from core.portfolio import position_price
from core.simulated_market import simulate_history
from tests.backtest.helpers import make_settings

PRESETS = list(load_presets())
INITIAL = D(100_000)


@pytest.fixture(scope="module")
def market():
    return simulate_history(["BTC", "ETH"], date(2023, 1, 1), 300, seed=5)


def settle_print_by_print(sim: Simulation, snap) -> None:
    """Simulation.settle as first written: one funding payment and one ledger entry at a time."""
    if sim.portfolio.positions and sim.last_as_of is not None:
        total = ZERO
        for pos in sim.portfolio.positions:
            mark = position_price(pos, snap)
            if mark is None:
                continue
            if pos.symbol in sim.replay.perp_symbol_set:
                for p in sim.replay.funding_between(pos.symbol, sim.last_as_of, snap.as_of):
                    paid = funding_payment(pos, mark, p.rate)
                    sim.ledger.funding += paid
                    total += paid
            pnl = variation_margin(pos, sim.marks.get(pos.symbol, mark), mark)
            sim.ledger.futures_pnl += pnl
            total += pnl
            sim.marks[pos.symbol] = mark
        if total:
            balances = dict(sim.portfolio.balances)
            balances[sim.quote] = balances.get(sim.quote, ZERO) + total
            sim.portfolio = Portfolio(balances, sim.portfolio.positions)
    sim.last_as_of = snap.as_of
    if sim.portfolio.balances.get(sim.quote, ZERO) < 0:
        sim._cover(snap)


def long_way(replay, settings, days):
    """One strategy book stepped with nothing remembered between days."""
    sim = Simulation(settings, settings.strategy, replay, Portfolio({settings.quote: INITIAL}))
    states: dict = {}
    equity, regime_days, proposals = [], {}, 0
    for day in days:
        snap = replay.snapshot(day)
        settle_print_by_print(sim, snap)
        if sim.bankrupt:
            break
        ev = Evaluator(settings, settings.strategy).evaluate(snap, sim.portfolio, dict(states))
        states = dict(ev.states)
        for key, state in states.items():
            rule = key.split(":", 1)[0]
            regime_days.setdefault(rule, {})
            regime_days[rule][state.state] = regime_days[rule].get(state.state, 0) + 1
        value = ev.valuation.value
        if ev.triggers:
            proposals += 1
            proposal = plan(ev, snap, sim.portfolio, settings, strategy=settings.strategy.name,
                            proposal_id="LONG")
            if proposal.orders and sim.execute(proposal.orders, snap):
                value = None
        equity.append((day, value if value is not None else sim.value(snap)))
    return equity, sim.ledger, regime_days, proposals


def test_every_preset_matches_the_long_way(market):
    settings = make_settings()
    replay = shared_replay(market, settings, PRESETS)
    days, _ = trading_days(replay, None, None)
    results = run_presets(market, settings, PRESETS, None, None, baselines=False, replay=replay)
    for preset, result in zip(PRESETS, results, strict=True):
        run = result.runs[STRATEGY]
        chosen = make_settings(strategy={"preset": preset})
        equity, ledger, regime_days, proposals = long_way(replay, chosen, days)
        assert run.equity == tuple(equity), preset
        assert (run.fees, run.funding, run.futures_pnl, run.traded, run.slippage) == (
            ledger.fees, ledger.funding, ledger.futures_pnl, ledger.traded, ledger.slippage), preset
        assert run.proposals == proposals and run.orders == ledger.orders, preset
        assert run.regime_days == regime_days, preset
