"""Alerts in several parts (long text, text then image) through the outbox and the fake Bot API:
a retry after a failure on a later part sends only the parts the chat does not have yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from telegram import Bot

from chatbot import telegram as tg
from chatbot.delivery import drain_outbox
from chatbot.replies import Image, Reply
from chatbot.telegram_render import SentParts, render
from tests.chatbot import PNG_SIGNATURE, tiny_png
from tests.chatbot.test_delivery import MemoryOutbox
from tests.fakes.telegram_api import FakeBotAPI

TOKEN = "123456:TEST-token-never-logged-abcdefghij"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LONG = "\n".join(f"row {i:03d} " + "z" * 50 for i in range(120))  # ~7,200 characters: two parts
AUDIT = {"id": 1, "kind": "audit", "payload": {"text": LONG}}  # as the outbox hands it over


@pytest.fixture
async def api():
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI):
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


def _long_alert(alert: dict) -> Reply:
    return Reply(title=alert["kind"], text=alert["payload"]["text"], level="alert", subject=str(alert["id"]))


def _charted_alert(alert: dict) -> Reply:
    image = Image(tiny_png(), "funding.png", "BTC funding, 30 days")
    return Reply(title="Funding", text=alert["payload"]["text"], image=image, level="alert",
                 subject=str(alert["id"]))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _texts(api: FakeBotAPI, chat: int | None = None) -> list[str]:
    return [c.params["text"] for c in api.sent("sendMessage") if chat is None or c.params["chat_id"] == chat]


async def test_a_throttled_second_part_is_sent_after_retry_after_without_repeating_the_first(api, bot):
    store = MemoryOutbox({"telegram": ["1001"]})
    store.enqueue("audit", {"text": LONG}, T0)
    part1, part2 = (m.text for m in render(_long_alert(AUDIT)))
    api.fail("sendMessage", 429, "Too Many Requests: retry after 30", retry_after=30, after=1)
    clock = Clock()
    notifier = tg.TelegramNotifier(bot)

    assert await drain_outbox(store, [notifier], _long_alert, clock) == 0
    assert _texts(api) == [part1]
    assert store.failures[-1][3] == T0 + timedelta(seconds=30)  # the server's retry_after
    clock.now = T0 + timedelta(seconds=30)
    assert await drain_outbox(store, [notifier], _long_alert, clock) == 1

    assert _texts(api) == [part1, part2]  # part 1 exactly once, part 2 once after the retry
    attempts = [(c.params["text"], c.status) for c in api.calls_of("sendMessage")]
    assert attempts == [(part1, 200), (part2, 429), (part2, 200)]
    assert store.pending("telegram") == []


async def test_an_image_refused_by_an_outage_follows_its_text_once_the_api_is_back(api, bot):
    store = MemoryOutbox({"telegram": ["1001"]})
    store.enqueue("funding", {"text": "BTC funding 54.75% APR"}, T0)
    api.fail("sendPhoto", 502, "Bad Gateway")
    clock = Clock()
    notifier = tg.TelegramNotifier(bot)

    assert await drain_outbox(store, [notifier], _charted_alert, clock) == 0
    clock.now = store.failures[-1][3]  # exponential backoff: no retry_after from a 502
    assert clock.now > T0
    assert await drain_outbox(store, [notifier], _charted_alert, clock) == 1

    assert _texts(api) == ["<b>Funding</b>\nBTC funding 54.75% APR"]
    [photo] = api.sent("sendPhoto")
    assert photo.files["photo"].startswith(PNG_SIGNATURE)
    assert photo.params["caption"] == "BTC funding, 30 days"
    assert [c.status for c in api.calls_of("sendPhoto")] == [502, 200]


async def test_a_chat_that_got_everything_is_not_told_again_when_another_chat_fails_midway(api, bot):
    store = MemoryOutbox({"telegram": ["1001", "2002"]})
    store.enqueue("audit", {"text": LONG}, T0)
    part1, part2 = (m.text for m in render(_long_alert(AUDIT)))
    api.fail("sendMessage", 503, "Service Unavailable", after=3)  # 1001: 1 and 2; 2002: 1, then down
    clock = Clock()
    notifier = tg.TelegramNotifier(bot)

    assert await drain_outbox(store, [notifier], _long_alert, clock) == 1
    clock.now = store.failures[-1][3]
    assert await drain_outbox(store, [notifier], _long_alert, clock) == 1

    assert _texts(api, 1001) == [part1, part2]
    assert _texts(api, 2002) == [part1, part2]


async def test_the_same_long_alert_sent_again_later_goes_out_whole(api, bot):
    notifier = tg.TelegramNotifier(bot)
    reply = Reply(title="audit", text=LONG, subject="audit:daily")
    await notifier.send("1001", reply)
    await notifier.send("1001", reply)  # a new alert with the same key, once the first was complete
    assert len(_texts(api)) == 4


# ── the ledger itself ───────────────────────────────────────────────────────────────────────


def test_a_retry_resends_from_the_first_part_that_changed():
    parts = SentParts()
    key = SentParts.key("1001", Reply(text="x", subject="A-1"))
    parts.delivered(key, ["d1", "d2"])
    assert parts.resume_at(key, ["d1", "d2", "d3"]) == 2
    # A "delivery was late" line moved the split point: repeating a part beats losing lines.
    assert parts.resume_at(key, ["d1*", "d2", "d3"]) == 0
    assert parts.resume_at(key, ["d1", "d2*", "d3"]) == 1


def test_what_a_chat_received_is_forgotten_after_the_ttl_and_per_chat():
    now = [0.0]
    parts = SentParts(ttl_s=60, clock=lambda: now[0])
    reply = Reply(text="x", subject="A-1")
    parts.delivered(SentParts.key("1001", reply), ["d1"])
    assert parts.resume_at(SentParts.key("2002", reply), ["d1", "d2"]) == 0
    assert parts.resume_at(SentParts.key(1001, reply), ["d1", "d2"]) == 1
    now[0] = 61.0
    assert parts.resume_at(SentParts.key("1001", reply), ["d1", "d2"]) == 0


def test_the_ledger_holds_at_most_its_capacity():
    parts = SentParts(capacity=2)
    keys = [SentParts.key("1001", Reply(text="x", subject=f"A-{i}")) for i in range(3)]
    for key in keys:
        parts.delivered(key, ["d1"])
    assert [parts.resume_at(k, ["d1", "d2"]) for k in keys] == [0, 1, 1]


def test_replies_without_a_subject_are_told_apart_by_content():
    a = SentParts.key("1001", Reply(text="one"))
    b = SentParts.key("1001", Reply(text="two"))
    c = SentParts.key("1001", Reply(text="one", image=Image(tiny_png())))
    assert len({a, b, c}) == 3 and a == SentParts.key("1001", Reply(text="one"))
