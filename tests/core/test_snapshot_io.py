"""Snapshot validation: impossible values are refused with the place and the reason, never a traceback."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from core.errors import SnapshotError
from core.snapshot_io import load_snapshot, parse_snapshot

T0 = "2025-01-01T00:00:00Z"
GOOD = {
    "as_of": T0,
    "portfolio": {"balances": {"USDT": "1000", "BTC": "0.1"},
                  "positions": [{"symbol": "BTC/USDT:USDT", "contracts": "-0.05"}]},
    "assets": {"BTC": {"spot": {"price": "60000", "timestamp": T0},
                       "closes": [["2024-12-30", "59000"], ["2024-12-31", "60000"]],
                       "perp": {"symbol": "BTC/USDT:USDT", "mark": "60010", "index": "60000",
                                "funding_rate": "0.0001", "timestamp": T0}}},
    "fear_greed": {"value": 40, "timestamp": T0, "history": [["2024-12-31", 35]]},
}


def with_change(change) -> dict:
    doc = copy.deepcopy(GOOD)
    change(doc)
    return doc


def refused(doc, quote: str | None = None) -> str:
    with pytest.raises(SnapshotError) as info:
        parse_snapshot(json.loads(json.dumps(doc), parse_float=Decimal), "snap.json", quote)
    return str(info.value)


def test_the_good_document_parses():
    snapshot, portfolio, _ = parse_snapshot(GOOD)
    assert snapshot.assets["BTC"].closes[-1].price == Decimal(60000)
    assert portfolio.positions[0].contracts == Decimal("-0.05")


@pytest.mark.parametrize("price", ["0", "-1"])
def test_a_close_at_or_below_zero_is_refused_naming_the_close(price):
    msg = refused(with_change(lambda d: d["assets"]["BTC"]["closes"].__setitem__(1, ["2024-12-31", price])))
    assert f"assets.BTC.closes[1][1]: price must be positive, got {price}" in msg


def test_a_position_with_a_zero_contract_size_is_refused():
    msg = refused(with_change(lambda d: d["portfolio"]["positions"][0].update(contract_size="0")))
    assert "portfolio.positions[0].contract_size: value must be positive" in msg


def test_a_perp_with_a_zero_contract_size_is_refused():
    msg = refused(with_change(lambda d: d["assets"]["BTC"]["perp"].update(contract_size=0)))
    assert "assets.BTC.perp.contract_size: value must be positive" in msg


@pytest.mark.parametrize("value", [500, -1, 101])
def test_fear_and_greed_history_stays_between_0_and_100(value):
    msg = refused(with_change(lambda d: d["fear_greed"]["history"].__setitem__(0, ["2024-12-31", value])))
    assert f"fear_greed.history[0][1]: a Fear & Greed value is between 0 and 100, got {value}" in msg


def test_the_current_fear_and_greed_value_stays_between_0_and_100():
    assert "between 0 and 100, got 101" in refused(with_change(lambda d: d["fear_greed"].update(value=101)))


@pytest.mark.parametrize(("where", "value"), [
    (("portfolio", "balances", "BTC"), "1e400"),
    (("assets", "BTC", "spot", "price"), "1e400"),
    (("assets", "BTC", "perp", "funding_rate"), "-1e30"),
    (("portfolio", "balances", "USDT"), "1e-400"),
])
def test_absurd_magnitudes_are_refused_naming_the_field(where, value):
    def change(d):
        target = d
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value

    msg = refused(with_change(change))
    assert ".".join(where) + ":" in msg and ("too large" in msg or "too small" in msg)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf"])
def test_non_finite_numbers_are_refused(value):
    msg = refused(with_change(lambda d: d["assets"]["BTC"]["spot"].update(price=value)))
    assert "assets.BTC.spot.price" in msg and "finite" in msg


def test_a_json_number_of_thousands_of_digits_is_refused_without_a_traceback(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps(GOOD).replace('"1000"', "1" * 5000))
    with pytest.raises(SnapshotError, match="number too long"):
        load_snapshot(path)


def test_a_snapshot_priced_in_another_currency_than_the_config_is_refused():
    msg = refused(with_change(lambda d: d.update(quote="EUR")), quote="USDT")
    assert "priced in EUR but the config's quote is USDT" in msg


def test_a_snapshot_without_a_quote_is_read_in_the_configs_quote():
    snapshot, _, _ = parse_snapshot(GOOD, quote="USDC")
    assert snapshot.quote == "USDC"
    assert parse_snapshot(with_change(lambda d: d.update(quote="usdc")), quote="USDC")[0].quote == "USDC"


def test_target_names_are_read_in_upper_case_and_each_only_once():
    _, _, strategy = parse_snapshot(with_change(lambda d: d.update(strategy={"targets": {"btc": "0.5"}})))
    assert strategy is not None and strategy.targets == {"BTC": Decimal("0.5")}
    assert "twice" in refused(with_change(lambda d: d.update(strategy={"targets": {"btc": 0.2, "BTC": 0.2}})))


def test_a_folder_given_as_the_snapshot_is_named(tmp_path):
    with pytest.raises(SnapshotError, match="is a folder"):
        load_snapshot(tmp_path)


def test_an_inverse_future_keeps_its_mark_through_the_public_format_and_the_store_codec():
    from core.codec import snapshot_from_dict, snapshot_to_dict
    from core.snapshot_io import dump_snapshot

    doc = with_change(lambda d: d["assets"]["BTC"].update(futures=[
        {"symbol": "BTC/USD:BTC-250328", "price": "61500", "expiry": "2025-03-28T08:00:00Z",
         "timestamp": T0, "contract_size": "100", "inverse": True},
        {"symbol": "BTC/USDT:USDT-250328", "price": "61450", "expiry": "2025-03-28T08:00:00Z",
         "timestamp": T0}]))
    snapshot, portfolio, _ = parse_snapshot(doc)
    coin, linear = snapshot.assets["BTC"].futures
    assert coin.inverse and coin.contract_size == Decimal(100) and not linear.inverse
    again, _, _ = parse_snapshot(json.loads(json.dumps(dump_snapshot(snapshot, portfolio))))
    assert again.assets["BTC"].futures == snapshot.assets["BTC"].futures
    assert snapshot_from_dict(snapshot_to_dict(snapshot)).assets["BTC"].futures == (coin, linear)
