"""Hypothesis fuzz of the command parser and dispatcher: any input gets a Reply, never an exception."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from chatbot import parsing
from chatbot.commands import REGISTRY
from chatbot.handlers_charts import KINDS
from chatbot.replies import Reply
from core.config import load_presets
from core.errors import CommandError
from core.history_csv import default_data_dir
from tests.chatbot import PNG_SIGNATURE
from tests.chatbot.test_commands_world import STRANGER, TRADER, VIEWER, World, make_world

NAMES = [c.spec.name for c in REGISTRY]
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
# Words /chart and /backtest accept, mixed with garbage, so the fuzz reaches the drawing and the
# replay too (each ~0.5 s: few examples, two pinned valid ones, and three months of history
# rather than eight years).
KIND_WORDS = st.sampled_from([*KINDS, "Funding", "BASIS"])
ASSET_WORDS = st.sampled_from(["btc", "ETH", "SOL", "XRP", "DOGE", "USDT"])
PRESET_WORDS = st.sampled_from(sorted(load_presets()))
DATE_WORDS = st.sampled_from(["2025-04-01", "2025-05", "2025-06-02", "2018-01-01", "2030-12-31",
                              "2025-02-30"])


def _command(name: str, first: st.SearchStrategy[str], rest: st.SearchStrategy[str], most: int):
    words = st.tuples(first, st.lists(st.one_of(rest, ARG), max_size=most))
    return words.map(lambda w: " ".join([f"/{name}", w[0], *w[1]]))


DRAWING = st.one_of(
    _command("chart", st.one_of(KIND_WORDS, ARG), ASSET_WORDS, 2),
    _command("backtest", st.one_of(PRESET_WORDS, ARG), DATE_WORDS, 3),
)
HISTORY = ("2025-03-01", "2025-06-02")


def small_history(source: Path, target: Path, assets: tuple[str, ...]) -> Path:
    """The shared CSVs cut to a few months of the world's assets (an empty folder without them)."""
    target.mkdir(exist_ok=True)
    for csv in sorted(source.glob("*.csv")):
        lines = csv.read_text().splitlines(keepends=True)
        keep = [ln for ln in lines[1:] if HISTORY[0] <= ln[:10] <= HISTORY[1]
                and ("/" not in ln or any(f",{a}/" in ln for a in assets))]
        (target / csv.name).write_text(lines[0] + "".join(keep))
    return target


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory):
    w = make_world(tmp_path_factory.mktemp("fuzz"))
    shared, history = default_data_dir() / "derived", tmp_path_factory.mktemp("history")
    w.dispatcher.services.history_dir = small_history(shared, history, tuple(w.settings.assets))
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


@settings(FUZZ, max_examples=15)
@given(text=DRAWING, caller=CALLERS)
@example(text="/chart Funding eth", caller=VIEWER)
@example(text="/backtest premium-daa 2018-01-01 2030-12-31", caller=TRADER)  # clipped to the history
def test_charts_and_backtests_with_any_arguments(fuzz_world, loop, text, caller, caplog):
    with caplog.at_level(logging.ERROR):
        reply = run_text(fuzz_world, loop, caller, text)
    check(reply)
    assert "failed" not in caplog.text
    event(f"{text.split()[0]} {reply.level}")  # --hypothesis-show-statistics: how many drew
    if reply.level != "error":
        assert reply.image is not None and reply.image.png.startswith(PNG_SIGNATURE)


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
