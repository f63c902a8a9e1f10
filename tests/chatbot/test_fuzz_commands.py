"""Hypothesis fuzz of the command parser and dispatcher: any input gets a Reply, never an exception."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot import parsing
from chatbot.commands import REGISTRY
from chatbot.replies import Reply
from core.errors import CommandError
from tests.chatbot.test_commands_world import STRANGER, TRADER, VIEWER, World, make_world

NAMES = [c.spec.name for c in REGISTRY if c.spec.name not in ("backtest", "chart")]
# Text as people and attackers send it: any code point (lone surrogates included), markup,
# injection attempts, right-to-left marks, very long lines.
ANY_TEXT = st.text(alphabet=st.characters(), max_size=600)
NASTY = st.sampled_from([
    "<b>x</b>", "</pre>", "<a href='javascript:alert(1)'>", "'; DROP TABLE proposals; --", "${jndi:x}",
    "\u202e", "\u200b", "😀", "ПРИВЕТ", "お早う", "\ud800", "%s%s%n", "{0}", "../../etc/passwd",
    "P-" + "A" * 99,
    "-1", "0", "1e9", "NaN", "∞", "2h30", "1h30m", "99999999999999999999d", " ", "\n", "\t", "@PremiaTestBot",
])
ARG = st.one_of(NASTY, st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
COMMANDS = st.builds(
    lambda name, args, slash: slash + name + " " + " ".join(args),
    st.sampled_from(NAMES),
    st.lists(ARG, max_size=8),
    st.sampled_from(["/", "／", "/ ", ""]),
)
CALLERS = st.sampled_from([TRADER, VIEWER, STRANGER])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory):
    w = make_world(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.store.close()


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def check(reply: object) -> None:
    assert isinstance(reply, Reply)
    text = reply.as_plain_text()
    assert "Traceback" not in text
    assert len(text) < 20_000


def run_text(world: World, loop, caller, text: str) -> Reply:
    return loop.run_until_complete(world.dispatcher.handle_text(caller, text))


@FUZZ
@given(text=ANY_TEXT, caller=CALLERS)
def test_any_text_gets_a_reply(fuzz_world, loop, text, caller, caplog):
    with caplog.at_level(logging.ERROR):
        check(run_text(fuzz_world, loop, caller, text))
    assert "failed" not in caplog.text  # no handler crashed and fell back on the apology


@FUZZ
@given(text=COMMANDS, caller=CALLERS)
def test_real_commands_with_garbage_arguments(fuzz_world, loop, text, caller, caplog):
    with caplog.at_level(logging.ERROR):
        check(run_text(fuzz_world, loop, caller, text))
    assert "failed" not in caplog.text


@FUZZ
@given(action=st.one_of(ANY_TEXT, st.builds(lambda n, a: f"{n}:{a}", st.sampled_from(NAMES), ARG)),
       caller=CALLERS)
def test_any_button_action_gets_a_reply(fuzz_world, loop, action, caller, caplog):
    with caplog.at_level(logging.ERROR):
        check(loop.run_until_complete(fuzz_world.dispatcher.handle_action(caller, action)))
    assert "failed" not in caplog.text


@given(text=ANY_TEXT)
@settings(max_examples=500, deadline=None)
def test_parser_returns_or_raises_command_error_only(text):
    try:
        parsed = parsing.parse_command(text)
    except CommandError as exc:
        assert str(exc)
    else:
        assert parsing._NAME.fullmatch(parsed.name)
        assert len(parsed.args) <= parsing.MAX_ARGS


@given(arg=ARG)
@settings(max_examples=300, deadline=None)
def test_argument_parsers_only_raise_command_error(arg):
    for parse in (parsing.proposal_id, parsing.duration, lambda a: parsing.count(a, 5),
                  lambda a: parsing.asset(a, ["BTC", "ETH"]), parsing.day,
                  lambda a: parsing.choice(a, ("allocation", "funding"), "chart")):
        try:
            value = parse(arg)
        except CommandError as exc:
            assert str(exc) and "Traceback" not in str(exc)
        else:
            if parse is parsing.duration:
                assert timedelta(minutes=1) <= value <= timedelta(days=30)


@given(text=st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_echo_is_short_and_harmless(text):
    out = parsing.echo(text)
    assert len(out) <= 25
    assert "<" not in out and ">" not in out and "&" not in out
