"""`premia demo` on a machine with no history: a simulated market, said plainly, run to the end."""

from __future__ import annotations

import time

import pytest

from chatbot.cli import main
from tests.backtest.helpers import write_config


@pytest.fixture
def bare_machine(tmp_path, monkeypatch):
    """No store, no history_dir, and a shared-data folder that holds nothing."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("PREMIA_SHARED_DATA", str(empty))
    return write_config(tmp_path / "premia.toml", tmp_path / "premia.db", assets="BTC ETH SOL")


def test_demo_on_a_simulated_market_shows_alert_proposal_approval_and_result(bare_machine, capsys):
    started = time.monotonic()
    code = main(["demo", "--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-08-31",
                 "--speed", "0", "--auto-approve"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0
    assert "Market data: a simulated market" in out and "not real prices" in out
    assert "ALERT  New proposal" in out
    assert "[Approve → /approve P-" in out  # the proposal as the console shows its buttons
    assert "APPROVED  P-" in out
    assert "FILLED" in out and "weights now:" in out
    assert "Done:" in out and "Your paper book:" in out
    for run in ("strategy", "buy-and-hold", "monthly", "bands-only"):
        assert run in out
    assert elapsed < 20  # a few seconds on a quiet machine; generous for a loaded CI box


def test_demo_without_auto_approve_and_no_terminal_trades_nothing(bare_machine, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = main(["demo", "--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-05-20",
                 "--speed", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "use --auto-approve" in out and "REJECTED" in out
    assert "FILLED" not in out


def test_demo_uses_the_shared_history_when_it_is_there(shared_data, tmp_path, capsys):
    config = write_config(tmp_path / "premia.toml", tmp_path / "premia.db", history_dir=shared_data)
    code = main(["demo", "--config", str(config), "--from", "2022-05-01", "--to", "2022-05-31",
                 "--speed", "0", "--auto-approve"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Market data: CSV history in" in out
    assert "APPROVED" in out


def test_demo_refuses_a_reversed_range(bare_machine, capsys):
    assert main(["demo", "--config", str(bare_machine), "--from", "2022-01-01", "--to", "2021-01-01"]) == 2
    assert "is before" in capsys.readouterr().err
