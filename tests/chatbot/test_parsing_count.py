"""Counts typed after a command (/history N): a signed or fractional number is told what N must be."""

from __future__ import annotations

import pytest

from chatbot import parsing
from core.errors import CommandError
from tests.chatbot.test_commands_world import World, world_fixture  # noqa: F401 — the `world` fixture


@pytest.mark.parametrize("typed", ["-5", "+3", "2.5", "−2", "0,5"])
def test_a_negative_or_fractional_count_must_be_a_positive_whole_number(typed):
    with pytest.raises(CommandError, match="must be a positive whole number; use one from 1 to 30"):
        parsing.count(typed, 5, high=30)


@pytest.mark.parametrize("typed", ["lots", "5x", "-"])
def test_words_are_still_not_numbers(typed):
    with pytest.raises(CommandError, match="is not a number"):
        parsing.count(typed, 5, high=30)


def test_a_whole_number_in_range_is_returned():
    assert parsing.count(" 7 ", 5, high=30) == 7 and parsing.count(None, 5) == 5


async def test_history_minus_five_says_what_n_must_be(world: World):
    reply = await world.say("/history -5")
    assert "positive whole number" in reply.text and "is not a number" not in reply.text
