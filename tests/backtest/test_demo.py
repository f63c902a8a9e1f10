"""`premia demo`: history replayed through the real engine, outbox, console and executor.

What the demo shows must be what the bot does: its alerts are the outbox rows Engine cycles
wrote (delivered to the console transport), approvals are typed commands served by the command
layer, and only approved proposals touch the paper book.
"""

from __future__ import annotations

import argparse
import builtins
import io
import time
from datetime import UTC, datetime

import pytest

from chatbot.cli import main
from chatbot.demo import add_arguments, play
from chatbot.demo_bot import TRANSPORT
from tests.backtest.helpers import write_config

FAR = datetime(2100, 1, 1, tzinfo=UTC)
INITIAL_BOOK = {"balances": {"USDT": "100000"}, "positions": []}


@pytest.fixture
def bare_machine(tmp_path, monkeypatch):
    """No store, no history_dir, and a shared-data folder that holds nothing."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("PREMIA_SHARED_DATA", str(empty))
    return write_config(tmp_path / "premia.toml", tmp_path / "premia.db", assets="BTC ETH SOL")


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def outbox(bot) -> list[dict]:
    """Every outbox row: none was delivered to a transport nobody uses."""
    return bot.store.pending_alerts("nobody", FAR, limit=100_000)


def test_demo_on_a_simulated_market_says_so_and_shows_alert_approval_and_result(bare_machine, capsys):
    started = time.monotonic()
    code = main(["demo", "--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-08-31",
                 "--speed", "0", "--auto-approve"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0
    assert "Market data: a simulated market" in out and "not real prices" in out
    assert "this run is on a SIMULATED market from a documented model" in out
    assert "ALERT  New proposal" in out
    assert "[Approve → /approve P-" in out  # the proposal as the console shows its buttons
    assert "YOU    premia> /approve P-" in out  # the answer, typed as in `premia chat`
    assert "executed (paper)" in out and "BOOK   value" in out
    assert "Done:" in out and "alerts delivered from the outbox" in out and "Your paper book:" in out
    for run in ("strategy", "buy-and-hold", "monthly", "bands-only"):
        assert run in out
    assert not (bare_machine.parent / "premia.db").exists()  # the user's store is never created
    assert elapsed < 30  # a few seconds on a quiet machine; generous for a loaded CI box


def test_alerts_are_the_outbox_rows_engine_cycles_wrote_and_approvals_execute(bare_machine):
    out = io.StringIO()
    bot = play(demo_args("--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-08-31",
                         "--speed", "0", "--auto-approve"), out)
    text = out.getvalue()
    rows = outbox(bot)
    assert len(bot.cycles) == len(bot.days) > 100  # one engine cycle per replayed day
    cycle_snapshots = {c.snapshot_id for c in bot.cycles}
    replay_times = {c.snapshot.as_of for c in bot.cycles if c.snapshot is not None}
    proposals = [r for r in rows if r["kind"] == "proposal"]
    assert proposals and len(rows) == bot.tally.alerts == text.count("  ALERT  ")
    for row in rows:
        # Written by an engine cycle, at the replay's time, naming the snapshot it stored.
        assert row["payload"]["snapshot_id"] in cycle_snapshots
        assert row["created_at"] in replay_times
    assert bot.store.pending_alerts(TRANSPORT, FAR) == []  # every one delivered to the console
    for row in proposals:
        pid = row["payload"]["proposal_id"]
        stored = bot.store.get_proposal(pid)
        assert stored.status == "executed", pid
        # Approved through the command layer by the console user, then filled by the paper broker.
        assert stored.decided_via == "console" and stored.decided_by.startswith("console:")
        assert f"premia> /approve {pid}" in text
        assert bot.store.orders_for(pid)
    book = bot.store.get_paper_book()
    assert book != INITIAL_BOOK and set(book["balances"]) > {"USDT"}
    assert bot.broker.book() == bot.book.read()  # the broker trades the book the engine values


def test_a_state_is_alerted_once_while_the_same_rules_keep_firing(bare_machine, monkeypatch):
    """Rejected drift keeps firing day after day: proposals are remade, the alert is not repeated."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    out = io.StringIO()
    bot = play(demo_args("--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-06-30",
                         "--speed", "0"), out)
    firing = [c for c in bot.cycles if c.evaluation is not None and c.evaluation.triggers]
    assert len(firing) > 2 * bot.tally.alerts > 0
    assert len(bot.tally.proposals) > bot.tally.offered == bot.tally.alerts
    assert "made while the same rules kept firing, so no new alert" in out.getvalue()


def test_without_approval_and_no_terminal_nothing_is_executed(bare_machine, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    out = io.StringIO()
    bot = play(demo_args("--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-05-31",
                         "--speed", "0"), out)
    text = out.getvalue()
    assert "(no terminal to ask you, so each proposal is rejected" in text and "--auto-approve" in text
    assert "premia> /reject P-" in text and "/approve P-" in text  # the buttons, never typed
    assert "premia> /approve" not in text
    assert bot.tally.alerts and bot.tally.approved == 0
    for pid in bot.tally.proposals:  # the last one is still open: no cycle after it
        assert bot.store.get_proposal(pid).status in ("rejected", "expired", "superseded", "proposed")
        assert bot.store.orders_for(pid) == []
    assert bot.store.get_paper_book() == INITIAL_BOOK


def test_asked_at_a_terminal_commands_are_served_and_closed_input_rejects(bare_machine, monkeypatch):
    answers = iter(["/status", "y"])

    def typed(_prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(builtins, "input", typed)
    out = io.StringIO()
    bot = play(demo_args("--config", str(bare_machine), "--from", "2021-05-01", "--to", "2021-08-31",
                         "--speed", "0"), out)
    text = out.getvalue()
    assert "premia> /status" in text and "Portfolio" in text
    assert bot.tally.approved == 1 and bot.tally.declined == bot.tally.offered - 1 > 0
    assert "(your input ended, so each proposal is rejected" in text


def test_demo_on_the_real_history_runs_the_default_period_within_a_minute(shared_data, tmp_path, capsys):
    config = write_config(tmp_path / "premia.toml", tmp_path / "premia.db", history_dir=shared_data)
    started = time.monotonic()
    code = main(["demo", "--config", str(config), "--speed", "0", "--auto-approve"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0
    assert "Market data: CSV history in" in out and "SIMULATED" not in out
    assert "2021-05-01 → 2022-12-31" in out
    assert "executed (paper)" in out and "LIVE" not in out
    assert elapsed < 60  # the promise: a newcomer sees it all within a minute (about 10 s here)


def test_demo_refuses_a_reversed_range(bare_machine, capsys):
    assert main(["demo", "--config", str(bare_machine), "--from", "2022-01-01", "--to", "2021-01-01"]) == 2
    assert "is before" in capsys.readouterr().err
