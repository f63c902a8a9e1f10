"""The whole chat flow on Telegram: a real PTB Application, the fake Bot API, the REAL dispatcher.

The command layer runs on a real SQLite store file with the real Executor and PaperBroker (see
test_commands_world.paper_world); alerts leave through the real outbox drain and TelegramNotifier.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from chatbot import telegram as tg
from chatbot.alert_render import AlertPump, AlertRenderer
from core.config import TelegramConfig
from tests.chatbot import PNG_SIGNATURE
from tests.chatbot.test_commands_world import World, paper_world
from tests.fakes.telegram_api import FakeBotAPI

TOKEN = "123456:TEST-token-never-logged-abcdefghij"
OWNER = 1001  # a trader
VIEWER = 2002
STRANGER = 666
TRIGGER = {"rule": "volatility_spike", "asset": "BTC", "values": {"ratio": "2.40", "threshold": "2.0"},
           "explanation": "BTC 7-day volatility is 2.4× its 30-day baseline: reduce BTC"}


@pytest.fixture
async def api():
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def world(tmp_path):
    w = await paper_world(tmp_path)
    w.store.subscribe("telegram", OWNER)
    yield w
    w.store.close()


async def started(api: FakeBotAPI, world: World):
    app = tg.build_application(TOKEN, world.dispatcher, TelegramConfig(base_url=api.base_url))
    await tg.start(app, poll_timeout=1)
    return app


@pytest.fixture
async def app(api, world):
    application = await started(api, world)
    yield application
    await tg.stop(application)


def pump_for(world: World, app) -> AlertPump:
    notifier = tg.TelegramNotifier.for_application(app)
    render = AlertRenderer(world.store, world.settings, world.clock)
    return AlertPump(world.store, [notifier], render, world.clock)


def queue_alert(world: World, n: int = 0, **extra) -> int:
    alert_id = world.store.enqueue_alert(f"trigger:volatility_spike:{n}", "trigger", {**TRIGGER, **extra},
                                         world.clock(), timedelta(minutes=1))
    assert alert_id is not None
    return alert_id


async def test_menu_is_the_registry(api, app, world):
    [call] = await api.wait_for("setMyCommands")
    assert [c["command"] for c in call.params["commands"]] == [s.name for s in world.dispatcher.commands()]


async def test_status(api, app):
    api.push_text("/status")
    [call] = await api.wait_for("sendMessage")
    text = call.params["text"]
    assert text.startswith("<b>Portfolio 100,000 USDT · paper</b>\n")
    assert "<pre>asset      now  target     pp\nBTC      50.0%   24.0%  +26.0" in text


async def test_plan_keyboard_then_approval_press_executes_on_paper(api, app, world):
    api.push_text("/plan")
    [sent] = await api.wait_for("sendMessage")
    pid = sent.params["text"].split("</b>")[0].split()[1]
    keyboard = sent.params["reply_markup"]["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for row in keyboard for b in row] == [
        ("Approve", f"approve:{pid}"), ("Reject", f"reject:{pid}")]
    message = api.message(OWNER, sent.result["message_id"])
    api.push_callback(message, f"approve:{pid}")
    [edit] = await api.wait_for("editMessageText")
    assert edit.params["message_id"] == message["message_id"]
    assert edit.params["text"].startswith(f"<b>Proposal {pid} · executed (paper)</b>\nApproved by owner.")
    assert "reply_markup" not in api.message(OWNER, message["message_id"])  # no buttons left
    stored = world.store.get_proposal(pid)
    assert stored is not None and stored.status == "executed" and stored.decided_by == "telegram:1001"
    # The same button pressed again (a double tap, or another chat) changes nothing.
    api.push_callback(message, f"approve:{pid}")
    await api.wait_for("answerCallbackQuery", 2)
    assert api.sent("answerCallbackQuery")[-1].params["text"] == f"Proposal {pid} · already executed"
    assert len(world.store.orders_for(pid)) == len(stored.proposal.orders)


async def test_viewer_press_is_refused_privately(api, app, world):
    world.dispatcher.auth._lists["telegram"] = (frozenset({str(OWNER)}), frozenset({str(VIEWER)}))
    api.push_text("/plan")
    [sent] = await api.wait_for("sendMessage")
    message = api.message(OWNER, sent.result["message_id"])
    pid = sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[1]
    api.push_callback(message, f"approve:{pid}", user_id=VIEWER)
    [answer] = await api.wait_for("answerCallbackQuery")
    assert answer.params["show_alert"] is True
    assert answer.params["text"].startswith("/approve needs the trader role")
    assert api.sent("editMessageText") == []
    assert "reply_markup" in api.message(OWNER, message["message_id"])


async def test_chart_sends_a_real_png(api, app):
    api.push_text("/chart allocation")
    [photo] = await api.wait_for("sendPhoto", timeout=20)
    assert photo.files["photo"].startswith(PNG_SIGNATURE)
    assert "Allocation now" in photo.params["caption"]


async def test_unauthorized_user_refused_and_audited(api, app, world):
    api.push_text("/status", user_id=STRANGER, chat_id=STRANGER, username="mallory")
    [call] = await api.wait_for("sendMessage")
    assert call.params["chat_id"] == STRANGER
    assert "allowlist" in call.params["text"] and "666" in call.params["text"]
    assert "Portfolio" not in call.params["text"]
    row = world.store.audit_log(1)[0]
    assert (row["actor"], row["action"], row["subject"]) == ("telegram:666", "refused", "/status")


async def test_alert_with_buttons_and_a_press_on_it(api, app, world):
    pid = (await world.say("/plan")).subject
    queue_alert(world, proposal_id=pid)
    assert await pump_for(world, app).drain_once() == 1
    [sent] = await api.wait_for("sendMessage")
    assert sent.params["text"].startswith("<b>Rule fired</b>\n• BTC 7-day volatility is 2.4×")
    assert sent.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == f"reject:{pid}"
    api.push_callback(api.message(OWNER, sent.result["message_id"]), f"reject:{pid}")
    [edit] = await api.wait_for("editMessageText")
    assert edit.params["text"].startswith(f"<b>Proposal {pid} · rejected</b>")


async def test_429_retry_after_is_honoured(api, app, world):
    queue_alert(world)
    api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    pump = pump_for(world, app)
    assert await pump.drain_once() == 0
    [failed] = world.store.pending_alerts("telegram", world.clock() + timedelta(seconds=7), 10)
    assert "flood control" in failed["last_error"]
    world.clock.advance(seconds=6)
    assert await pump.drain_once() == 0  # not before retry_after
    assert len(api.calls_of("sendMessage")) == 1
    world.clock.advance(seconds=1)
    assert await pump.drain_once() == 1
    assert len(api.sent("sendMessage")) == 1


async def test_outage_then_every_queued_alert_is_delivered_in_order(api, app, world):
    api.fail("sendMessage", 502, "Bad Gateway", times=None)
    pump = pump_for(world, app)
    for n in range(3):
        queue_alert(world, n, explanation=f"alert number {n}")
        world.clock.advance(seconds=1)
        assert await pump.drain_once() == 0
    api.clear_faults()
    world.clock.advance(minutes=6)  # past the longest backoff
    assert await pump.drain_once() == 3
    texts = [c.params["text"] for c in api.sent("sendMessage")]
    assert [t.split("\n")[1] for t in texts] == [f"• alert number {n}" for n in range(3)]
    assert await pump.drain_once() == 0  # nothing twice


async def test_restart_delivers_alerts_left_undelivered(api, tmp_path):
    first = await paper_world(tmp_path)
    first.store.subscribe("telegram", OWNER)
    queue_alert(first, 1, explanation="queued before the restart")
    first.store.close()  # the process dies before any drain
    second = await paper_world(tmp_path)  # same store file
    app = await started(api, second)
    try:
        assert await pump_for(second, app).drain_once() == 1
        [sent] = await api.wait_for("sendMessage")
        assert "queued before the restart" in sent.params["text"]
    finally:
        await tg.stop(app)
        second.store.close()
