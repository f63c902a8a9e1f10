"""Who may do what: roles from allowlists, refusals audited, buttons checked like commands."""

from __future__ import annotations

from chatbot.auth import Authorizer
from chatbot.replies import Caller
from core.config import ChatConfig
from tests.chatbot.test_commands_world import (
    DISCORD_TRADER,
    STRANGER,
    TRADER,
    VIEWER,
    World,
    make_world,
    settings_for,
    world_fixture,  # noqa: F401 — the `world` fixture
)


def test_roles_come_from_the_allowlists():
    auth = Authorizer(settings_for().chat)
    assert auth.role_of(TRADER) == "trader"
    assert auth.role_of(VIEWER) == "viewer"
    assert auth.role_of(STRANGER) is None
    assert auth.role_of(DISCORD_TRADER) == "trader"
    # Ids are per transport: a Telegram trader's number means nothing on Discord.
    assert auth.role_of(Caller("discord", "1001", "9000")) is None
    assert auth.role_of(Caller("telegram", "", "1")) is None
    assert auth.role_of(Caller("console", "anyone", "console")) == "trader"
    assert Authorizer(ChatConfig(console_role="viewer")).role_of(Caller("console", "x", "c")) == "viewer"


def test_faceless_telegram_senders_are_never_trusted():
    # Even if someone allowlisted the anonymous-admin bot id, it stands for nobody in particular.
    auth = Authorizer(ChatConfig.model_validate({"telegram": {"traders": [1087968824]}}))
    verdict = auth.check(Caller("telegram", "1087968824", "-100"), "viewer", "status")
    assert not verdict.allowed
    assert "anonymous admin" in verdict.reason


async def test_viewer_cannot_approve_typed_or_pressed(world: World):
    pid = (await world.say("/plan")).subject
    typed = await world.say(f"/approve {pid}", VIEWER)
    pressed = await world.press(f"approve:{pid}", VIEWER)
    for reply in (typed, pressed):
        assert reply.level == "error"
        assert reply.text.startswith("/approve needs the trader role, and you are a viewer.")
    assert world.executor is not None and world.executor.calls == []
    sp = world.store.get_proposal(pid)
    assert sp is not None and sp.status == "proposed"
    refused = [r for r in world.store.audit_log(10) if r["action"] == "refused"]
    assert [(r["actor"], r["subject"], r["detail"]) for r in refused] == [
        ("telegram:2002", "/approve", "button; role viewer"),
        ("telegram:2002", "/approve", "typed; role viewer"),
    ]


async def test_viewer_may_read_but_not_switch(world: World):
    assert (await world.say("/status", VIEWER)).level == "info"
    pid = (await world.say("/plan")).subject
    for command in ("/pause", "/resume", "/mute fear_greed 1h", f"/reject {pid}"):
        assert (await world.say(command, VIEWER)).level == "error", command
    assert world.store.get_flag("paused") is None


async def test_unknown_user_is_refused_politely_and_audited(world: World):
    for text in ("/status", "/approve P-ABCDEF", "/nonsense", "hello", "\x00\x01"):
        reply = await world.say(text, STRANGER)
        assert reply.level == "error"
        assert reply.text.startswith("Sorry, I only take commands from people on my allowlist.")
        assert "Your Telegram user id is 6666" in reply.text
    rows = [r for r in world.store.audit_log(20) if r["actor"] == "telegram:6666"]
    assert [r["subject"] for r in reversed(rows)] == ["/status", "/approve", "/nonsense", "/(not a command)",
                                                      "/(not a command)"]
    assert all(r["action"] == "refused" and r["chat_id"] == "6666" for r in rows)


async def test_button_press_is_checked_exactly_like_a_command(world: World):
    pid = (await world.say("/plan")).subject
    reply = await world.press(f"approve:{pid}", STRANGER)
    assert reply.level == "error" and "allowlist" in reply.text
    row = world.store.audit_log(1)[0]
    assert (row["action"], row["subject"], row["detail"]) == ("refused", "/approve", "button; role none")
    assert world.executor is not None and world.executor.calls == []


async def test_in_a_group_only_allowlisted_people_act(world: World):
    pid = (await world.say("/plan")).subject
    outsider = Caller("telegram", "6666", "-100500", "Mallory")
    assert (await world.press(f"reject:{pid}", outsider)).level == "error"
    member = Caller("telegram", "1001", "-100500", "Alice")
    assert (await world.press(f"reject:{pid}", member)).title.endswith("rejected")


async def test_empty_allowlists_refuse_everyone_but_the_console(tmp_path):
    w = make_world(tmp_path, settings=settings_for(chat={}))
    assert (await w.say("/status", TRADER)).level == "error"
    assert (await w.console(tmp_path).run_line("/status")).startswith("Portfolio")
    w.store.close()
