"""The pure renderers: examples, and properties over arbitrary unicode and markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatbot.discord_render import (
    DESCRIPTION_LIMIT,
    EMBEDS_PER_MESSAGE,
    MESSAGE_EMBED_TOTAL,
    escape_markdown,
    safe_filename,
)
from chatbot.discord_render import render as discord_render
from chatbot.replies import Button, Image, Reply, Table
from chatbot.telegram import ActionCodec
from chatbot.telegram_render import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    clean,
    render,
    render_text,
    utf16_len,
)
from tests.chatbot import BIG, PROPOSAL_REPLY, STATUS, tiny_png

# ── helpers ─────────────────────────────────────────────────────────────────────────────


class _TagChecker(HTMLParser):
    """Checks that tags nest and close, and collects the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in ("b", "pre"):
            self.problems.append(f"unexpected <{tag}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(html_text: str) -> str:
    """Assert `html_text` is balanced Telegram HTML; return its visible text."""
    checker = _TagChecker()
    checker.feed(html_text)
    checker.close()
    assert not checker.problems, (checker.problems, html_text[:300])
    assert not checker.stack, f"unclosed {checker.stack}"
    return "".join(checker.text)


def squash(text: str) -> str:
    return re.sub(r"\s", "", text)


# Strategies kept cheap to draw: short random text for the tricky characters, and long content
# built by repeating a short random snippet, which still passes every limit (4096-character
# messages and embed descriptions, 1024-character captions, 256-character titles, 6,000
# characters a Discord message). Drawing, not rendering, was what made these tests slow.
SPECIALS = list("<>&\"'*_`~|[]#->\n \\")
markup_char = st.one_of(st.sampled_from(SPECIALS), st.characters())
cell_char = st.one_of(st.sampled_from([c for c in SPECIALS if c != "\n"]),
                      st.characters(exclude_characters="\n\r"))
markup = st.text(alphabet=markup_char, max_size=60)
long_line = st.builds(
    lambda snippet, times: snippet * times,
    st.text(alphabet=markup_char, min_size=3, max_size=40),
    st.integers(60, 300),
)
body = st.lists(st.one_of(markup, long_line), max_size=4).map("\n".join)
cells = st.text(alphabet=cell_char, max_size=16)


@st.composite
def tables(draw) -> Table:
    width = draw(st.integers(1, 4))
    row = st.tuples(*[cells] * width)
    rows = draw(st.lists(row, max_size=6)) * draw(st.integers(1, 80))
    return Table(draw(row), tuple(rows))


@st.composite
def replies(draw) -> Reply:
    image = None
    if draw(st.booleans()):
        image = Image(tiny_png(), draw(st.text(max_size=20)), draw(st.one_of(markup, long_line)))
    return Reply(
        text=draw(body),
        title=draw(st.one_of(markup, long_line)),
        tables=tuple(draw(st.lists(tables(), max_size=2))),
        image=image,
        buttons=tuple(draw(st.lists(st.builds(Button, cells, st.text(max_size=70)), max_size=5))),
        level=draw(st.sampled_from(["info", "alert", "error"])),
    )


RENDER = settings(max_examples=100, deadline=None)
# Every limit at least once in each run, whatever the random draws reach.
EDGES = (
    Reply(text="", title="<b>" * 2000, image=Image(tiny_png(), "c.png", "*<&>_`" * 400)),
    Reply(text=("x" * 4095 + "\n") * 3 + "&" * 9000, title="T" * 300, level="error",
          buttons=tuple(Button(f"b{i}", f"go:{i}") for i in range(5))),
    Reply(text="", tables=(Table(("#", "`<>`"), tuple((str(i), "```" * 9) for i in range(2000))),),
          image=Image(tiny_png(), "t.png", "")),
    Reply(text="", buttons=(Button("only", "a:b"),)),
)


def with_edges(test):
    for reply in EDGES:
        test = example(reply)(test)
    return test


# ── Telegram ────────────────────────────────────────────────────────────────────────────


def test_status_renders_as_escaped_html_with_a_pre_table():
    [message] = render(STATUS)
    assert message.text == (
        "<b>Status &lt;paper&gt;</b>\nBTC &amp; ETH within bands; &lt;b&gt;not bold&lt;/b&gt;\n"
        "<pre>asset  weight\nBTC     41.0%\nETH     19.5%</pre>"
    )


def test_buttons_ride_on_the_last_message_in_rows_of_three():
    reply = Reply(text="x", buttons=tuple(Button(str(i), f"a:{i}") for i in range(5)))
    [message] = render(reply)
    assert [[b.label for b in row] for row in message.keyboard] == [["0", "1", "2"], ["3", "4"]]
    assert render(PROPOSAL_REPLY)[-1].keyboard


def test_image_comes_after_the_text_with_its_caption():
    reply = Reply(text="chart below", image=Image(tiny_png(), "c.png", "BTC <30d>"))
    text, photo = render(reply)
    assert (text.text, text.photo) == ("chart below", None)
    assert photo.photo == tiny_png() and photo.text == "BTC &lt;30d&gt;"


def test_image_only_reply_puts_the_title_in_the_caption():
    [photo] = render(Reply(text="", title="Chart", image=Image(tiny_png())))
    assert photo.text == "<b>Chart</b>"


def test_a_bare_photo_with_buttons_carries_the_keyboard_without_filler_text():
    [photo] = render(Reply(text="", image=Image(tiny_png()), buttons=(Button("Go", "go"),)))
    assert photo.photo == tiny_png() and photo.text == "" and photo.keyboard


def test_long_reply_splits_on_line_boundaries():
    chunks = render_text(BIG)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= MESSAGE_LIMIT
        assert all(ln.startswith(("line ", "<b>Audit")) for ln in chunk.split("\n"))


def test_a_huge_table_is_split_into_closed_pre_blocks():
    table = Table(("n", "value"), tuple((str(i), "<&>" * 10) for i in range(600)))
    chunks = render_text(Reply(text="", title="T", tables=(table,)))
    assert len(chunks) > 2
    for chunk in chunks:
        check_html(chunk)
        assert chunk.count("<pre>") == chunk.count("</pre>") == 1


@RENDER
@given(replies())
@with_edges
def test_telegram_messages_fit_and_are_balanced_html(reply: Reply):
    visible = []
    for message in render(reply):
        limit = CAPTION_LIMIT if message.photo is not None else MESSAGE_LIMIT
        assert utf16_len(message.text) <= limit
        assert message.photo is not None or message.text.strip()
        visible.append(check_html(message.text))
    # Nothing lost, nothing repeated (blank lines at a split may go).
    expected = reply.title + reply.text + "".join(t.as_text() for t in reply.tables)
    if reply.image is not None:
        expected += reply.image.caption
    if reply.buttons and reply.image is None and not expected.strip():
        expected = "Choose an action:"  # a photo carries the keyboard itself
    assert squash("".join(visible)) == squash(clean(expected))


@given(st.text(alphabet=st.characters(), max_size=300))
def test_callback_data_fits_64_bytes_and_round_trips(action: str):
    codec = ActionCodec()
    data = codec.encode(action)
    assert len(data.encode()) <= 64
    assert codec.decode(data) == action


# ── Discord ─────────────────────────────────────────────────────────────────────────────


def test_discord_embed_for_status():
    [message] = discord_render(STATUS)
    [embed] = message.embeds
    assert embed.title == "Status <paper>"
    assert embed.description == (
        "BTC & ETH within bands; <b>not bold</b>\n```\nasset  weight\nBTC     41.0%\nETH     19.5%\n```"
    )


def test_discord_markdown_is_escaped():
    assert escape_markdown("*bold* _it_ `code` ~x~ |s| [l](u)") == (
        r"\*bold\* \_it\_ \`code\` \~x\~ \|s\| \[l\](u)"
    )
    assert escape_markdown("# not a header") == r"\# not a header"
    assert escape_markdown("  - not a list - ok") == r"  \- not a list - ok"


def test_discord_image_uses_a_safe_attachment_name():
    [message] = discord_render(Reply(text="x", image=Image(tiny_png(), "../BTC chart.png")))
    assert message.file == ("BTC_chart.png", tiny_png())
    assert message.embeds[-1].image.url == "attachment://BTC_chart.png"
    assert safe_filename("chart") == "chart.png"


@RENDER
@given(replies())
@with_edges
def test_discord_messages_respect_embed_limits(reply: Reply):
    messages = discord_render(reply)
    for message in messages:
        assert 1 <= len(message.embeds) <= EMBEDS_PER_MESSAGE
        total = 0
        for embed in message.embeds:
            description = embed.description or ""
            assert utf16_len(description) <= DESCRIPTION_LIMIT
            assert utf16_len(embed.title or "") <= 256
            assert description.count("```") % 2 == 0  # code blocks never cut open
            total += sum(utf16_len(p or "") for p in (embed.title, description, embed.footer.text))
        assert total <= MESSAGE_EMBED_TOTAL
    if reply.buttons:
        assert messages[-1].buttons == reply.buttons
    assert sum(m.file is not None for m in messages) == (reply.image is not None)
