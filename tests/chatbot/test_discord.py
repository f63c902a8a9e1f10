"""The real discord.py bot under simcord: slash and prefix commands, buttons, expiry, notifier."""

from __future__ import annotations

import discord
import pytest

from chatbot.delivery import DeliveryError
from chatbot.discord_bot import APOLOGY, DiscordNotifier, build_bot
from chatbot.replies import Reply
from core.config import DiscordConfig
from tests.chatbot import PROPOSAL, FakeDispatcher


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
def simcord_bot(dispatcher: FakeDispatcher):
    return build_bot(dispatcher, DiscordConfig(command_prefix="!"))


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("premia")
    owner = guild.add_member(simcord_env.create_user("owner"))
    return channel, owner


def _buttons(message: discord.Message) -> list[discord.ui.Button]:
    return [c for row in message.components for c in row.children]


async def test_slash_commands_are_generated_from_the_registry(world, dispatcher):
    channel, owner = world
    assert set(owner.available_commands(channel)) == {s.name for s in dispatcher.commands()}


async def test_slash_command_replies_with_an_embed(world, dispatcher):
    channel, owner = world
    result = await owner.slash(channel, "status")
    # After a deferral, the first follow-up fills in the "thinking…" response.
    [embed] = result.response.embeds
    assert embed.title == "Status <paper>"
    assert "BTC & ETH within bands; <b>not bold</b>" in embed.description
    assert "```\nasset  weight\nBTC     41.0%\nETH     19.5%\n```" in embed.description
    kind, caller, text = dispatcher.calls[0]
    assert (kind, text) == ("text", "/status")
    assert (caller.transport, caller.user_id, caller.chat_id) == ("discord", str(owner.id), str(channel.id))


async def test_slash_command_arguments_reach_the_dispatcher(world, dispatcher):
    channel, owner = world
    await owner.slash(channel, "approve", args="P-1")
    assert dispatcher.texts() == ["/approve P-1"]


async def test_prefix_command_fallback(world, dispatcher):
    channel, owner = world
    await owner.send(channel, "!approve P-9")
    assert dispatcher.texts() == ["/approve P-9"]
    assert channel.last_message.embeds[0].title == "Approved P-9"


async def test_unknown_prefix_command_gets_the_dispatchers_friendly_reply(world, dispatcher):
    channel, owner = world
    await owner.send(channel, "!frobnicate now")
    assert dispatcher.texts() == ["/frobnicate now"]
    assert "try /help" in channel.last_message.embeds[0].description


async def test_button_press_reaches_handle_action_and_edits_the_message(world, dispatcher):
    channel, owner = world
    result = await owner.slash(channel, "propose")
    proposal = result.response
    assert [b.label for b in _buttons(proposal.message)] == ["Approve", "Reject"]
    await owner.click(proposal.message, label="Approve")
    assert dispatcher.actions() == [f"approve:{PROPOSAL}"]
    edited = channel.last_message
    assert edited.id == proposal.id
    assert edited.embeds[0].title == f"Approved {PROPOSAL}"
    assert edited.components == []  # the decision removed the buttons


async def test_refused_press_is_private_and_keeps_the_buttons(world, dispatcher):
    channel, owner = world
    await owner.send(channel, "!propose")
    message = channel.last_message
    dispatcher.handle_action = _refuse(dispatcher)  # type: ignore[method-assign]
    result = await owner.click(message, label="Reject")
    assert result.followups and result.followups[0].ephemeral
    assert "not allowed" in result.followups[0].content
    assert [b.disabled for b in _buttons(channel.last_message)] == [False, False]


def _refuse(dispatcher: FakeDispatcher):
    async def handle_action(caller, action):
        dispatcher.calls.append(("action", caller, action))
        return Reply(text="You are not allowed to do that.", level="error")

    return handle_action


async def test_buttons_are_disabled_when_the_proposal_expires(simcord_env, world):
    channel, owner = world
    await owner.send(channel, "!propose")  # expires_in_s = 60
    await simcord_env.advance_time(30)
    assert not any(b.disabled for b in _buttons(channel.last_message))
    await simcord_env.advance_time(31)
    buttons = _buttons(channel.last_message)
    assert buttons and all(b.disabled for b in buttons)


async def test_image_is_attached_and_shown_in_the_embed(world):
    channel, owner = world
    await owner.send(channel, "!chart")
    message = channel.last_message
    [attachment] = message.attachments
    assert attachment.filename == "btc.png"
    assert message.embeds[0].image.url == "attachment://btc.png"
    assert message.embeds[0].footer.text == "BTC close, 30 days"


async def test_long_reply_respects_embed_limits(world):
    channel, owner = world
    await owner.send(channel, "!big")
    messages = [m for m in channel.history() if m.author.bot]
    assert len(messages) >= 2
    for message in messages:
        assert sum(len(e.description or "") + len(e.title or "") for e in message.embeds) <= 6000
        assert all(len(e.description or "") <= 4096 for e in message.embeds)


async def test_crashing_command_apologizes_without_traceback(simcord_env, world):
    channel, owner = world
    await owner.send(channel, "!boom")
    assert channel.last_message.content == APOLOGY
    errors = simcord_env.errors  # reading them tells simcord they were expected
    assert errors and "secret internals" in repr(errors[-1])


async def test_crashing_slash_command_apologizes(simcord_env, world):
    channel, owner = world
    result = await owner.slash(channel, "boom")
    texts = [result.response.content] + [m.content for m in result.followups]
    assert APOLOGY in texts
    assert "secret internals" in repr(simcord_env.errors)


async def test_notifier_sends_an_embed(simcord_env, world, simcord_bot):
    channel, _ = world
    notifier = DiscordNotifier(simcord_bot)
    await notifier.send(str(channel.id), Reply(title="Funding spike", text="BTC 54.75% APR", level="alert"))
    await simcord_env.settle()
    [embed] = channel.last_message.embeds
    assert (embed.title, embed.description) == ("Funding spike", "BTC 54.75% APR")


async def test_notifier_maps_refusals_and_outages(simcord_env, world, simcord_bot):
    channel, _ = world
    notifier = DiscordNotifier(simcord_bot)
    simcord_env.inject_error(
        "POST", "/channels/*/messages", status=403, code=50013, message="Missing Permissions"
    )
    with pytest.raises(DeliveryError) as refused:
        await notifier.send(str(channel.id), Reply(text="x"))
    assert refused.value.permanent
    with pytest.raises(DeliveryError) as bad_id:
        await notifier.send("not-a-channel", Reply(text="x"))
    assert bad_id.value.permanent


async def test_exclamations_are_not_taken_for_commands(world, dispatcher):
    channel, owner = world
    await owner.send(channel, "!!! great news")
    assert dispatcher.calls == []
