"""`premia plan` on every example and on bad input; `premia check-config`."""

import json
from pathlib import Path

import pytest

from chatbot.cli import main
from core.config import EXAMPLE_CONFIG

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "config" / "examples").glob("*.json"))


def plan_json(capsys, path):
    assert main(["plan", "--snapshot", str(path), "--config", str(EXAMPLE_CONFIG), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_there_are_examples_for_the_seeds_scenarios():
    names = {p.stem for p in EXAMPLES}
    assert {"basis-trade-premium-daa", "extreme-contango-premium-daa", "drift-balanced-aggression",
            "extreme-fear-balanced-aggression", "funding-yield-accumulation", "stale-quotes"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_plans_with_the_documented_json_fields(capsys, path):
    out = plan_json(capsys, path)
    assert set(out) >= {"triggers", "orders", "weights", "net_futures_exposure", "warnings"}
    assert set(out["weights"]) == {"before", "after"}
    for t in out["triggers"]:
        assert {"rule", "asset", "explanation"} <= set(t)
    for o in out["orders"]:
        assert {"market", "symbol", "side", "amount", "notional", "reason"} <= set(o)
        assert o["side"] in ("buy", "sell")


def test_the_extreme_contango_example_sells_spot_to_50_50(capsys):
    out = plan_json(capsys, EXAMPLES[[p.stem for p in EXAMPLES].index("extreme-contango-premium-daa")])
    assert out["weights"]["after"]["BTC"].startswith("0.50")
    assert [o["side"] for o in out["orders"]] == ["sell"]


def test_the_stale_example_proposes_nothing_and_warns(capsys):
    out = plan_json(capsys, EXAMPLES[[p.stem for p in EXAMPLES].index("stale-quotes")])
    assert out["orders"] == [] and any("stale" in w for w in out["warnings"])


def test_the_table_output_names_the_trigger_and_the_legs(capsys):
    path = EXAMPLES[[p.stem for p in EXAMPLES].index("basis-trade-premium-daa")]
    assert main(["plan", "--snapshot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "premium_regime" in out and "12.17%" in out and "sell" in out


T0 = "2025-01-01T00:00:00Z"
BAD = {
    "not json": "{this is not json",
    "not an object": "[1, 2]",
    "missing portfolio": '{"as_of": "2025-01-01T00:00:00Z", "assets": {}}',
    "negative price": json.dumps({"as_of": "2025-01-01T00:00:00Z", "portfolio": {"balances": {}},
                                  "assets": {"BTC": {"spot": {"price": "-5", "timestamp": T0}}}}),
    "zero price": json.dumps({"as_of": "2025-01-01T00:00:00Z", "portfolio": {"balances": {}},
                              "assets": {"BTC": {"spot": {"price": 0, "timestamp": T0}}}}),
    "unknown preset": json.dumps({"as_of": "2025-01-01T00:00:00Z", "strategy": {"preset": "moon"},
                                  "portfolio": {"balances": {}}, "assets": {}}),
    "unknown asset": json.dumps({"as_of": "2025-01-01T00:00:00Z", "portfolio": {"balances": {"DOGE": 5}},
                                 "assets": {"DOGE": {"spot": {"price": 1, "timestamp": T0}}}}),
    "bad number": json.dumps({"as_of": "2025-01-01T00:00:00Z", "portfolio": {"balances": {"USDT": "lots"}},
                              "assets": {}}),
    "unknown target": json.dumps({"as_of": T0, "strategy": {"targets": {"FOO": 1.0}},
                                  "portfolio": {"balances": {"USDT": 1000}},
                                  "assets": {"BTC": {"spot": {"price": 60000, "timestamp": T0}}}}),
    "zero close": json.dumps({"as_of": T0, "portfolio": {"balances": {}},
                              "assets": {"BTC": {"spot": {"price": 1, "timestamp": T0},
                                                 "closes": [["2024-12-31", 0]]}}}),
    "zero contract size": json.dumps({"as_of": T0, "portfolio": {
        "balances": {}, "positions": [{"symbol": "BTC/USDT:USDT", "contracts": 1, "contract_size": 0}]},
        "assets": {"BTC": {"spot": {"price": 1, "timestamp": T0}}}}),
    "fear greed 500": json.dumps({"as_of": T0, "portfolio": {"balances": {}}, "assets": {},
                                  "fear_greed": {"value": 50, "timestamp": T0,
                                                 "history": [["2024-12-31", 500]]}}),
    "another quote": json.dumps({"as_of": T0, "quote": "EUR", "portfolio": {"balances": {"EUR": 10}},
                                 "assets": {"BTC": {"spot": {"price": 1, "timestamp": T0}}}}),
    "absurd number": json.dumps({"as_of": T0, "portfolio": {"balances": {"BTC": "1e400"}},
                                 "assets": {"BTC": {"spot": {"price": 1, "timestamp": T0}}}}),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_snapshots_exit_2_with_a_clear_message_and_no_traceback(tmp_path, capsys, name):
    path = tmp_path / "bad.json"
    path.write_text(BAD[name])
    assert main(["plan", "--snapshot", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("premia plan:") and "Traceback" not in err


def test_a_target_for_an_asset_the_snapshot_does_not_price_is_named_with_the_fix(tmp_path, capsys):
    path = tmp_path / "foo.json"
    path.write_text(BAD["unknown target"])
    assert main(["plan", "--snapshot", str(path), "--config", str(EXAMPLE_CONFIG)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no plan selling everything towards FOO
    assert "strategy.targets names FOO" in captured.err and "no market for" in captured.err
    assert "add assets.FOO with a spot price" in captured.err


def test_a_snapshot_in_another_quote_than_the_config_is_refused_naming_both(tmp_path, capsys):
    path = tmp_path / "eur.json"
    path.write_text(BAD["another quote"])
    assert main(["plan", "--snapshot", str(path), "--config", str(EXAMPLE_CONFIG)]) == 2
    assert "priced in EUR but the config's quote is USDT" in capsys.readouterr().err


def test_a_missing_snapshot_file_is_named(capsys):
    assert main(["plan", "--snapshot", "/nonexistent/snap.json"]) == 2
    assert "/nonexistent/snap.json does not exist" in capsys.readouterr().err


def test_check_config_prints_effective_settings_without_secret_values(capsys, monkeypatch):
    monkeypatch.setenv("BINANCE_SECRET", "s3cr3t-value")
    assert main(["check-config", "--config", str(EXAMPLE_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out and "BINANCE_SECRET (set)" in out and "s3cr3t-value" not in out


@pytest.mark.parametrize(("text", "needle"), [
    ("assets = 5\n", "assets"),
    ('[strategy]\npreset = "nope"\n', "strategy.preset 'nope' is unknown"),
    ("[assets.BTC]\nsplit = -1\n", "assets.BTC.split"),
    ("this is = = not toml", "not valid TOML"),
    ('quote = "USDT" # caf\xe9\n', "is not UTF-8 text"),
])
def test_check_config_names_the_bad_key_and_exits_2(tmp_path, capsys, text, needle):
    cfg = tmp_path / "premia.toml"
    cfg.write_bytes(text.encode("latin-1"))
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_check_config_on_a_folder_names_it_and_exits_2(tmp_path, capsys):
    assert main(["check-config", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is a folder" in err and "Traceback" not in err
