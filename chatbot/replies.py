"""What a command handler returns: a transport-neutral reply that each adapter renders.

Text is plain (adapters escape it for HTML or Markdown); a table is rendered monospaced; an image
is PNG bytes; buttons carry an action string such as "approve:P-7F3K2A" that comes back to the
dispatcher exactly like a typed command would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Transport = Literal["telegram", "discord", "console"]
Role = Literal["viewer", "trader"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a command, and from where."""

    transport: Transport
    user_id: str
    chat_id: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: str
    style: Literal["primary", "danger", "secondary"] = "secondary"


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def as_text(self) -> str:
        """Fixed-width rendering for monospace blocks (Telegram <pre>, Discord ```, console)."""
        cells = [self.headers, *self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.headers))]

        def line(row: tuple[str, ...]) -> str:
            cells = zip(row, widths, strict=True)
            return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)).rstrip()

        return "\n".join([line(self.headers), *(line(r) for r in self.rows)])


@dataclass(frozen=True, slots=True)
class Image:
    png: bytes
    filename: str = "chart.png"
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    title: str = ""
    tables: tuple[Table, ...] = ()
    image: Image | None = None
    buttons: tuple[Button, ...] = ()
    # An id that lets an adapter edit the message it sent for the same subject (a proposal).
    subject: str | None = None
    level: Literal["info", "alert", "error"] = "info"
    extra: dict[str, str] = field(default_factory=dict)

    def as_plain_text(self) -> str:
        """The whole reply as plain text (console, logs, tests)."""
        parts = [self.title] if self.title else []
        if self.text:
            parts.append(self.text)
        parts.extend(t.as_text() for t in self.tables)
        if self.buttons:
            parts.append("  ".join(f"[{b.label}]" for b in self.buttons))
        return "\n".join(parts)
