"""Exchange metadata decides order steps and minimums; the planner respects them."""

from decimal import Decimal as D

from core.market_rules import rule_from_market, rules_from_markets
from core.planner import MarketRule
from tests.scenarios import asset, settings_for, snapshot

FALLBACK = MarketRule(D(10), D("0.00000001"), D("0.00000001"))
BTC_PERP = {"symbol": "BTC/USDT:USDT", "precision": {"amount": 0.001, "price": 0.1},
            "limits": {"cost": {"min": 100}, "amount": {"min": 0.001}}}


def test_a_binance_perp_steps_by_0_001_btc_with_a_100_usdt_minimum():
    rule = rule_from_market(BTC_PERP, FALLBACK)
    assert rule == MarketRule(D(100), D("0.001"), D("0.1"))


def test_missing_metadata_keeps_the_config_fallback():
    assert rule_from_market({"precision": {}, "limits": {}}, FALLBACK) == FALLBACK
    assert rules_from_markets({"X": BTC_PERP}, {"BTC/USDT:USDT"}, FALLBACK) == {}


def test_the_planner_rounds_futures_legs_to_the_exchange_step():
    import json

    from core.evaluate import evaluate
    from core.planner import plan
    from core.snapshot_io import parse_snapshot
    from tests.scenarios import run as _unused  # noqa: F401  (keeps the scenario helpers in one place)

    s = settings_for("premium-daa", allocation={"spot": 0.5, "hedged": 0.3, "stable": 0.2},
                     rules={"premium_regime": {"enabled": False}})
    doc = snapshot({"BTC": asset(50000, rate=0.0001)}, {"BTC": 1, "USDT": 50123})
    snap, pf, _ = parse_snapshot(json.loads(json.dumps(doc), parse_float=D))
    ev = evaluate(snap, pf, s, {})
    p = plan(ev, snap, pf, s, strategy="premium-daa",
             market_rules={"BTC/USDT:USDT": rule_from_market(BTC_PERP, FALLBACK)})
    [perp] = [o for o in p.orders if o.market == "perp"]
    assert perp.amount % D("0.001") == 0 and perp.limit_price % D("0.1") == 0
