"""The console adapter, driven through its prompt."""

from __future__ import annotations

import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbot import console
from chatbot.console import ConsoleAdapter, action_to_command
from tests.chatbot import PNG_SIGNATURE, PROPOSAL, FakeDispatcher


async def lines(*typed: str) -> AsyncIterator[str]:
    for line in typed:
        yield line + "\n"


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def bot(dispatcher: FakeDispatcher, out: io.StringIO, tmp_path: Path) -> ConsoleAdapter:
    return ConsoleAdapter(dispatcher, out, tmp_path / "images")


async def test_session_through_the_prompt(bot, dispatcher, out, tmp_path):
    await bot.run(lines("/status", "propose", "", "chart BTC", "/approve P-7F3K2A", "quit", "/status"))
    text = out.getvalue()
    assert text.startswith("Premia console")
    assert "/approve <proposal-id>  Approve a proposal" in text  # help from the registry
    assert "Status <paper>\nBTC & ETH within bands; <b>not bold</b>\nasset  weight" in text
    assert f"[Approve → /approve {PROPOSAL}]  [Reject → /reject {PROPOSAL}]" in text
    assert "Approved P-7F3K2A" in text
    # "propose" without a slash is a command too; the blank line is skipped; quit stops.
    assert dispatcher.texts() == ["/status", "/propose", "/chart BTC", "/approve P-7F3K2A"]
    assert text.count("premia> ") == 6
    [image] = sorted((tmp_path / "images").iterdir())
    assert image.name == "001-btc.png"
    assert image.read_bytes().startswith(PNG_SIGNATURE)
    assert f"image: {image} (BTC close, 30 days)" in text


async def test_end_of_input_ends_the_session(bot, out):
    await bot.run(lines("status"))
    assert out.getvalue().endswith("premia> \n")


async def test_run_line_is_the_test_fixture(bot, dispatcher):
    assert "within bands" in await bot.run_line("/status")
    caller = dispatcher.calls[0][1]
    assert (caller.transport, caller.chat_id) == ("console", "console")


async def test_a_crashing_dispatcher_does_not_kill_the_prompt(bot, out):
    await bot.run(lines("/boom", "/status"))
    text = out.getvalue()
    assert console.APOLOGY in text and "secret internals" not in text
    assert "within bands" in text


def test_actions_map_to_typed_commands():
    assert action_to_command("approve:P-X") == "/approve P-X"
    assert action_to_command("confirm:P-X:2") == "/confirm P-X 2"
    assert action_to_command("refresh") == "/refresh"
    assert action_to_command("/status") == "/status"


async def test_reads_stdin_by_default(bot, dispatcher, out, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("status\napprove P-1\n"))
    await bot.run()
    assert dispatcher.texts() == ["/status", "/approve P-1"]
    assert "Approved P-1" in out.getvalue()


def test_premia_chat_with_the_market_unreachable_answers_politely_and_keeps_the_log_quiet(tmp_path):
    import subprocess

    config = tmp_path / "premia.toml"
    config.write_text(f"""
store_path = "{tmp_path / 'premia.db'}"
[strategy]
preset = "balanced-aggression"
[assets.BTC]
bucket = "majors"
[assets.ETH]
bucket = "altcoins"
[exchanges.binance]
urls = {{ "*" = "http://127.0.0.1:9" }}
[feeds]
fear_greed_url = "http://127.0.0.1:9/fng/"
retries = 1
timeout_seconds = 2
""")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "chatbot.cli", "chat", "--config", str(config)],
                          input="/status\n/plan\n/mute\n", capture_output=True, text=True, cwd=root,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No market data yet" in done.stdout
    assert "I could not reach the market just now" in done.stdout and "Try again in a minute" in done.stdout
    assert "Usage: /mute RULE DURATION" in done.stdout
    assert "INFO" not in done.stderr and "retrying" not in done.stderr and "Traceback" not in done.stderr
