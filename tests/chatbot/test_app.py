"""The running bot: start-up with and without tokens, start-up message, heartbeat, conflicts, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from chatbot.app import CONFLICT_NOTE, INSTANCE_FLAG, BotProcess
from chatbot.handlers import Services
from chatbot.replies import Caller
from chatbot.wiring import HEARTBEAT
from core.config import Settings
from core.redact import scrub_text
from tests.chatbot.test_commands_world import SnapshotEngine, drifted_doc, settings_for
from tests.fakes.telegram_api import CONFLICT, FakeBotAPI

TOKEN = "123456:TEST-token-never-logged-abcdefghij"
OWNER = 1001


@pytest.fixture
async def api():
    async with FakeBotAPI() as server:
        yield server


def telegram_settings(api: FakeBotAPI | None, tmp_path, **over) -> Settings:
    telegram = {"traders": [OWNER], "chat_ids": [OWNER]}
    if api is not None:
        telegram["base_url"] = api.base_url
    return settings_for(chat={"telegram": telegram}, store_path=str(tmp_path / "premia.db"), **over)


class Polls:
    """Counts engine cycles."""

    def __init__(self) -> None:
        self.count = 0
        self.ran = asyncio.Event()

    async def __call__(self) -> None:
        self.count += 1
        self.ran.set()


def process(settings: Settings, env: dict[str, str], polls: Polls | None = None) -> BotProcess:
    from core.store import Store

    store = Store.open(settings.db_path)
    engine = SnapshotEngine(settings, store, drifted_doc())
    services = Services(settings, store, engine, None)
    return BotProcess(settings, services, env=env, poll=polls or Polls())


async def test_without_tokens_the_engine_still_runs_and_says_how_to_chat(tmp_path, capsys):
    polls = Polls()
    bot = process(telegram_settings(None, tmp_path), {}, polls)
    await bot.start()
    await asyncio.wait_for(polls.ran.wait(), 5)  # the first cycle runs at once
    out = capsys.readouterr().out
    assert "Premia is running without chat: neither $TELEGRAM_BOT_TOKEN nor $DISCORD_BOT_TOKEN is set" in out
    assert "premia chat" in out
    assert bot.services.store.last_heartbeat(HEARTBEAT) is not None
    assert bot.services.store.get_flag(INSTANCE_FLAG)["pid"] == os.getpid()
    assert bot.services.store.subscribers("telegram") == [str(OWNER)]  # configured chats
    await bot.stop()
    assert bot.scheduler is not None and not bot.scheduler.running
    assert all(t.done() for t in bot.tasks)
    bot.services.store.close()


async def test_telegram_start_up_message_and_commands(api, tmp_path):
    bot = process(telegram_settings(api, tmp_path), {"TELEGRAM_BOT_TOKEN": TOKEN}, Polls())
    await bot.start()
    [hello] = await api.wait_for("sendMessage")
    assert hello.params["chat_id"] == OWNER
    assert hello.params["text"].startswith("<b>Premia started</b>\n📝 Paper trading: approved proposals "
                                           "fill on the paper book; no real orders are sent.\nStrategy "
                                           "balanced-aggression · polling every 5 min")
    api.push_text("/status")
    [_, status] = await api.wait_for("sendMessage", 2)
    assert status.params["text"].startswith("<b>Portfolio 100,000 USDT · paper</b>")
    await bot.stop()
    assert any(c.method == "getUpdates" for c in api.calls)
    bot.services.store.close()


async def test_live_mode_announces_itself(api, tmp_path, monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "key-from-env")
    monkeypatch.setenv("BINANCE_SECRET", "secret-from-env")
    bot = process(telegram_settings(api, tmp_path, mode="live"), {"TELEGRAM_BOT_TOKEN": TOKEN})
    await bot.start()
    [hello] = await api.wait_for("sendMessage")
    assert hello.params["text"].startswith("<b>Premia started — LIVE</b>\n⚠️ LIVE trading on binance: "
                                           "approved proposals send real limit orders")
    assert "secret-from-env" not in hello.params["text"]
    await bot.stop()
    bot.services.store.close()


async def test_two_pollers_on_one_token_are_reported(api, tmp_path, caplog):
    api.fail("getUpdates", 409, CONFLICT, times=None)
    bot = process(telegram_settings(api, tmp_path), {"TELEGRAM_BOT_TOKEN": TOKEN})
    await bot.start()
    await api.wait_for("sendMessage", 2, timeout=10)  # the start-up message, then the warning
    texts = [c.params["text"] for c in api.sent("sendMessage")]
    assert texts[1] == f"<b>⚠ Two bots on one token</b>\n{CONFLICT_NOTE}"
    assert scrub_text(CONFLICT_NOTE) == CONFLICT_NOTE  # the log scrubber leaves it readable
    assert CONFLICT_NOTE in caplog.text
    status = await bot.dispatcher.handle_text(Caller("telegram", str(OWNER), str(OWNER)), "/status")
    assert CONFLICT_NOTE in status.text
    await asyncio.sleep(1.5)  # more conflicts: the chat is told once, not once per poll
    assert len(api.sent("sendMessage")) == 2
    await bot.stop()
    bot.services.store.close()


async def test_another_live_process_on_the_store_is_reported(tmp_path, caplog):
    settings = telegram_settings(None, tmp_path)
    first = process(settings, {})
    first.services.store.set_flag(INSTANCE_FLAG, {"pid": 99999, "host": "elsewhere"}, first.services.clock())
    first.services.store.heartbeat(HEARTBEAT, first.services.clock())
    await first.start()
    assert "Another Premia (pid 99999 on elsewhere)" in first.services.notes["instance"]
    assert "run one instance per store" in caplog.text
    await first.stop()
    first.services.store.close()


async def test_unreachable_telegram_is_retried_without_stopping_the_rest(api, tmp_path):
    api.fail("getMe", 502, "Bad Gateway", times=2)
    polls = Polls()
    bot = process(telegram_settings(api, tmp_path), {"TELEGRAM_BOT_TOKEN": TOKEN}, polls)
    bot.retry_s = 0.1
    await bot.start()
    await asyncio.wait_for(polls.ran.wait(), 5)  # the engine did not wait for Telegram
    [hello] = await api.wait_for("sendMessage", timeout=10)
    assert "Premia started" in hello.params["text"]
    assert len(api.calls_of("getMe")) >= 3
    await bot.stop()
    bot.services.store.close()


async def test_a_failing_cycle_is_logged_and_the_next_one_runs(tmp_path, caplog):
    calls = []

    async def broken() -> None:
        calls.append(1)
        raise RuntimeError("exchange exploded")

    bot = process(telegram_settings(None, tmp_path), {})
    bot.poll = broken
    await bot.cycle()
    await bot.cycle()
    assert len(calls) == 2
    assert "engine cycle failed" in caplog.text
    bot.services.store.close()


# ── `premia run` as the Procfile runs it: a subprocess, stopped by SIGTERM ──────────────────

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, exchange_prefix: str, fng_url: str, telegram: str = "") -> Path:
    path = tmp_path / "premia.toml"
    path.write_text(f"""
store_path = "{tmp_path / 'run.db'}"
data_dir = "{tmp_path}"
[strategy]
preset = "balanced-aggression"
[assets.BTC]
bucket = "majors"
split = 0.6
[assets.ETH]
bucket = "majors"
split = 0.4
[assets.SOL]
bucket = "altcoins"
[exchanges.binance]
urls = {{ "*" = "{exchange_prefix}" }}
options = {{ enableRateLimit = false }}
[feeds]
fear_greed_url = "{fng_url}"
retries = 1
timeout_seconds = 5
[chat.telegram]
{telegram}
""")
    return path


async def premia_run(config: Path, env_extra: dict[str, str]) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BOT_TOKEN")}
    env.update(env_extra)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbot.cli", "run", "--config", str(config), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def until(check, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not seen within {timeout} s")
        await asyncio.sleep(0.2)


def snapshots(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_premia_run_without_tokens_cycles_and_stops_on_sigterm(tmp_path, shared_data):
    from tests.fakes.exchange_server import FakeExchange
    from tests.fakes.fng_server import FakeFearGreed

    async with FakeExchange() as exchange, FakeFearGreed() as fng:
        config = write_config(tmp_path, exchange.prefix, fng.url)
        proc = await premia_run(config, {})
        try:
            await until(lambda: snapshots(tmp_path / "run.db") >= 1, 60, "a stored snapshot")
        finally:
            code, out, err = await stop(proc)
    assert code == 0, err
    assert "Premia is running without chat" in out and "premia chat" in out
    assert "stopped cleanly" in err
    assert "Traceback" not in err


@pytest.mark.slow
async def test_premia_run_with_a_telegram_token_alerts_and_executes_an_approval(tmp_path, shared_data):
    from tests.fakes.exchange_server import FakeExchange
    from tests.fakes.fng_server import FakeFearGreed

    async with FakeBotAPI() as api, FakeExchange() as exchange, FakeFearGreed() as fng:
        telegram = f'base_url = "{api.base_url}"\nchat_ids = [{OWNER}]\ntraders = [{OWNER}]'
        config = write_config(tmp_path, exchange.prefix, fng.url, telegram)
        proc = await premia_run(config, {"TELEGRAM_BOT_TOKEN": TOKEN})
        try:
            # The start-up message and the first cycle's alert, in either order.
            sent = await api.wait_for("sendMessage", 2, timeout=60)
            [hello] = [c for c in sent if "Premia started" in c.params["text"]]
            [alert] = [c for c in sent if c.params.get("reply_markup")]
            approve = alert.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            assert approve.startswith("approve:P-")
            api.push_callback(api.message(OWNER, alert.result["message_id"]), approve)
            [edit] = await api.wait_for("editMessageText", timeout=60)
        finally:
            code, _out, err = await stop(proc)
    assert hello.params["text"].startswith("<b>Premia started</b>\n📝 Paper trading")
    assert alert.params["text"].startswith("<b>New proposal</b>\n• BTC is 0.0% of the portfolio")
    assert " · executed (paper)</b>\nApproved by owner." in edit.params["text"]
    assert code == 0, err
    assert TOKEN not in err and "TEST-token" not in err  # the token never reaches the log
