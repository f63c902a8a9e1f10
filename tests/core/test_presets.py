"""The seven named strategies are presets with the seeds' allocation tables; config is validated."""

from decimal import Decimal as D

import pytest

from core.config import load_presets, settings_from_dict
from core.errors import ConfigError
from core.targets import resolve_targets
from tests.scenarios import FOUR, settings_for

SEED_TABLES = {
    "accumulation": {"spot": "0.70", "hedged": "0.20", "stable": "0.10"},
    "yield-optimization": {"spot": "0.40", "hedged": "0.45", "stable": "0.15"},
    "defensive": {"spot": "0.50", "hedged": "0", "futures": "-0.20", "stable": "0.30"},
    "premium-daa": {"spot": "0.70", "stable": "0.30"},
    "conservative-growth": {"majors": "0.50", "altcoins": "0.20", "stable": "0.20", "futures": "0.10"},
    "balanced-aggression": {"majors": "0.40", "altcoins": "0.40", "stable": "0.10", "futures": "0.10"},
    "aggressive-growth": {"majors": "0.30", "altcoins": "0.50", "stable": "0.05", "futures": "0.15"},
}
BANDS = {"conservative-growth": 7, "balanced-aggression": 5, "aggressive-growth": 3}


def test_all_seven_named_strategies_exist():
    assert set(load_presets()) == set(SEED_TABLES)


@pytest.mark.parametrize("preset", sorted(SEED_TABLES))
def test_each_preset_carries_its_seed_allocation_table(preset):
    alloc = settings_for(preset, FOUR).strategy.allocation
    got = {**{k: v for k, v in alloc.buckets.items()}, "stable": alloc.stable}
    if alloc.hedged or "hedged" in SEED_TABLES[preset]:
        got["hedged"] = alloc.hedged
    if alloc.futures:
        got["futures"] = alloc.futures
    assert got == {k: D(v) for k, v in SEED_TABLES[preset].items()}


@pytest.mark.parametrize(("preset", "band"), sorted(BANDS.items()))
def test_seed_003_drift_bands_are_7_5_and_3_points(preset, band):
    assert settings_for(preset, FOUR).strategy.band_pp == band


def test_balanced_aggression_spreads_buckets_over_assets_by_split():
    s = settings_for("balanced-aggression", FOUR)
    t = resolve_targets(s.strategy.allocation, s.assets, {"BTC", "ETH"})
    assert t.spot == {"BTC": D("0.24"), "ETH": D("0.16"), "SOL": D("0.2"), "XRP": D("0.2")}
    # futures 10% net long on the majors with a perpetual, margin kept in stablecoins
    assert t.futures == {"BTC": D("0.06"), "ETH": D("0.04")}
    assert t.stable == D("0.2")


def test_any_preset_value_can_be_overridden():
    s = settings_for("aggressive-growth", FOUR, band_pp=4, rules={"funding_extreme": {"cut_by": 0.25}})
    assert s.strategy.band_pp == 4
    assert s.strategy.rules.funding_extreme.cut_by == D("0.25")
    assert s.strategy.rules.funding_extreme.rate_8h_above == D("0.0005")


def test_an_unknown_preset_is_named_with_the_choices():
    with pytest.raises(ConfigError, match=r"strategy.preset 'yolo' is unknown; pick one of: accumulation"):
        settings_for("yolo")


def test_an_allocation_that_does_not_add_up_names_the_fix():
    with pytest.raises(ConfigError, match=r"strategy.allocation.*add up to 0.9"):
        settings_for("premium-daa", allocation={"spot": 0.6, "stable": 0.3})


def test_a_misspelt_key_is_reported_as_unknown():
    with pytest.raises(ConfigError, match=r"staleness\.spot_secs: unknown key"):
        settings_from_dict({"assets": {"BTC": {}}, "staleness": {"spot_secs": 3}})


def test_an_asset_on_an_undefined_exchange_is_refused():
    with pytest.raises(ConfigError, match=r"assets.BTC.exchange is 'kraken'"):
        settings_from_dict({"assets": {"BTC": {"exchange": "kraken"}}})


def test_a_bucket_without_assets_is_refused_when_targets_are_built():
    s = settings_for("balanced-aggression", {"BTC": {}})
    with pytest.raises(ConfigError, match="bucket 'altcoins' but no asset is in it"):
        resolve_targets(s.strategy.allocation, s.assets, {"BTC"})


def test_without_any_perpetual_the_hedged_slice_stays_in_spot_and_the_table_still_adds_up():
    s = settings_for("accumulation", {"BTC": {"split": 0.5}, "ETH": {"split": 0.5}})
    t = resolve_targets(s.strategy.allocation, s.assets, futures_assets=set())
    assert t.spot == {"BTC": D("0.45"), "ETH": D("0.45")}
    assert not t.hedged and sum(t.spot.values()) + t.stable == 1
