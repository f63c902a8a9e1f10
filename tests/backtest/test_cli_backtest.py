"""`premia backtest` through chatbot.cli.main: results, JSON, chart, and clear errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from chatbot.cli import main
from tests.backtest.helpers import write_config


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "premia.toml", tmp_path / "premia.db")


def test_one_preset_prints_a_table_beside_its_baselines(shared_data, config, capsys):
    code = main(["backtest", "--preset", "balanced-aggression", "--from", "2021-01-01", "--to",
                 "2021-06-30", "--config", str(config), "--data", str(shared_data)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "Using CSV history" in err
    for word in ("balanced-aggression", "buy-and-hold", "monthly", "bands-only", "CAGR", "max DD"):
        assert word in out


def test_all_presets_as_json_with_a_chart(shared_data, config, tmp_path, capsys):
    chart = tmp_path / "equity.png"
    code = main(["backtest", "--preset", "all", "--from", "2022-01-01", "--to", "2022-03-31", "--json",
                 "--chart", str(chart), "--config", str(config), "--data", str(shared_data),
                 "--no-baselines"])
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert len(data["results"]) == 7
    first = data["results"][0]
    assert first["start"] == "2022-01-01" and first["end"] == "2022-03-31"
    assert set(first["runs"]) == {"strategy"}
    assert float(first["runs"]["strategy"]["final_value"]) > 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def exit_code(argv: list[str]) -> int:
    """main()'s return value, or the code argparse exits with on a malformed argument."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "moonshot"], "unknown preset 'moonshot'"),
        (["--preset", "all", "--from", "2030-01-01", "--to", "2030-02-01"], "covers 2017-08-17"),
        (["--preset", "all", "--from", "2022-02-01", "--to", "2022-01-01"], "is before"),
        (["--preset", "all", "--data", "/no/such/folder"], "does not exist"),
        (["--preset", "all", "--from", "2021-02-30"], "not a date"),
        (["--preset", "all", "--initial", "-1"], "positive amount"),
        (["--from", "2021-01-01"], "--preset"),
        (["--preset", "all", "--chart", "/nonexistent/x.png"], "the folder /nonexistent does not exist"),
    ],
)
def test_bad_input_is_explained_with_exit_code_2_and_no_traceback(shared_data, config, capsys, argv,
                                                                    message):
    if "--data" not in argv:
        argv = [*argv, "--data", str(shared_data)]
    assert exit_code(["backtest", *argv, "--config", str(config)]) == 2
    _, err = capsys.readouterr()
    assert message in err
    assert "Traceback" not in err


def test_a_data_folder_without_history_files_says_so(tmp_path, config, capsys):
    assert main(["backtest", "--preset", "all", "--data", str(tmp_path), "--config", str(config)]) == 2
    assert "no history CSVs" in capsys.readouterr().err


def test_a_chart_path_that_is_a_folder_is_refused_before_the_run(shared_data, config, tmp_path, capsys):
    argv = ["backtest", "--preset", "all", "--chart", str(tmp_path), "--config", str(config),
            "--data", str(shared_data)]
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert f"--chart {tmp_path} is a folder" in err and "Traceback" not in err
    assert "Using CSV history" not in err  # refused before the history was even read
