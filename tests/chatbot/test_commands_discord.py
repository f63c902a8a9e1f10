"""The real dispatcher behind the real discord.py bot (simcord): slash /plan, Approve on paper, refusals."""

from __future__ import annotations

import discord
import pytest

from chatbot.auth import Authorizer
from chatbot.discord_bot import build_bot
from core.config import ChatConfig, DiscordConfig
from tests.chatbot.test_commands_world import World, paper_world


@pytest.fixture
async def paper(tmp_path):
    w = await paper_world(tmp_path)
    yield w
    w.store.close()


@pytest.fixture
def simcord_bot(paper: World):
    return build_bot(paper.dispatcher, DiscordConfig(command_prefix="!"))


@pytest.fixture
def guild(simcord_env, paper: World):
    g = simcord_env.create_guild()
    channel = g.create_text_channel("premia")
    owner = g.add_member(simcord_env.create_user("owner"))
    viewer = g.add_member(simcord_env.create_user("viewer"))
    stranger = g.add_member(simcord_env.create_user("stranger"))
    chat = ChatConfig.model_validate({"discord": {"traders": [owner.id], "viewers": [viewer.id]}})
    paper.dispatcher.auth = Authorizer(chat)
    return channel, owner, viewer, stranger


def _buttons(message: discord.Message) -> list[discord.ui.Button]:
    return [c for row in message.components for c in row.children]


async def test_plan_then_approve_on_paper(guild, paper: World):
    channel, owner, _viewer, _stranger = guild
    result = await owner.slash(channel, "plan")
    message = result.response.message
    [embed] = message.embeds
    pid = embed.title.split()[1]
    assert embed.title.startswith(f"Proposal {pid} · expires in 13 min")
    assert [b.label for b in _buttons(message)] == ["Approve", "Reject"]
    await owner.click(message, label="Approve")
    edited = channel.last_message
    assert edited.id == message.id
    assert edited.embeds[0].title == f"Proposal {pid} · executed (paper)"
    assert edited.components == []
    stored = paper.store.get_proposal(pid)
    assert stored is not None and stored.status == "executed"
    assert stored.decided_by == f"discord:{owner.id}" and stored.decided_via == "discord"


async def test_viewer_and_stranger_presses_are_refused_privately(guild, paper: World):
    channel, owner, viewer, stranger = guild
    message = (await owner.slash(channel, "plan")).response.message
    for who, words in ((viewer, "needs the trader role"), (stranger, "allowlist")):
        result = await who.click(message, label="Approve")
        assert result.followups and result.followups[0].ephemeral
        assert words in result.followups[0].content
    assert [b.disabled for b in _buttons(channel.last_message)] == [False, False]
    refused = [r for r in paper.store.audit_log(10) if r["action"] == "refused"]
    assert {r["actor"] for r in refused} == {f"discord:{viewer.id}", f"discord:{stranger.id}"}
    assert all(r["detail"].startswith("button") for r in refused)


async def test_proposal_buttons_expire_with_the_proposal(simcord_env, guild):
    channel, owner, _viewer, _stranger = guild
    await owner.send(channel, "!plan")  # the proposal has 13 minutes left
    await simcord_env.advance_time(12 * 60)
    assert not any(b.disabled for b in _buttons(channel.last_message))
    await simcord_env.advance_time(2 * 60)
    assert all(b.disabled for b in _buttons(channel.last_message))
