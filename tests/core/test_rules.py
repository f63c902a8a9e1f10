"""Each rule fires, holds its state, and resets — hysteresis both ways."""

from datetime import timedelta
from decimal import Decimal as D

from tests.scenarios import AS_OF, FOUR, asset, four_assets, run, settings_for, snapshot, units

LATER = AS_OF + timedelta(days=1)


def fired(ev, rule):
    return [t for t in ev.triggers if t.rule == rule]


# ── seed 000: funding regime ────────────────────────────────────────────────────────────────


def test_funding_above_10pct_for_two_weeks_moves_spot_to_basis_trade():
    s = settings_for("accumulation")
    doc = snapshot({"BTC": asset(60000, rate=0.00015)}, {"BTC": 1.05, "USDT": 7000})
    ev, p = run(doc, s)
    [t] = fired(ev, "funding_regime")
    assert (t.state_from, t.state_to) == ("low", "high")
    assert "14 days" in t.explanation and "hurdle" in t.explanation
    assert ev.targets.hedged["BTC"] == D("0.45") and ev.targets.spot["BTC"] == D("0.40")
    assert any(o.market == "perp" and o.side == "sell" for o in p.orders)


def test_funding_high_for_only_a_week_does_not_switch():
    s = settings_for("accumulation")
    doc = snapshot({"BTC": asset(60000, rate=0.00015, history_rate=0.00002)}, {"BTC": 1, "USDT": 0})
    ev, _ = run(doc, s)
    assert not fired(ev, "funding_regime") and ev.states["funding_regime"].state == "low"


def test_basis_trade_below_the_hurdle_stays_in_spot_with_a_warning():
    s = settings_for("accumulation", rules={"hurdle": {"min_apr": 0.30}})
    ev, _ = run(snapshot({"BTC": asset(60000, rate=0.00015)}, {"BTC": 1}), s)
    assert not fired(ev, "funding_regime")
    assert any("hurdle" in w for w in ev.warnings)


def test_funding_below_5pct_moves_hedged_yield_back_to_spot_and_a_restart_keeps_the_regime():
    s = settings_for("accumulation")
    ev, _ = run(snapshot({"BTC": asset(60000, rate=0.00015)}, {"BTC": 1}), s)
    high = ev.states
    # same market again with the persisted state: no second trigger (hysteresis remembered)
    ev2, _ = run(snapshot({"BTC": asset(60000, rate=0.00015)}, {"BTC": 1}), s, high)
    assert not fired(ev2, "funding_regime") and ev2.states["funding_regime"].state == "high"
    # between 5% and 10%: still high
    ev3, _ = run(snapshot({"BTC": asset(60000, rate=0.00007)}, {"BTC": 1}), s, high)
    assert ev3.states["funding_regime"].state == "high"
    ev4, _ = run(snapshot({"BTC": asset(60000, rate=0.00002)}, {"BTC": 1}), s, high)
    [t] = fired(ev4, "funding_regime")
    assert (t.state_from, t.state_to) == ("high", "low")
    assert ev4.targets.hedged["BTC"] == D("0.20")


def test_defensive_returns_to_spot_on_a_bottom_with_strongly_positive_funding():
    s = settings_for("defensive")
    # volatility trending down (3% daily swings, then 1% in the last week) …
    calm_bounce = asset(60000, rate=0.00012, vol=0.03, spike_last=7, spike_vol=0.01)
    # … and a low 45 days ago well below today's price
    calm_bounce["closes"][0][1] = "45000"
    ev, _p = run(snapshot({"BTC": calm_bounce}, {"BTC": 0.5, "USDT": 70000}), s)
    [t] = fired(ev, "recovery")
    assert t.state_to == "recovered" and "low" in t.explanation
    assert ev.targets.futures_weight("BTC") == D("-0.20")  # recovered table: 20% hedged yield
    quiet = asset(60000, rate=0.00001)
    ev2, _ = run(snapshot({"BTC": quiet}, {"BTC": 0.5, "USDT": 70000}), s)
    assert not fired(ev2, "recovery") and ev2.targets.futures_weight("BTC") == D("-0.20")


# ── seed 002: premium table ─────────────────────────────────────────────────────────────────


def _premium(future_price, state=None, rate=0.00001):
    s = settings_for("premium-daa")
    doc = snapshot({"BTC": asset(50000, rate=rate, future=(future_price, 90))}, {"BTC": 1.4, "USDT": 30000})
    return run(doc, s, state)


def test_premium_table_moves_through_basis_derisk_and_back_below_5pct():
    ev, _ = _premium(51500)  # 12.17%
    [t] = fired(ev, "premium_regime")
    assert t.state_to == "basis" and t.values["source"] == "basis of BTC/USDT:USDT-250831"
    ev, _ = _premium(53082, ev.states)  # 25%
    assert fired(ev, "premium_regime")[0].state_to == "derisk"
    ev, _ = _premium(51300, ev.states)  # 10.5%: de-risk holds until below 5%
    assert not fired(ev, "premium_regime") and ev.states["premium_regime:BTC"].state == "derisk"
    ev, _ = _premium(50400, ev.states)  # 3.2%
    assert fired(ev, "premium_regime")[0].state_to == "baseline"


def test_deep_backwardation_accumulates_spot_from_stables_then_stops():
    ev, p = _premium(48500, rate=-0.0003)  # −12.2%
    [t] = fired(ev, "premium_regime")
    assert t.state_to == "accumulate"
    assert ev.targets.spot["BTC"] == D("0.80")
    assert [o.side for o in p.orders if o.market == "spot"] == ["buy"]
    ev2, _ = _premium(49800, ev.states)  # −1.6%
    assert fired(ev2, "premium_regime")[0].state_to == "baseline"


# ── seed 003 ────────────────────────────────────────────────────────────────────────────────


def test_seven_day_volatility_doubling_reduces_that_asset_and_resets_when_it_subsides():
    s = settings_for("balanced-aggression", FOUR)
    assets = four_assets()
    assets["SOL"] = asset(
        150,
        name="SOL",
        vol=0.02,
        spike_last=7,
    )
    w = {"BTC": 0.24, "ETH": 0.16, "SOL": 0.2, "XRP": 0.2, "USDT": 0.2}
    ev, p = run(snapshot(assets, units(w)), s)
    [t] = fired(ev, "volatility_spike")
    assert t.asset == "SOL" and "×" in t.explanation
    assert ev.targets.spot["SOL"] == D("0.10")
    assert any(o.asset == "SOL" and o.side == "sell" for o in p.orders)
    ev2, _ = run(snapshot(four_assets(), units(w)), s, ev.states)
    assert [t.state_to for t in fired(ev2, "volatility_spike")] == ["normal"]


def test_fear_greed_below_25_moves_the_futures_book_to_net_neutral_and_back_above_35():
    s = settings_for("balanced-aggression", FOUR)
    w = {"BTC": 0.24, "ETH": 0.16, "SOL": 0.2, "XRP": 0.2, "USDT": 0.2}
    pos = [
        {"symbol": "BTC/USDT:USDT", "contracts": "0.1"},
        {"symbol": "ETH/USDT:USDT", "contracts": "1.3333"},
    ]
    ev, p = run(snapshot(four_assets(), units(w), fear_greed=18, positions=pos), s)
    assert fired(ev, "fear_greed")[0].state_to == "fear"
    assert p.net_futures_exposure_before > D("0.09") and abs(p.net_futures_exposure_after) < D("0.001")
    ev2, _ = run(snapshot(four_assets(), units(w), fear_greed=30), s, ev.states)
    assert not fired(ev2, "fear_greed")
    ev3, p3 = run(snapshot(four_assets(), units(w), fear_greed=40), s, ev.states)
    assert fired(ev3, "fear_greed")[0].state_to == "normal"
    assert p3.net_futures_exposure_after > D("0.09")


def test_funding_above_005pct_held_cuts_net_long_by_half_until_it_normalizes():
    s = settings_for("aggressive-growth", FOUR)
    w = {"BTC": 0.18, "ETH": 0.12, "SOL": 0.25, "XRP": 0.25, "USDT": 0.20}
    ev, _ = run(snapshot(four_assets(rate=0.0006), units(w)), s)
    assert {t.asset for t in fired(ev, "funding_extreme")} == {"BTC", "ETH", "SOL", "XRP"}
    assert ev.targets.net_futures == ev.base.net_futures / 2
    ev2, _ = run(snapshot(four_assets(rate=0.0001), units(w)), s, ev.states)
    assert all(t.state_to == "normal" for t in fired(ev2, "funding_extreme"))
    assert ev2.targets.net_futures == ev.base.net_futures


def test_funding_below_minus_001pct_adds_net_long_up_to_15pct():
    s = settings_for("conservative-growth", FOUR)
    w = {"BTC": 0.30, "ETH": 0.20, "SOL": 0.1, "XRP": 0.1, "USDT": 0.30}
    ev, p = run(snapshot(four_assets(rate=-0.0002), units(w)), s)
    assert fired(ev, "negative_funding")
    assert ev.targets.net_futures.quantize(D("0.0001")) == D("0.15")  # 10% + a 5 step, capped at 15%
    assert any(o.market == "perp" and o.side == "buy" for o in p.orders)
    ev2, _ = run(snapshot(four_assets(rate=0.0001), units(w)), s, ev.states)
    assert ev2.targets.net_futures.quantize(D("0.0001")) == D("0.10")


def test_correction_hedge_shorts_50pct_of_100000_times_20pct_drop_is_10000_notional():
    s = settings_for("premium-daa", rules={"correction_hedge": {"enabled": True, "active": True}})
    doc = snapshot({"BTC": asset(50000, rate=0.00001)}, {"BTC": 1.4, "USDT": 30000})
    ev, p = run(doc, s)
    [t] = fired(ev, "correction_hedge")
    assert "10,000" in t.explanation
    [hedge] = [o for o in p.orders if o.market == "perp"]
    assert hedge.side == "sell" and hedge.notional.quantize(D(1)) == D(10000)
    calm = settings_for("premium-daa", rules={"correction_hedge": {"enabled": True, "active": False}})
    ev2, _ = run(doc, calm, ev.states)
    assert fired(ev2, "correction_hedge")[0].state_to == "off"


# ── drift bands ─────────────────────────────────────────────────────────────────────────────


def _drift(btc_weight):
    s = settings_for("premium-daa", {"BTC": {}}, allocation={"spot": 0.4, "stable": 0.6})
    doc = snapshot(
        {"BTC": asset(50000, rate=None)},
        {"BTC": btc_weight * 100000 / 50000, "USDT": (1 - btc_weight) * 100000},
    )
    ev, p = run(doc, s)
    return fired(ev, "drift_band"), p


def test_a_5_point_band_around_40pct_acts_below_35_and_above_45():
    assert _drift(0.451)[0] and _drift(0.349)[0]
    assert not _drift(0.449)[0] and not _drift(0.351)[0] and not _drift(0.40)[0]


def test_no_orders_when_every_asset_is_inside_its_band_and_no_rule_fired():
    triggers, p = _drift(0.43)
    assert not triggers and not p.orders
