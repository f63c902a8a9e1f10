"""The contract between the chat adapters and the command layer.

Adapters (Telegram, Discord, console) turn what a person typed or pressed into a call on a
`Dispatcher` and render the `Reply` it returns; they hold no business logic and make no
authorization decisions: the dispatcher gets the `Caller` and decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chatbot.replies import Caller, Reply, Role


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command of the registry: adapters generate their menus and help from these."""

    name: str  # without the slash: "approve"
    usage: str  # "/approve <proposal-id>"
    help: str  # one line, shown in menus
    role: Role  # the least role allowed to run it


class Dispatcher(Protocol):
    """Serves commands and button actions; implementations never raise."""

    def commands(self) -> Sequence[CommandSpec]:
        """The command registry, in the order menus should show it."""
        ...

    async def handle_text(self, caller: Caller, text: str) -> Reply:
        """Answer a typed command ("/status", "/approve P-7F3K2A") or free text."""
        ...

    async def handle_action(self, caller: Caller, action: str) -> Reply:
        """Answer a pressed button's action ("approve:P-7F3K2A"), checked like a typed command."""
        ...
