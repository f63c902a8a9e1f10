"""Shared test double for the adapters: a tiny dispatcher with canned replies that records calls."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from chatbot.dispatch import CommandSpec
from chatbot.replies import Button, Caller, Image, Reply, Table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PROPOSAL = "P-7F3K2A"


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, built by hand so the tests need no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


STATUS = Reply(
    title="Status <paper>",
    text="BTC & ETH within bands; <b>not bold</b>",
    tables=(Table(("asset", "weight"), (("BTC", "41.0%"), ("ETH", "19.5%"))),),
)
PROPOSAL_REPLY = Reply(
    title=f"Proposal {PROPOSAL}",
    text="Sell 0.05 BTC → USDT; buy 1.2 ETH.",
    buttons=(
        Button("Approve", f"approve:{PROPOSAL}", "primary"),
        Button("Reject", f"reject:{PROPOSAL}", "danger"),
    ),
    subject=PROPOSAL,
    extra={"expires_in_s": "60"},
)
CHART = Reply(text="BTC, 30 days", image=Image(tiny_png(), "btc.png", "BTC close, 30 days"))
BIG = Reply(title="Audit log", text="\n".join(f"line {i:05d} <&> " + "x" * 40 for i in range(400)))


class FakeDispatcher:
    """Canned replies per command and action; records every call as (kind, caller, text)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Caller, str]] = []

    def commands(self) -> Sequence[CommandSpec]:
        return [
            CommandSpec("status", "/status", "Portfolio, drift and market", "viewer"),
            CommandSpec("propose", "/propose", "Show the pending proposal", "viewer"),
            CommandSpec("approve", "/approve <proposal-id>", "Approve a proposal", "trader"),
            CommandSpec("chart", "/chart [asset]", "Price chart", "viewer"),
            CommandSpec("big", "/big", "A very long reply", "viewer"),
            CommandSpec("boom", "/boom", "A handler that crashes", "viewer"),
            CommandSpec("help", "/help", "What I can do", "viewer"),
        ]

    async def handle_text(self, caller: Caller, text: str) -> Reply:
        self.calls.append(("text", caller, text))
        command, _, args = text.strip().partition(" ")
        if command == "/boom":
            raise RuntimeError("Traceback: secret internals")  # a broken dispatcher
        canned = {"/status": STATUS, "/propose": PROPOSAL_REPLY, "/chart": CHART, "/big": BIG}
        if command in canned:
            return canned[command]
        if command == "/approve":
            return Reply(title=f"Approved {args}", text="Executed on paper.")
        return Reply(text=f"I don't know {command!r}; try /help.", level="error")

    async def handle_action(self, caller: Caller, action: str) -> Reply:
        self.calls.append(("action", caller, action))
        verb, _, arg = action.partition(":")
        if verb == "approve":
            return Reply(title=f"Approved {arg}", text="Executed on paper: 2 fills.", subject=arg)
        if verb == "reject":
            return Reply(title=f"Rejected {arg}", text="Nothing traded.", subject=arg)
        if verb == "refresh":
            return PROPOSAL_REPLY
        return Reply(text="You are not allowed to do that.", level="error")

    def texts(self) -> list[str]:
        return [text for kind, _, text in self.calls if kind == "text"]

    def actions(self) -> list[str]:
        return [text for kind, _, text in self.calls if kind == "action"]
