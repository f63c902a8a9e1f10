"""The console adapter: talk to the bot on a local prompt, no token needed (`premia chat`).

It doubles as the test fixture for the command layer:
`assert "drift" in await ConsoleAdapter(dispatcher).run_line("/status")`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import itertools
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from chatbot.dispatch import Dispatcher
from chatbot.replies import Caller, Image, Reply

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong; the details are in the log."
QUIT_WORDS = frozenset({"quit", "exit", "/quit", "/exit", ":q"})
DEFAULT_IMAGE_DIR = Path("var") / "chat-images"


def action_to_command(action: str) -> str:
    """The typed form of a button action: "approve:P-7F3K2A" → "/approve P-7F3K2A"."""
    action = action.strip()
    if action.startswith("/"):
        return action
    verb, _, rest = action.partition(":")
    args = rest.replace(":", " ").strip()
    return f"/{verb} {args}" if args else f"/{verb}"


def _console_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "console"


class ConsoleAdapter:
    """Reads lines, sends them to the dispatcher as commands, prints the replies as plain text."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        out: TextIO | None = None,
        image_dir: Path = DEFAULT_IMAGE_DIR,
        *,
        prompt: str = "premia> ",
    ) -> None:
        self.dispatcher = dispatcher
        self.out = out if out is not None else sys.stdout
        self.image_dir = Path(image_dir)
        self.prompt = prompt
        user = _console_user()
        self.caller = Caller(transport="console", user_id=user, chat_id="console", display_name=user)
        self._image_numbers = itertools.count(1)

    def banner(self) -> str:
        """What the console can do, generated from the command registry."""
        specs = list(self.dispatcher.commands())
        width = max((len(s.usage) for s in specs), default=0)
        lines = ["Premia console: type a command (the leading / is optional); Ctrl-D quits."]
        lines += [f"  {s.usage.ljust(width)}  {s.help}" for s in specs]
        return "\n".join(lines)

    async def run_line(self, line: str) -> str:
        """Serve one typed line and return what would be printed."""
        text = line.strip()
        if not text:
            return ""
        if not text.startswith("/"):
            text = "/" + text
        try:
            reply = await self.dispatcher.handle_text(self.caller, text)
        except Exception:
            # The dispatcher promises not to raise; if it does anyway, the prompt survives.
            log.exception("console: command %r failed", text)
            return APOLOGY
        return await self.render(reply)

    async def render(self, reply: Reply) -> str:
        """Plain text, buttons as the commands to type, images saved as files."""
        parts = [replace(reply, buttons=()).as_plain_text()] if _has_text(reply) else []
        if reply.image is not None:
            path = await asyncio.to_thread(self._save, reply.image)
            caption = f" ({reply.image.caption})" if reply.image.caption else ""
            parts.append(f"image: {path}{caption}")
        if reply.buttons:
            parts.append("  ".join(f"[{b.label} → {action_to_command(b.action)}]" for b in reply.buttons))
        return "\n".join(parts)

    def _save(self, image: Image) -> Path:
        self.image_dir.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(image.filename).name) or "chart.png"
        path = self.image_dir / f"{next(self._image_numbers):03d}-{name}"
        path.write_bytes(image.png)
        return path

    async def run(self, input_lines: AsyncIterator[str] | None = None) -> None:
        """The prompt loop, until end of input or a quit word."""
        lines = input_lines if input_lines is not None else stdin_lines()
        self._print(self.banner())
        while True:
            self.out.write(self.prompt)
            self.out.flush()
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                self._print("")
                return
            if line.strip().lower() in QUIT_WORDS:
                return
            output = await self.run_line(line)
            if output:
                self._print(output)

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def _has_text(reply: Reply) -> bool:
    return bool(reply.title or reply.text or reply.tables)


async def stdin_lines() -> AsyncIterator[str]:
    """Lines from stdin, read by a daemon thread so Ctrl-C never waits for a pending read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


# ── `premia chat` ───────────────────────────────────────────────────────────────────────


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $PREMIA_CONFIG, else config/premia.example.toml)",
    )
    parser.add_argument(
        "--image-dir",
        type=Path,
        default=None,
        help="where charts are written (default: <data_dir>/chat-images)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the real dispatcher from the config and run the prompt."""
    from chatbot.wiring import build_dispatcher  # lazily: it pulls in the engine
    from core.config import load_settings

    settings = load_settings(getattr(args, "config", None))
    image_dir = getattr(args, "image_dir", None) or settings.data_dir / "chat-images"

    async def main() -> None:
        await ConsoleAdapter(await build_dispatcher(settings), image_dir=image_dir).run()

    asyncio.run(main())
    return 0
