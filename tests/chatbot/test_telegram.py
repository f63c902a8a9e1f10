"""A real python-telegram-bot Application against the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from telegram import Bot

from chatbot import telegram as tg
from chatbot.delivery import DeliveryError, drain_outbox
from chatbot.replies import Button, Reply
from core.config import TelegramConfig
from core.redact import scrub_text
from tests.chatbot import CHART, PNG_SIGNATURE, PROPOSAL, PROPOSAL_REPLY, FakeDispatcher
from tests.chatbot.test_delivery import MemoryOutbox
from tests.fakes.telegram_api import CONFLICT, FakeBotAPI

TOKEN = "123456:TEST-token-never-logged-abcdefghij"
CHAT = 1001


@pytest.fixture
async def api():
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
async def app(api: FakeBotAPI, dispatcher: FakeDispatcher):
    conflicts: list[Exception] = []
    application = tg.build_application(
        TOKEN, dispatcher, TelegramConfig(base_url=api.base_url), on_conflict=conflicts.append
    )
    application.bot_data["test.conflicts"] = conflicts
    await tg.start(application, poll_timeout=1)
    yield application
    await tg.stop(application)


@pytest.fixture
async def bot(api: FakeBotAPI):
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


async def test_commands_are_published_from_the_registry(api, app, dispatcher):
    [call] = await api.wait_for("setMyCommands")
    names = [c["command"] for c in call.params["commands"]]
    assert names == [spec.name for spec in dispatcher.commands()]
    assert all(c["description"] for c in call.params["commands"])


async def test_command_reply_is_escaped_html(api, app, dispatcher):
    api.push_text("/status")
    [call] = await api.wait_for("sendMessage")
    assert call.params["parse_mode"] == "HTML"
    text = call.params["text"]
    assert text.startswith("<b>Status &lt;paper&gt;</b>\n")
    assert "BTC &amp; ETH within bands; &lt;b&gt;not bold&lt;/b&gt;" in text
    assert "<pre>asset  weight\nBTC     41.0%\nETH     19.5%</pre>" in text
    kind, caller, typed = dispatcher.calls[0]
    assert (kind, typed) == ("text", "/status")
    assert (caller.transport, caller.user_id, caller.chat_id) == ("telegram", "1001", "1001")


async def test_command_addressed_to_the_bot_by_name_in_a_group(api, app, dispatcher):
    api.push_text("/approve@PremiaTestBot P-1", chat_id=-500, chat_type="group")
    api.push_text("/approve@SomeOtherBot P-2", chat_id=-500, chat_type="group")
    api.push_text("just chatting", chat_id=-500, chat_type="group")
    api.push_text("/status", chat_id=-500, chat_type="group")
    await api.wait_for("sendMessage", 2)
    assert dispatcher.texts() == ["/approve P-1", "/status"]


async def test_unknown_command_and_free_text_get_a_friendly_reply(api, app, dispatcher):
    api.push_text("/nonsense")
    api.push_text("hello there")
    calls = await api.wait_for("sendMessage", 2)
    assert dispatcher.texts() == ["/nonsense", "hello there"]
    assert "try /help" in calls[0].params["text"]


async def test_reply_with_buttons_carries_an_inline_keyboard(api, app):
    api.push_text("/propose")
    [call] = await api.wait_for("sendMessage")
    rows = call.params["reply_markup"]["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for b in rows[0]] == [
        ("Approve", f"approve:{PROPOSAL}"),
        ("Reject", f"reject:{PROPOSAL}"),
    ]


async def test_button_press_calls_the_dispatcher_answers_and_edits(api, app, dispatcher):
    api.push_text("/propose")
    [sent] = await api.wait_for("sendMessage")
    message = api.message(CHAT, sent.result["message_id"])
    api.push_callback(message, f"approve:{PROPOSAL}")
    [answer] = await api.wait_for("answerCallbackQuery")
    [edit] = await api.wait_for("editMessageText")
    assert dispatcher.actions() == [f"approve:{PROPOSAL}"]
    assert answer.params["text"] == f"Approved {PROPOSAL}"
    assert edit.params["message_id"] == message["message_id"]
    assert edit.params["text"].startswith(f"<b>Approved {PROPOSAL}</b>")
    assert "reply_markup" not in edit.params  # the buttons are gone with the decision
    assert "reply_markup" not in api.message(CHAT, message["message_id"])


async def test_refused_button_press_leaves_the_shared_message_alone(api, app, dispatcher):
    api.push_text("/propose")
    [sent] = await api.wait_for("sendMessage")
    api.push_callback(api.message(CHAT, sent.result["message_id"]), "nuke:all", user_id=666)
    [answer] = await api.wait_for("answerCallbackQuery")
    assert answer.params["show_alert"] is True
    assert "not allowed" in answer.params["text"]
    assert dispatcher.calls[-1][1].user_id == "666"
    await asyncio.sleep(0.1)
    assert not api.sent("editMessageText")


async def test_long_action_round_trips_through_short_callback_data(api, app, dispatcher):
    notifier = tg.TelegramNotifier.for_application(app)
    action = "approve:" + "P" * 100
    await notifier.send(str(CHAT), Reply(text="long", buttons=(Button("Go", action),)))
    [sent] = api.sent("sendMessage")
    data = sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert len(data.encode()) <= 64
    api.push_callback(api.message(CHAT, sent.result["message_id"]), data)
    await api.wait_for("answerCallbackQuery")
    assert dispatcher.actions() == [action]


async def test_image_arrives_as_a_real_png_via_send_photo(api, app):
    api.push_text("/chart BTC")
    [photo] = await api.wait_for("sendPhoto")
    assert photo.files["photo"].startswith(PNG_SIGNATURE)
    assert photo.params["caption"] == "BTC close, 30 days"
    [text] = api.sent("sendMessage")
    assert text.params["text"] == "BTC, 30 days"


async def test_long_reply_is_split_below_4096_characters(api, app):
    api.push_text("/big")
    await api.wait_for("sendMessage", 2)
    await asyncio.sleep(0.2)
    texts = [c.params["text"] for c in api.sent("sendMessage")]
    assert len(texts) >= 5
    assert all(len(t) <= 4096 for t in texts)
    assert texts[0].startswith("<b>Audit log</b>")
    lines = [ln for t in texts for ln in t.split("\n")][1:]
    assert lines[0] == "line 00000 &lt;&amp;&gt; " + "x" * 40
    assert lines == [f"line {i:05d} &lt;&amp;&gt; " + "x" * 40 for i in range(400)]


async def test_crashing_handler_is_logged_and_answered_without_traceback(api, app, caplog):
    with caplog.at_level(logging.ERROR, logger="chatbot.telegram"):
        api.push_text("/boom")
        [call] = await api.wait_for("sendMessage")
    assert call.params["text"] == tg.APOLOGY
    assert "Traceback" not in call.params["text"]
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)
    assert TOKEN not in caplog.text


async def test_conflict_on_get_updates_is_reported(api, app, caplog):
    with caplog.at_level(logging.ERROR, logger="chatbot.telegram"):
        api.fail("getUpdates", 409, CONFLICT)
        for _ in range(300):
            if app.bot_data["test.conflicts"]:
                break
            await asyncio.sleep(0.01)
    assert app.bot_data["test.conflicts"], "on_conflict was not called"
    assert "another process is polling with this bot token" in caplog.text
    assert "<redacted>" not in scrub_text(caplog.text)  # the CLI's log scrubber keeps the advice
    # Polling goes on (PTB backs off and retries), so the bot recovers when the other one stops.
    api.push_text("/status")
    await api.wait_for("sendMessage", timeout=8)


async def test_edited_commands_are_not_served_twice(api, app, dispatcher):
    update = api.push_text("/approve P-1")
    await api.wait_for("sendMessage")
    api._push({"edited_message": {**update["message"], "edit_date": 1, "text": "/approve P-2"}})
    api.push_text("/status")
    await api.wait_for("sendMessage", 2)
    assert dispatcher.texts() == ["/approve P-1", "/status"]


# ── the notifier and the outbox ─────────────────────────────────────────────────────────


async def test_notifier_maps_failures_to_delivery_errors(api, bot):
    notifier = tg.TelegramNotifier(bot)
    reply = Reply(text="funding spike")
    api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(DeliveryError) as throttled:
        await notifier.send("42", reply)
    assert throttled.value.retry_after == 7 and not throttled.value.permanent
    api.fail("sendMessage", 502, "Bad Gateway")
    with pytest.raises(DeliveryError) as outage:
        await notifier.send("42", reply)
    assert outage.value.retry_after is None and not outage.value.permanent
    api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(DeliveryError) as blocked:
        await notifier.send("42", reply)
    assert blocked.value.permanent
    api.fail("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(DeliveryError) as missing:
        await notifier.send("42", reply)
    assert missing.value.permanent
    await notifier.send("42", reply)
    assert [c.params["text"] for c in api.sent("sendMessage")] == ["funding spike"]


def _alert_reply(alert: dict) -> Reply:
    return Reply(title=alert["kind"], text=alert["payload"]["text"], level="alert")


async def test_drain_honours_retry_after(api, bot):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [t0]
    store = MemoryOutbox({"telegram": [str(CHAT)]})
    store.enqueue("funding", {"text": "BTC funding 54.75% APR"}, t0)
    notifier = tg.TelegramNotifier(bot)
    api.fail("sendMessage", 429, "Too Many Requests: retry after 30", retry_after=30)

    assert await drain_outbox(store, [notifier], _alert_reply, lambda: clock[0]) == 0
    assert store.failures[-1][3] == t0 + timedelta(seconds=30)
    clock[0] = t0 + timedelta(seconds=29)
    assert await drain_outbox(store, [notifier], _alert_reply, lambda: clock[0]) == 0
    assert len(api.calls_of("sendMessage")) == 1  # nothing sent before retry_after
    clock[0] = t0 + timedelta(seconds=30)
    assert await drain_outbox(store, [notifier], _alert_reply, lambda: clock[0]) == 1
    assert [c.params["text"] for c in api.sent("sendMessage")] == ["<b>funding</b>\nBTC funding 54.75% APR"]


async def test_outage_then_recovery_delivers_each_alert_exactly_once(api, bot):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [t0]
    store = MemoryOutbox({"telegram": [str(CHAT)]})
    for i in range(5):
        store.enqueue(f"alert-{i}", {"text": f"alert number {i}"}, t0 + timedelta(seconds=i))
    notifier = tg.TelegramNotifier(bot)
    api.fail("sendMessage", 500, "Internal Server Error", times=None)
    for _ in range(20):  # an hour of outage, draining every three minutes
        clock[0] += timedelta(minutes=3)
        assert await drain_outbox(store, [notifier], _alert_reply, lambda: clock[0]) == 0
    assert api.calls_of("sendMessage") and not api.sent("sendMessage")
    api.clear_faults()
    total = 0
    for _ in range(10):
        clock[0] += timedelta(minutes=5)
        total += await drain_outbox(store, [notifier], _alert_reply, lambda: clock[0])
    texts = [c.params["text"] for c in api.sent("sendMessage")]
    assert total == 5
    assert sorted(texts) == sorted(f"<b>alert-{i}</b>\nalert number {i}" for i in range(5))
    assert store.pending("telegram") == []


async def test_crashing_button_handler_answers_the_press_with_an_apology(api, app, dispatcher):
    async def broken(caller, action):
        raise RuntimeError("Traceback: secret internals")

    dispatcher.handle_action = broken
    api.push_text("/propose")
    [sent] = await api.wait_for("sendMessage")
    api.push_callback(api.message(CHAT, sent.result["message_id"]), f"approve:{PROPOSAL}")
    [answer] = await api.wait_for("answerCallbackQuery")
    assert answer.params["text"] == tg.APOLOGY[:200] and answer.params["show_alert"] is True
    assert not api.sent("editMessageText")


async def test_button_on_a_photo_edits_its_caption(api, app, dispatcher):
    async def chart_with_buttons(caller, text):
        return Reply(text="", title="Chart", image=CHART.image, buttons=PROPOSAL_REPLY.buttons)

    dispatcher.handle_text = chart_with_buttons
    api.push_text("/chart")
    [photo] = await api.wait_for("sendPhoto")
    assert photo.params["caption"] == "<b>Chart</b>\nBTC close, 30 days"
    assert photo.params["reply_markup"]["inline_keyboard"]
    api.push_callback(api.message(CHAT, photo.result["message_id"]), f"reject:{PROPOSAL}")
    [edit] = await api.wait_for("editMessageCaption")
    assert edit.params["caption"] == f"<b>Rejected {PROPOSAL}</b>\nNothing traded."
    assert "reply_markup" not in api.message(CHAT, photo.result["message_id"])
