"""Reply → Discord messages made of embeds. Pure: builds `discord.Embed` objects, sends nothing.

Limits respected: title 256, description 4096, footer 2048, 6000 characters and 10 embeds per
message. Long replies become several embeds and, past 6000, several messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import discord

from chatbot.replies import Button, Reply
from chatbot.telegram_render import Block, clean, pack_blocks, split_lines, utf16_len

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 2048
MESSAGE_EMBED_TOTAL = 6000
EMBEDS_PER_MESSAGE = 10

COLOURS = {"info": 0x5865F2, "alert": 0xE67E22, "error": 0xE74C3C}
_ALWAYS = frozenset("\\*_~`|[]")
_LINE_START = frozenset(">#-+")


@dataclass(frozen=True, slots=True)
class DiscordMessage:
    """One channel message: embeds, an optional PNG attachment, buttons for a View."""

    embeds: tuple[discord.Embed, ...]
    file: tuple[str, bytes] | None = None  # (filename, png)
    buttons: tuple[Button, ...] = ()


def escape_markdown(line: str) -> str:
    """Backslash-escape Discord markdown in one line of plain text."""
    out = []
    start = len(line) - len(line.lstrip(" "))
    for i, ch in enumerate(line):
        if ch in _ALWAYS or (i == start and ch in _LINE_START):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def escape_code(line: str) -> str:
    """Inside ``` blocks escapes do not work: keep backticks from closing the block."""
    return line.replace("`", "`\u200b")


def safe_filename(name: str) -> str:
    """`attachment://` URLs only work with plain file names."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name.rsplit("/", 1)[-1]) or "chart.png"
    return cleaned if cleaned.lower().endswith(".png") else cleaned + ".png"


def _clip(text: str, limit: int) -> str:
    if utf16_len(text) <= limit:
        return text
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit - 1:
            return text[:i] + "…"
    return text


def description_chunks(reply: Reply) -> list[str]:
    """Text and tables (as code blocks) in pieces of at most 4096 characters."""
    blocks: list[Block] = []
    if reply.text.strip():
        blocks.append(Block(split_lines(reply.text), escape=escape_markdown))
    blocks.extend(Block(split_lines(t.as_text()), "```\n", "\n```", escape=escape_code) for t in reply.tables)
    return pack_blocks(blocks, DESCRIPTION_LIMIT, escape_markdown)


def _size(embed: discord.Embed) -> int:
    return sum(
        utf16_len(part or "")
        for part in (embed.title, embed.description, embed.footer.text if embed.footer else None)
    )


def render(reply: Reply) -> list[DiscordMessage]:
    """Embeds grouped into messages within Discord's limits; image and buttons on the last one."""
    colour = COLOURS.get(reply.level, COLOURS["info"])
    title = _clip(clean(reply.title.strip()), TITLE_LIMIT) or None
    embeds = [discord.Embed(description=chunk, colour=colour) for chunk in description_chunks(reply)]
    if not embeds and (title or reply.image is not None or reply.buttons):
        embeds.append(discord.Embed(colour=colour))
    if not embeds:
        return []
    embeds[0].title = title
    file = None
    if reply.image is not None:
        name = safe_filename(reply.image.filename)
        caption = _clip(clean(reply.image.caption.strip()), FOOTER_LIMIT)
        if _size(embeds[-1]) + utf16_len(caption) > MESSAGE_EMBED_TOTAL:
            embeds.append(discord.Embed(colour=colour))  # the caption needs an embed of its own
        embeds[-1].set_image(url=f"attachment://{name}")
        if caption:
            embeds[-1].set_footer(text=caption)
        file = (name, reply.image.png)

    groups: list[list[discord.Embed]] = [[]]
    total = 0
    for embed in embeds:
        size = _size(embed)
        if groups[-1] and (total + size > MESSAGE_EMBED_TOTAL or len(groups[-1]) >= EMBEDS_PER_MESSAGE):
            groups.append([])
            total = 0
        groups[-1].append(embed)
        total += size
    messages = [DiscordMessage(tuple(group)) for group in groups]
    messages[-1] = DiscordMessage(messages[-1].embeds, file, reply.buttons)
    return messages


def plain_notice(reply: Reply, limit: int = 2000) -> str:
    """The reply as one short plain message (ephemeral refusals, apologies)."""
    return _clip(clean(reply.as_plain_text().strip()) or "…", limit)
