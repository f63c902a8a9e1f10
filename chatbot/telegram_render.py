"""Reply → Telegram messages (HTML parse mode). Pure: no I/O, no `telegram` import.

Also home of what both renderers share: `pack_blocks`, the line packer that splits long replies
on line boundaries without ever cutting a tag or code block in two, and `SentParts`, which lets
a notifier resume a multi-part reply where a failed attempt stopped.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatbot.replies import Button, Reply

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
BUTTONS_PER_ROW = 3
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Block:
    """Lines that share one wrapper (e.g. "<pre>" … "</pre>"); the wrapper is repeated per chunk."""

    lines: tuple[str, ...]  # raw text, escaped by the packer
    open: str = ""
    close: str = ""
    escape: Callable[[str], str] | None = None  # overrides the packer's escape for this block


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """One sendMessage (or sendPhoto when `photo` is set, `text` then being the caption)."""

    text: str
    photo: bytes | None = None
    filename: str = "chart.png"
    keyboard: tuple[tuple[Button, ...], ...] = ()


def utf16_len(text: str) -> int:
    """Length as Telegram and Discord count it (UTF-16 code units); ≥ len(text)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clean(text: str) -> str:
    """Replace lone surrogates, which no API can encode, with U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def escape_html(text: str) -> str:
    """Escape the three characters Telegram's HTML mode reserves."""
    return html.escape(text, quote=False)


def _hard_split(raw: str, budget: int, escape: Callable[[str], str]) -> list[str]:
    """Cut one over-long line into pieces whose escaped form fits `budget`."""
    pieces: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(raw):
        # Escaping one character alone is its worst case (line-start rules included).
        cost = utf16_len(escape(ch))
        if used + cost > budget and i > start:
            pieces.append(raw[start:i])
            start, used = i, 0
        used += cost
    pieces.append(raw[start:])
    return pieces


def pack_blocks(
    blocks: Sequence[Block], limit: int, escape: Callable[[str], str], sep: str = "\n"
) -> list[str]:
    """Join blocks into chunks of at most `limit` UTF-16 units, splitting only between lines.

    Each chunk re-opens and closes the wrappers it uses, so every chunk is well formed on its
    own; a single line longer than a chunk is cut, between characters, never inside an escape.
    """
    units: list[tuple[int, str]] = []  # (block index, escaped line)
    for index, block in enumerate(blocks):
        budget = limit - utf16_len(block.open + block.close)
        if budget < 8:
            raise ValueError(f"limit {limit} leaves no room inside {block.open!r}")
        esc = block.escape or escape
        for raw in block.lines:
            for piece in _hard_split(raw, budget, esc):
                units.append((index, esc(piece)))

    chunks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for index, line in units:
        block = blocks[index]
        if not current:
            if not line.strip():
                continue  # a chunk never starts with blank lines
            cost = utf16_len(block.open + line + block.close)
        elif current[-1][0] == index:
            cost = utf16_len(sep + line)
        else:
            cost = utf16_len(sep + block.open + line + block.close)
        if current and size + cost > limit:
            chunks.append(current)
            current, size = [], 0
            if not line.strip():
                continue
            cost = utf16_len(block.open + line + block.close)
        current.append((index, line))
        size += cost
    if current:
        chunks.append(current)
    rendered = (_render_chunk(chunk, blocks, sep) for chunk in chunks)
    return [text for text in rendered if text.strip()]


def _render_chunk(chunk: list[tuple[int, str]], blocks: Sequence[Block], sep: str) -> str:
    while chunk and not chunk[-1][1].strip():
        chunk = chunk[:-1]  # trailing blank lines only cost room
    runs: list[tuple[int, list[str]]] = []
    for index, line in chunk:
        if runs and runs[-1][0] == index:
            runs[-1][1].append(line)
        else:
            runs.append((index, [line]))
    return sep.join(blocks[i].open + sep.join(lines) + blocks[i].close for i, lines in runs)


def split_lines(text: str) -> tuple[str, ...]:
    return tuple(clean(text).replace("\r\n", "\n").split("\n"))


def reply_blocks(reply: Reply, *, with_title: bool = True) -> list[Block]:
    """Title in bold, text as is, each table in its own <pre> block."""
    blocks: list[Block] = []
    if with_title and reply.title.strip():
        blocks.append(Block(split_lines(reply.title), "<b>", "</b>"))
    if reply.text.strip():
        blocks.append(Block(split_lines(reply.text)))
    blocks.extend(Block(split_lines(t.as_text()), "<pre>", "</pre>") for t in reply.tables)
    return blocks


def keyboard_rows(buttons: Sequence[Button]) -> tuple[tuple[Button, ...], ...]:
    """Buttons laid out in rows of at most three."""
    return tuple(tuple(buttons[i : i + BUTTONS_PER_ROW]) for i in range(0, len(buttons), BUTTONS_PER_ROW))


def render_text(reply: Reply, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The reply's title, text and tables as HTML chunks of at most `limit` characters."""
    return pack_blocks(reply_blocks(reply), limit, escape_html)


def render(reply: Reply) -> list[TelegramMessage]:
    """Text chunks first, then the image with its caption; the keyboard rides on the last one."""
    if reply.image is not None and not (reply.text.strip() or reply.tables):
        return assemble([], reply, caption_title=True)  # a lone title belongs in the caption
    chunks = render_text(reply)
    return assemble(chunks, reply, caption_title=not chunks)


def assemble(chunks: Sequence[str], reply: Reply, *, caption_title: bool) -> list[TelegramMessage]:
    """Messages for text `chunks`, then the reply's image, with its keyboard on the last one."""
    messages = [TelegramMessage(text=chunk) for chunk in chunks]
    if reply.image is not None:
        blocks = [Block(split_lines(reply.image.caption))] if reply.image.caption.strip() else []
        if caption_title and reply.title.strip():
            blocks.insert(0, Block(split_lines(reply.title), "<b>", "</b>"))
        captions = pack_blocks(blocks, CAPTION_LIMIT, escape_html) or [""]
        messages.append(
            TelegramMessage(text=captions[0], photo=reply.image.png, filename=reply.image.filename)
        )
        messages.extend(TelegramMessage(text=extra) for extra in captions[1:])
    if reply.buttons:
        if not messages:
            messages.append(TelegramMessage(text="Choose an action:"))
        last = messages[-1]
        messages[-1] = TelegramMessage(last.text, last.photo, last.filename, keyboard_rows(reply.buttons))
    return messages


def short_notice(reply: Reply, limit: int = 200) -> str:
    """A plain one-liner for callback answers (toasts show at most 200 characters)."""
    first = next((ln.strip() for ln in reply.as_plain_text().splitlines() if ln.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


# ── resuming multi-part deliveries ──────────────────────────────────────────────────────────


def part_digest(*fields: object) -> str:
    """A fingerprint of one rendered part (bytes hashed as they are, anything else by repr)."""
    h = hashlib.sha256()
    for f in fields:
        h.update(f if isinstance(f, bytes) else repr(f).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


class SentParts:
    """Which leading parts of a multi-part reply a chat already has, so a retry sends the rest.

    A long alert goes out as several messages (4096-character pieces; text, then an image). When
    part 2 hits a 429 or an outage, the outbox retries the whole alert later; without this the
    chat would get part 1 a second time. A retry skips the leading parts it renders exactly as
    delivered before, and resends from the first one that changed (a "delivery was late" line
    can move a split point: repeating a part beats losing lines).

    Kept in process memory, bounded and for `ttl_s`: a restart between two parts of one alert is
    rare, and then the chat gets the earlier parts twice (the outbox's at-least-once promise).
    """

    def __init__(
        self, *, ttl_s: float = 86_400.0, capacity: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._done: OrderedDict[tuple[str, str], tuple[float, tuple[str, ...]]] = OrderedDict()
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._clock = clock

    @staticmethod
    def key(chat_id: str | int, reply: Reply) -> tuple[str, str]:
        """The chat and the reply's subject (an alert's key), else a fingerprint of its content."""
        image = reply.image.png if reply.image is not None else b""
        return str(chat_id), reply.subject or part_digest(reply.as_plain_text(), image)

    def resume_at(self, key: tuple[str, str], digests: Sequence[str]) -> int:
        """How many leading parts (of these fingerprints) the chat already received."""
        entry = self._done.get(key)
        if entry is None or self._clock() - entry[0] > self._ttl_s:
            return 0
        skip = 0
        for sent, now in zip(entry[1], digests, strict=False):
            if sent != now:
                break
            skip += 1
        return skip

    def delivered(self, key: tuple[str, str], digests: Sequence[str]) -> None:
        """The chat now has these leading parts."""
        self._done[key] = (self._clock(), tuple(digests))
        self._done.move_to_end(key)
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)

    def finished(self, key: tuple[str, str]) -> None:
        """Every part arrived: a later reply with the same subject starts from the first part."""
        self._done.pop(key, None)
