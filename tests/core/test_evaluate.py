"""The evaluator's shortcuts: states handed back unchanged, the drift band without × 100, stablecoins."""

import json
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from core.evaluate import Evaluator, drift_rows, drift_triggers, evaluate
from core.models import Portfolio, Position
from core.planner import plan, plan_orders
from core.portfolio import outside_band, value_portfolio
from core.rules.base import Resting, RuleContext, RuleState
from core.rules.volatility import VolatilitySpike
from core.signals import funding_held_window
from core.snapshot_io import parse_snapshot
from tests.scenarios import FOUR, asset, four_assets, settings_for, snapshot, units


def parsed(doc):
    return parse_snapshot(json.loads(json.dumps(doc), parse_float=D))


def test_states_come_back_as_the_same_mapping_when_no_rule_moves():
    s = settings_for("balanced-aggression", FOUR)
    snap, portfolio, _ = parsed(snapshot(four_assets(), units({"BTC": 0.3, "USDT": 0.7})))
    evaluator = Evaluator(s)
    first = evaluator.evaluate(snap, portfolio, {})
    assert first.states  # every rule's state starts here
    second = evaluator.evaluate(snap, portfolio, first.states)
    assert second.states is first.states
    assert second == evaluate(snap, portfolio, s, first.states)


def test_a_state_change_makes_a_new_mapping_and_leaves_the_old_one_alone():
    s = settings_for("balanced-aggression", FOUR)
    snap, portfolio, _ = parsed(snapshot(four_assets(), units({"BTC": 0.3, "USDT": 0.7}), fear_greed=10))
    evaluator = Evaluator(s)
    fear = evaluator.evaluate(snap, portfolio, {})
    assert fear.states["fear_greed"].state == "fear"
    moved = {**fear.states, "fear_greed": RuleState("normal", snap.as_of)}
    before = dict(moved)
    again = evaluator.evaluate(snap, portfolio, moved)
    assert again.states is not moved and moved == before
    assert again.states["fear_greed"].state == "fear" and list(again.states) == list(moved)


def test_an_evaluator_kept_across_snapshots_agrees_with_fresh_ones():
    s = settings_for("premium-daa", FOUR)
    evaluator, states = Evaluator(s), {}
    for fg, btc in ((50, 0.3), (10, 0.6), (10, 0.2), (90, 0.25)):
        snap, portfolio, _ = parsed(snapshot(four_assets(), units({"BTC": btc, "USDT": 1 - btc}),
                                             fear_greed=fg))
        kept = evaluator.evaluate(snap, portfolio, states)
        fresh = Evaluator(s).evaluate(snap, portfolio, dict(states))
        assert (kept.triggers, kept.targets, kept.states, kept.warnings) == (
            fresh.triggers, fresh.targets, fresh.states, fresh.warnings)
        states = kept.states


def test_plan_orders_are_the_proposals_orders():
    s = settings_for("balanced-aggression", FOUR)
    snap, portfolio, _ = parsed(snapshot(four_assets(), units({"BTC": 0.6, "USDT": 0.4}), fear_greed=10))
    ev = evaluate(snap, portfolio, s, {})
    orders, _warnings = plan_orders(ev, snap, portfolio, s)
    assert orders and tuple(orders) == plan(ev, snap, portfolio, s, strategy="x").orders


fractions = st.decimals(min_value=D(0), max_value=D(1), allow_nan=False, places=28)


@given(value=st.decimals(min_value=D(1), max_value=D(10) ** 9, allow_nan=False, places=8),
       held=fractions, target=fractions, band=st.decimals(min_value=D("0.01"), max_value=D(49), places=2))
def test_the_drift_band_decides_like_outside_band(value, held, target, band):
    weight = held * value / value  # a weight as a division leaves it: 28 digits
    assert (abs(weight - target) > band / 100) == outside_band(weight, target, band)
    edge = weight + band / 100  # exactly on the band's edge: inside, both ways
    assert (abs(weight - edge) > band / 100) == outside_band(weight, edge, band)


def test_drift_rows_and_triggers_for_held_assets_outside_the_targets():
    s = settings_for("balanced-aggression", FOUR)
    snap, portfolio, _ = parsed(snapshot(four_assets(), units({"BTC": 0.3, "USDT": 0.7})))
    ev = evaluate(snap, portfolio, s, {})
    rows = drift_rows(ev.targets, ["BTC", "DOGE"])
    assert rows[1] == ("DOGE", 0, 0, False)
    triggers, scopes = drift_triggers(ev.valuation, ev.targets, D(5), ["SOL", "BTC"], ev.freshness)
    assert [t.asset for t in triggers] == sorted(t.asset for t in triggers) and scopes == {"spot"}


def test_stablecoins_as_a_set_value_like_a_list_and_delta_adds_futures_units():
    snap, _, _ = parsed(snapshot(four_assets(), {}))
    shorts = (Position("BTC/USDT:USDT", D("-0.2")), Position("BTC/USDT:USDT-250926", D("-1"), D("0.1")))
    portfolio = Portfolio({"USDT": D(1000), "USDC": D(500), "BTC": D("0.5")}, shorts)
    listed = value_portfolio(portfolio, snap, ["USDT", "USDC"])
    assert value_portfolio(portfolio, snap, frozenset({"USDT", "USDC"})) == listed
    assert value_portfolio(portfolio, snap, frozenset({"USDC"})) == listed  # the quote is always stable
    assert listed.stable_value == D(1500)
    assert listed.delta["BTC"] == D("0.5") - D("0.2") - D("0.1") and listed.delta["ETH"] == 0


def test_resting_slots_are_in_name_order_with_their_keys():
    resting = Resting("volatility_spike")
    assert resting.slots(["XRP", "BTC", "ETH"]) == (
        ("BTC", "volatility_spike:BTC"), ("ETH", "volatility_spike:ETH"), ("XRP", "volatility_spike:XRP"))
    assert resting.slots(("XRP", "BTC", "ETH")) is resting.slots(["XRP", "BTC", "ETH"])


def test_a_rule_at_rest_leaves_carried_keys_out_but_says_new_ones_and_effects():
    s = settings_for("balanced-aggression", FOUR)
    assets = four_assets()
    assets["SOL"] = asset(150, name="SOL", spike_last=7, spike_vol=0.03)  # 1.5× its baseline
    snap, portfolio, _ = parsed(snapshot(assets, units({"BTC": 0.3, "USDT": 0.7})))
    evaluator = Evaluator(s)
    ev = evaluator.evaluate(snap, portfolio, {})
    ctx = RuleContext(snapshot=snap, valuation=ev.valuation, base=ev.base, strategy=s.strategy,
                      now=snap.as_of, freshness=ev.freshness, resolve=evaluator.resolver(snap))
    rule = VolatilitySpike(s.strategy.rules.volatility_spike)
    assert [o.key for o in rule.evaluate(ctx, {})] == [f"volatility_spike:{a}" for a in sorted(FOUR)]
    assert rule.evaluate(ctx, ev.states) == []  # all carried over, nothing to apply
    spiked = {**ev.states, "volatility_spike:SOL": RuleState("spike", snap.as_of)}
    [held] = rule.evaluate(ctx, spiked)  # not calm enough to reset: the spike holds its effect
    assert held.key == "volatility_spike:SOL" and held.effect is not None and held.trigger is None


def test_rules_with_equal_funding_windows_share_one_per_evaluation():
    s = settings_for("balanced-aggression", FOUR, rules={"negative_funding": {"enabled": True},
                                                          "funding_extreme": {"enabled": True}})
    snap, portfolio, _ = parsed(snapshot(four_assets(), units({"BTC": 0.3, "USDT": 0.7})))
    evaluator = Evaluator(s)
    ev = evaluator.evaluate(snap, portfolio, {})
    ctx = RuleContext(snapshot=snap, valuation=ev.valuation, base=ev.base, strategy=s.strategy,
                      now=snap.as_of, freshness=ev.freshness, resolve=evaluator.resolver(snap))
    for rule in evaluator.rules:
        rule.evaluate(ctx, {})
    assert sorted(ctx.windows) == [(f"{a}/USDT:USDT", 3, "8h") for a in sorted(FOUR)]
    perp = snap.assets["BTC"].perp
    assert ctx.held_window(perp, 3, "8h") == funding_held_window(perp, snap.as_of, 3, "8h",
                                                                  s.strategy.rules.persistence)
