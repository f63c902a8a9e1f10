"""Reading what people type: the command word and its arguments (ids, durations, assets, N, dates).

Every function either returns a clean value or raises `CommandError` with a short sentence meant
for a phone screen. Nothing typed is ever echoed back raw: `echo()` keeps a short, harmless part.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from core.errors import CommandError

MAX_TEXT_CHARS = 400  # the longest real command ("/backtest … 2021-01-01 2024-12-31") is ~60
MAX_ARGS = 6
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_ID = re.compile(r"(?:P-)?([A-Z0-9]{4,16})")
_DURATION_PART = re.compile(r"(\d{1,4})\s*(mins?|minutes?|m|hours?|hrs?|h|days?|d|weeks?|w)")
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=30)
_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
_SIGNED_NUMBER = re.compile(r"[-+−]?[0-9]{1,12}(?:[.,][0-9]{1,12})?")
HELP_HINT = "Send /help to see what I can do."


@dataclass(frozen=True, slots=True)
class Parsed:
    """A command word (lower case, no slash, no @bot suffix) and its arguments."""

    name: str
    args: tuple[str, ...]


def echo(text: str, limit: int = 24) -> str:
    """A short, harmless excerpt of user input to quote in a reply (letters, digits, -_.:/)."""
    kept = "".join(c for c in text if c.isascii() and (c.isalnum() or c in "-_.:/@"))
    return kept[:limit] + ("…" if len(kept) > limit else "")


def _unreadable(text: str) -> bool:
    """Control characters, lone surrogates or replacement characters: not something typed."""
    for c in text:
        if c in "\t\n\r":
            continue
        cat = unicodedata.category(c)
        if cat in ("Cc", "Cs", "Co", "Cn") or c == "\ufffd":
            return True
    return False


def parse_command(text: str) -> Parsed:
    """Split "/approve@PremiaBot P-7F3K2A" into ("approve", ("P-7F3K2A",)); CommandError otherwise."""
    if not isinstance(text, str):
        raise CommandError("I could not read that message. " + HELP_HINT)
    if len(text) > MAX_TEXT_CHARS:
        raise CommandError(f"That message is too long for a command ({len(text):,} characters). {HELP_HINT}")
    if _unreadable(text):
        raise CommandError("That message has characters I cannot read. " + HELP_HINT)
    # Full-width slashes and letters (some phone keyboards) read as their plain forms.
    stripped = unicodedata.normalize("NFKC", text).strip()
    if not stripped:
        raise CommandError(HELP_HINT)
    if not stripped.startswith("/"):
        raise CommandError("I answer commands, like /status or /plan. " + HELP_HINT)
    words = stripped[1:].split()
    head = words[0].partition("@")[0].lower() if words else ""
    args = words[1:]
    if not _NAME.fullmatch(head):
        raise CommandError("That is not a command I know. " + HELP_HINT)
    if len(args) > MAX_ARGS:
        raise CommandError(f"/{head} takes at most a few words, not {len(args)}. {HELP_HINT}")
    return Parsed(head, tuple(args))


def action_to_parsed(action: str) -> Parsed:
    """A button action ("approve:P-7F3K2A") as the command it stands for."""
    if not isinstance(action, str) or len(action) > 200 or _unreadable(action):
        raise CommandError("This button is no longer valid.")
    verb, _, rest = action.strip().partition(":")
    verb = verb.lower()
    if not _NAME.fullmatch(verb):
        raise CommandError("This button is no longer valid.")
    args = tuple(a for a in rest.split(":") if a) if rest else ()
    return Parsed(verb, args[:MAX_ARGS])


# ── argument parsers ────────────────────────────────────────────────────────────────────────


def proposal_id(arg: str) -> str:
    """ "p-7f3k2a", "P-7F3K2A" or "7F3K2A" → "P-7F3K2A"."""
    m = _ID.fullmatch(arg.strip().upper())
    if m is None:
        raise CommandError(f"'{echo(arg)}' is not a proposal id; ids look like P-7F3K2A.")
    return "P-" + m.group(1)


def duration(arg: str) -> timedelta:
    """ "30m", "2h", "1d", "1h30m" → timedelta, between a minute and 30 days."""
    text = arg.strip().lower()
    pos, total = 0, 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)[0]]
        pos = m.end()
    if not text or pos != len(text):
        raise CommandError(f"'{echo(arg)}' is not a duration; use 30m, 2h or 1d.")
    span = timedelta(seconds=total)
    if span < MIN_DURATION or span > MAX_DURATION:
        raise CommandError("Pick a duration between 1m and 30d.")
    return span


def count(arg: str | None, default: int, *, low: int = 1, high: int = 50) -> int:
    """A whole number N in [low, high]; `default` when absent."""
    if arg is None:
        return default
    text = arg.strip()
    if _SIGNED_NUMBER.fullmatch(text) and not (text.isascii() and text.isdigit()):
        # "-5", "+3", "2.5": a number, but not the positive whole number asked for.
        raise CommandError(f"The number must be a positive whole number; use one from {low} to {high}.")
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise CommandError(f"'{echo(arg)}' is not a number; use a whole number from {low} to {high}.")
    n = int(text)
    if not low <= n <= high:
        raise CommandError(f"Use a number from {low} to {high}.")
    return n


def asset(arg: str, known: Iterable[str]) -> str:
    """ "btc", "BTC/USDT" or "BTCUSDT" → "BTC" when it is a followed asset."""
    names = sorted(known)
    text = arg.strip().upper()
    base = text.split("/", 1)[0]
    for quote in ("USDT", "USDC", "USD"):
        if base not in names and base.endswith(quote) and base[: -len(quote)] in names:
            base = base[: -len(quote)]
    if base in names:
        return base
    raise CommandError(f"I don't follow '{echo(arg, 12)}'. I follow {', '.join(names)}.")


def choice(arg: str, options: Sequence[str], what: str) -> str:
    """One of `options`, case-insensitively."""
    low = arg.strip().lower()
    if low in options:
        return low
    raise CommandError(f"'{echo(arg, 16)}' is not a {what}; pick one of: {', '.join(options)}.")


def day(arg: str) -> date:
    """ "2024-03-01" or "2024-03" (the 1st) → date."""
    m = _DATE.fullmatch(arg.strip())
    try:
        if m is None:
            raise ValueError
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
    except ValueError:
        raise CommandError(f"'{echo(arg, 16)}' is not a date; use YYYY-MM-DD, e.g. 2024-03-01.") from None
