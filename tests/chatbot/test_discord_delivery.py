"""The Discord notifier under simcord: rate limits and outages become retryable DeliveryErrors,
the outbox delivers the alert afterwards, and a retry resumes a multi-part alert."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest
from simcord.backend.errors import BackendError
from simcord.http import router

from chatbot.delivery import DeliveryError, drain_outbox
from chatbot.discord_bot import MAX_RATELIMIT_WAIT_S, DiscordNotifier, build_bot
from chatbot.discord_render import render
from chatbot.replies import Reply
from core.config import DiscordConfig
from tests.chatbot import FakeDispatcher
from tests.chatbot.test_delivery import MemoryOutbox

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MESSAGES = "/channels/*/messages"
# Four 900-character lines fill a 4096-character embed, and two such embeds pass the 6,000
# characters a message may hold: three messages.
LONG = "\n".join(f"row {i:03d} " + "z" * 900 for i in range(12))


@pytest.fixture
def simcord_bot():
    return build_bot(FakeDispatcher(), DiscordConfig(command_prefix="!"))


@pytest.fixture
def channel(simcord_env):
    return simcord_env.create_guild().create_text_channel("alerts")


class _Response:
    """What discord.py keeps of an aiohttp response when it raises HTTPException."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status, self.reason, self.headers = status, "Too Many Requests", headers


class Faults:
    """Failures simcord's `inject_error` cannot express: after N good calls, or a 429 carrying
    the Retry-After header Discord sends (simcord's fake responses have no headers)."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []

    def fail(self, status: int, *, after: int = 0, retry_after: float | None = None,
             rate_limited: float | None = None) -> None:
        self.rules.append({"status": status, "after": after, "retry_after": retry_after,
                           "rate_limited": rate_limited})

    def check(self, backend: Any, method: str, path: str) -> None:
        if method == "POST" and fnmatch.fnmatch(path, MESSAGES) and self.rules:
            rule = self.rules[0]
            if rule["after"] > 0:
                rule["after"] -= 1
            else:
                self.rules.pop(0)
                if rule["rate_limited"] is not None:
                    # discord.py raises this when a 429 asks for longer than max_ratelimit_timeout.
                    raise discord.RateLimited(rule["rate_limited"])
                if rule["retry_after"] is not None:
                    data = {"message": "You are being rate limited.", "retry_after": rule["retry_after"],
                            "global": False, "code": 0}
                    headers = {"Retry-After": str(rule["retry_after"])}
                    raise discord.HTTPException(_Response(429, headers), data)  # type: ignore[arg-type]
                raise BackendError(rule["status"], 0, "injected")


@pytest.fixture
def faults(monkeypatch):
    f = Faults()
    real = router._check_faults

    def check(backend: Any, method: str, path: str) -> None:
        f.check(backend, method, path)
        real(backend, method, path)

    monkeypatch.setattr(router, "_check_faults", check)
    return f


def _alert(alert: dict) -> Reply:
    return Reply(title=alert["kind"], text=alert["payload"]["text"], level="alert", subject=str(alert["id"]))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _descriptions(channel) -> list[str]:
    return [e.description or "" for m in channel.history() if m.author.bot for e in m.embeds]


async def test_a_429_with_retry_after_is_retryable_at_the_time_discord_asks(channel, simcord_bot, faults):
    faults.fail(429, retry_after=7.5)
    with pytest.raises(DeliveryError) as throttled:
        await DiscordNotifier(simcord_bot).send(str(channel.id), Reply(text="x"))
    assert not throttled.value.permanent and throttled.value.retry_after == 7.5


async def test_a_long_rate_limit_raised_by_discord_py_is_retryable_with_its_wait(channel, simcord_bot,
                                                                                 faults):
    faults.fail(429, rate_limited=120.0)
    with pytest.raises(DeliveryError) as throttled:
        await DiscordNotifier(simcord_bot).send(str(channel.id), Reply(text="x"))
    assert not throttled.value.permanent and throttled.value.retry_after == 120.0


def test_the_bot_gives_long_rate_limits_back_to_the_outbox_instead_of_sleeping():
    bot = build_bot(FakeDispatcher(), DiscordConfig(command_prefix="!"))
    assert bot.http.max_ratelimit_timeout == MAX_RATELIMIT_WAIT_S


async def test_a_429_without_retry_after_and_a_503_back_off_and_deliver_later(simcord_env, channel,
                                                                              simcord_bot):
    store = MemoryOutbox({"discord": [str(channel.id)]})
    store.enqueue("Funding spike", {"text": "BTC 54.75% APR"}, T0)
    notifier, clock = DiscordNotifier(simcord_bot), Clock()

    simcord_env.inject_error("POST", MESSAGES, status=429, message="You are being rate limited.")
    assert await drain_outbox(store, [notifier], _alert, clock) == 0
    first_retry = store.failures[-1][3]
    assert first_retry == T0 + timedelta(seconds=5)  # no Retry-After: the outbox's backoff
    assert "rate limit" in store.failures[-1][2]

    clock.now = first_retry
    simcord_env.inject_error("POST", MESSAGES, status=503, message="Service Unavailable")
    assert await drain_outbox(store, [notifier], _alert, clock) == 0
    assert store.failures[-1][3] == first_retry + timedelta(seconds=10)  # backing off further
    assert "unavailable" in store.failures[-1][2]
    assert not [m for m in channel.history() if m.author.bot]

    clock.now = store.failures[-1][3]
    assert await drain_outbox(store, [notifier], _alert, clock) == 1
    await simcord_env.settle()
    assert _descriptions(channel) == ["BTC 54.75% APR"]
    assert store.pending("discord") == []


async def test_a_429_on_the_second_message_resumes_there_after_retry_after(simcord_env, channel, simcord_bot,
                                                                          faults):
    store = MemoryOutbox({"discord": [str(channel.id)]})
    store.enqueue("Audit", {"text": LONG}, T0)
    rendered = render(_alert({"id": 1, "kind": "Audit", "payload": {"text": LONG}}))
    assert len(rendered) == 3
    expected = [e.description for m in rendered for e in m.embeds]
    notifier, clock = DiscordNotifier(simcord_bot), Clock()
    faults.fail(429, after=1, retry_after=30)

    assert await drain_outbox(store, [notifier], _alert, clock) == 0
    assert store.failures[-1][3] == T0 + timedelta(seconds=30)
    clock.now = T0 + timedelta(seconds=30)
    assert await drain_outbox(store, [notifier], _alert, clock) == 1
    await simcord_env.settle()

    posted = [r.json["embeds"][0]["description"][:7] for r in simcord_env.http_requests
              if r.method == "POST" and fnmatch.fnmatch(r.path, MESSAGES)]
    # Part 1, part 2 throttled; after the retry: part 2 and part 3, never part 1 again.
    assert posted == ["row 000", "row 004", "row 004", "row 008"]
    assert sorted(_descriptions(channel)) == sorted(expected)  # each part exactly once
