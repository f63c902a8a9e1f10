"""Every preset on real 2021–2022 history and on a simulated market; speed-ups change nothing."""

from __future__ import annotations

import gc
import math
import random
from datetime import date
from decimal import Decimal as D

import pytest

from core.backtest import STRATEGY, VARIANTS, preset_settings, run_backtest, run_presets, shared_replay
from core.backtest_parallel import book_cost, run_presets_parallel, split_by_cost
from core.backtest_sweep import run_sweep
from core.config import load_presets
from core.history_csv import load_history
from core.replay import Replay
from core.simulated_market import simulate_history
from tests.backtest.helpers import make_settings

PRESETS = list(load_presets())


@pytest.fixture(scope="module")
def simulated():
    return simulate_history(["BTC", "ETH"], date(2023, 1, 1), 240, seed=11)


def _sane(result, days: int) -> None:
    assert set(result.runs) == set(VARIANTS)
    for run in result.runs.values():
        assert run.days == days
        assert run.final_value > 0
        perf = run.performance
        assert all(math.isfinite(x) for x in (perf.cagr, perf.sharpe, perf.volatility, perf.turnover))
        assert 0 <= perf.max_drawdown.depth < 1
        assert run.fees >= 0 and run.slippage >= 0
        assert run.unfilled == 0
    strategy = result.strategy
    assert strategy.rebalances >= 1 and strategy.regime_days


def test_every_preset_runs_on_real_2021_2022_history(shared_data):
    settings = make_settings()
    h = load_history(shared_data, ["BTC", "ETH"], date(2021, 1, 1), date(2022, 12, 31))
    results = run_presets(h, settings, PRESETS, None, None)
    for result in results:
        _sane(result, 730)
    by = {r.preset: r.strategy for r in results}
    # Real funding was mostly positive: the hedged yield presets earned it, net long books paid it.
    assert by["yield-optimization"].funding > 0
    assert by["aggressive-growth"].funding < 0
    assert by["accumulation"].regime_days["funding_regime"].get("high", 0) > 0


def test_every_preset_runs_on_a_simulated_market(simulated):
    for result in run_presets(simulated, make_settings(), PRESETS, None, None):
        _sane(result, 240)


def test_lockstep_parallel_and_separate_runs_agree(simulated):
    settings = make_settings()
    together = run_presets(simulated, settings, PRESETS, None, None, baselines=False)
    parallel = run_presets_parallel(simulated, settings, PRESETS, None, None, baselines=False)
    assert gc.get_freeze_count() == 0  # the objects frozen for the fork are handed back to the collector
    for a, b in zip(together, parallel, strict=True):
        assert a.preset == b.preset and a.strategy.equity == b.strategy.equity
    for preset in ("accumulation", "aggressive-growth"):
        alone = run_backtest(simulated, settings, preset, None, None, baselines=False)
        assert alone.strategy.equity == next(r for r in together if r.preset == preset).strategy.equity


def test_books_split_over_two_processes_give_the_results_of_one_pass(simulated):
    settings = make_settings()
    for presets in (PRESETS, ["defensive"]):  # one preset's four books split too
        assert run_presets_parallel(simulated, settings, presets, None, None) == run_presets(
            simulated, settings, presets, None, None)


def test_trimmed_windows_give_the_same_results_as_live_sized_snapshots(simulated):
    settings = make_settings()
    live = Replay(simulated, settings, funding_days=45, closes_days=90)
    for preset in PRESETS:
        fast = run_backtest(simulated, settings, preset, None, None, baselines=False)
        full = run_backtest(simulated, settings, preset, None, None, baselines=False, replay=live)
        assert fast.strategy.equity == full.strategy.equity, preset
        assert fast.strategy.regime_days == full.strategy.regime_days, preset


def test_the_books_split_by_estimated_cost_evenly_and_always_the_same_way():
    settings = make_settings()
    chosen = [preset_settings(settings, p) for p in PRESETS]
    for variants in (VARIANTS, (STRATEGY,)):
        costs = [book_cost(s, v) for s in chosen for v in variants]
        groups = split_by_cost(costs)
        assert sorted(i for g in groups for i in g) == list(range(len(costs)))
        loads = [sum(costs[i] for i in g) for g in groups]
        # No move of one book between the groups would even them out more.
        assert all(max(loads[k] - costs[i], loads[1 - k] + costs[i]) >= max(loads) - 1e-9
                   for k, g in enumerate(groups) for i in g)
        assert groups == split_by_cost(costs)
    # Without baselines the premium table, the dearest preset, shares its process with fewer.
    mine, theirs = split_by_cost([book_cost(s) for s in chosen])
    premium = PRESETS.index("premium-daa")
    assert len(mine if premium in mine else theirs) < len(theirs if premium in mine else mine)


def test_a_split_by_cost_is_the_most_even_one_and_the_lighter_group_comes_first():
    assert split_by_cost([5, 1, 1, 3]) == ([0], [1, 2, 3])  # even: the first set found to make 5
    assert split_by_cost([3, 3, 2, 2, 2]) == ([0, 1], [2, 3, 4])
    assert split_by_cost([9, 1]) == ([1], [0])
    assert split_by_cost([2.5, 3.5]) == ([0], [1])
    assert split_by_cost([1]) == ([], [0])
    costs = [random.Random(i).uniform(0.3, 2) for i in range(28)]  # 7 presets' books
    mine, theirs = split_by_cost(costs)
    assert sorted(mine + theirs) == list(range(28))
    assert abs(sum(costs[i] for i in theirs) - sum(costs[i] for i in mine)) < 0.1  # in twentieths
    assert split_by_cost(costs) == (mine, theirs)


def test_a_dearer_rule_makes_a_dearer_book():
    settings = make_settings()
    costs = {p: book_cost(preset_settings(settings, p)) for p in PRESETS}
    assert max(costs, key=costs.__getitem__) == "premium-daa"
    assert costs["balanced-aggression"] < costs["aggressive-growth"]
    # A baseline trades on drift alone; with hedged or futures legs to settle it costs more.
    assert book_cost(preset_settings(settings, "defensive"), "monthly") < costs["defensive"]
    assert book_cost(preset_settings(settings, "premium-daa"), "monthly") < book_cost(
        preset_settings(settings, "defensive"), "monthly")


def test_a_band_and_fee_sweep_trades_less_with_wider_bands_and_pays_more_with_higher_fees(simulated):
    settings = make_settings()
    points = run_sweep(simulated, settings, "balanced-aggression", None, None, variant="bands-only",
                       bands=[D(1), D(5), D(20)], fee_levels=[(D(2), D(2)), (D(25), D(10))])
    assert len(points) == 6
    low, high = points[:3], points[3:]
    assert [p.band_pp for p in low] == [D(1), D(5), D(20)]
    assert low[0].result.rebalances >= low[1].result.rebalances >= low[2].result.rebalances
    for cheap, dear in zip(low, high, strict=True):
        assert dear.result.fees > cheap.result.fees
    same = run_sweep(simulated, settings, "balanced-aggression", None, None, variant="bands-only",
                     bands=[D(5)], fee_levels=[(D(25), D(10))], parallel=False)
    assert same[0].result.equity == high[1].result.equity


def test_shared_replay_covers_the_widest_window_of_the_presets():
    settings = make_settings()
    replay = shared_replay(simulate_history(["BTC", "ETH"], date(2023, 1, 1), 30, seed=1), settings, PRESETS)
    assert replay.funding_days == 16  # accumulation holds 14 days (plus two spare)
    assert replay.closes_days == 61   # defensive judges a 60-day low (plus one)
