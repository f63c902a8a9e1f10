"""Seed 002 on a perpetual: the premium regime moves on a premium that persists, not on one print.

Each 8-hour funding print is one payment; the table is judged on the settled prints of the last
`hold_days` (3 days) by the strategy's persistence rule (mean past the threshold, and at least
80% of the prints past it). A dated future's basis still moves the table on its own quote
(tests/core/test_rules.py keeps those golden numbers).
"""

from datetime import timedelta
from decimal import Decimal as D

from core.rules import RuleState
from core.rules.premium import DEFAULT_HOLD_DAYS, hold_days
from tests.scenarios import AS_OF, asset, run, settings_for, snapshot

KEY = "premium_regime:BTC"
# 0.01%/8h = 10.95% APR (basis band); 0.02%/8h = 21.9% (above 20%); 0.0005%/8h = 0.55% (below 5%)
NORMAL, HOT, COLD, DEEP = 0.0001, 0.0002, 0.000005, -0.0003


def _run(history_rate, last=None, state=None, interval_h=8, prints=None):
    """premium-daa on a BTC perpetual (no dated future): history at `history_rate`, the last
    settled print at `last`, starting from regime `state`."""
    s = settings_for("premium-daa")
    btc = asset(50000, rate=last if last is not None else history_rate, history_rate=history_rate,
                interval_h=interval_h)
    history = btc["perp"]["funding_history"]
    if last is not None:
        history[-1][1] = f"{last:.8f}"
    if prints is not None:
        del history[:-prints]
    doc = snapshot({"BTC": btc}, {"BTC": 1.4, "USDT": 30000})
    states = {KEY: RuleState(state, AS_OF - timedelta(days=30))} if state else None
    ev, _ = run(doc, s, states)
    return ev, [t for t in ev.triggers if t.rule == "premium_regime"]


def test_the_window_is_three_days_of_settled_prints():
    assert DEFAULT_HOLD_DAYS == 3
    assert hold_days(settings_for("premium-daa").strategy.rules.premium_regime) == 3
    # …and the config can change it.
    longer = settings_for("premium-daa", rules={"premium_regime": {"hold_days": 5}})
    assert hold_days(longer.strategy.rules.premium_regime) == 5


def test_one_print_above_20pct_does_not_flip_premium_daa_to_derisk():
    ev, fired = _run(NORMAL, last=0.0005, state="basis")  # one 54.75% print among 10.95% ones
    assert not fired and ev.states[KEY].state == "basis"
    # From the baseline the same window opens the basis trade, not the de-risk: its premium held
    # above 5%, while a single print above 20% is 1 of 9.
    ev, [t] = _run(NORMAL, last=0.0005)
    assert (t.state_from, t.state_to) == ("baseline", "basis")
    assert "mean of 9 funding prints of BTC/USDT:USDT over 3 days" in t.explanation


def test_premium_above_20pct_held_for_three_days_de_risks_premium_daa_70_30_to_50_50():
    ev, [t] = _run(HOT, state="basis")
    assert (t.state_from, t.state_to) == ("basis", "derisk")
    assert t.values["premium_apr"] == "21.90%"
    assert ev.targets.spot["BTC"] == D("0.50")


def test_one_print_below_5pct_does_not_reverse_the_basis_trade():
    ev, fired = _run(NORMAL, last=COLD, state="basis")
    assert not fired and ev.states[KEY].state == "basis"
    assert ev.targets.hedged["BTC"] > 0


def test_premium_below_5pct_held_reverses_basis_and_derisk_to_the_baseline():
    for regime in ("basis", "derisk"):
        ev, [t] = _run(COLD, state=regime)
        assert (t.state_from, t.state_to) == (regime, "baseline")
        assert ev.targets.spot["BTC"] == D("0.70")


def test_between_5_and_20pct_de_risk_holds_until_the_premium_persists_below_5pct():
    ev, fired = _run(NORMAL, state="derisk")
    assert not fired and ev.states[KEY].state == "derisk"


def test_one_deeply_negative_print_does_not_start_accumulating_but_a_persistent_discount_does():
    ev, fired = _run(NORMAL, last=DEEP)  # one −32.85% print among 10.95% ones
    assert not fired and ev.states[KEY].state == "baseline"
    ev, [t] = _run(DEEP)
    assert t.state_to == "accumulate" and ev.targets.spot["BTC"] == D("0.80")


def test_a_mixed_window_keeps_the_regime_either_way():
    # Half the prints above 20%, half at 10.95%: not held above 20% (share 50% < 80%), and not
    # held below 5% either, so a de-risk neither starts nor ends.
    s = settings_for("premium-daa")
    btc = asset(50000, rate=HOT, history_rate=NORMAL)
    for i, row in enumerate(btc["perp"]["funding_history"]):
        if i % 2:
            row[1] = f"{HOT:.8f}"
    doc = snapshot({"BTC": btc}, {"BTC": 1.4, "USDT": 30000})
    for regime in ("basis", "derisk"):
        ev, _ = run(doc, s, {KEY: RuleState(regime, AS_OF - timedelta(days=30))})
        assert not [t for t in ev.triggers if t.rule == "premium_regime"]
        assert ev.states[KEY].state == regime


def test_a_4h_symbol_is_annualized_with_its_own_interval():
    # 0.01% every 4 hours is 21.9% a year: above 20% over 18 prints.
    _, [t] = _run(NORMAL, state="basis", interval_h=4)
    assert t.state_to == "derisk" and "18 funding prints" in t.explanation


def test_a_window_that_only_started_filling_does_not_move_the_regime():
    ev, fired = _run(HOT, state="basis", prints=3)  # one day of prints: not three days held
    assert not fired and ev.states[KEY].state == "basis"


def test_the_hurdle_still_applies_to_the_persistent_premium():
    s = settings_for("premium-daa", rules={"hurdle": {"min_apr": 0.15}})
    doc = snapshot({"BTC": asset(50000, rate=NORMAL)}, {"BTC": 1.4, "USDT": 30000})
    ev, _ = run(doc, s)
    assert not [t for t in ev.triggers if t.rule == "premium_regime"]
    assert any("below the 15.00% hurdle" in w for w in ev.warnings)
