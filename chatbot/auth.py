"""Who may do what: allowlisted user ids → role, and the refusal (audited) for everyone else.

Roles are ranked: a trader can do everything a viewer can. Identity is the *user* id, never the
chat: in a group chat everyone sees the bot, and only allowlisted people act. A button press is
checked here exactly like the typed command it stands for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chatbot.replies import Caller, Role
from core.config import ChatConfig

log = logging.getLogger(__name__)

RANK: dict[Role, int] = {"viewer": 1, "trader": 2}
# Senders Telegram uses when no person can be identified: an anonymous group admin, a channel
# posting into its discussion group, and Telegram's own service account.
TELEGRAM_FACELESS = frozenset({"1087968824", "136817688", "777000"})


class AuditLog(Protocol):
    def audit(
        self, at: datetime, actor: str, via: str, chat_id: str | int | None, action: str, subject: str,
        detail: str = "",
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a check: the caller's role (None if unknown) and, if refused, why."""

    allowed: bool
    role: Role | None
    reason: str = ""


def _ids(values: Iterable[int]) -> frozenset[str]:
    return frozenset(str(v) for v in values)


def actor(caller: Caller) -> str:
    """How a caller is named in the audit log: "telegram:12345"."""
    return f"{caller.transport}:{caller.user_id}"


class Authorizer:
    """Maps a caller to a role from the chat config's allowlists."""

    def __init__(self, chat: ChatConfig) -> None:
        self._lists: dict[str, tuple[frozenset[str], frozenset[str]]] = {
            "telegram": (_ids(chat.telegram.traders), _ids(chat.telegram.viewers)),
            "discord": (_ids(chat.discord.traders), _ids(chat.discord.viewers)),
        }
        self._console_role: Role = chat.console_role

    def role_of(self, caller: Caller) -> Role | None:
        """The caller's role, or None when they are on no allowlist."""
        if caller.transport == "console":
            # Whoever holds a shell on the host already holds the store and the keys.
            return self._console_role
        lists = self._lists.get(caller.transport)
        user = str(caller.user_id).strip()
        if lists is None or not user or (caller.transport == "telegram" and user in TELEGRAM_FACELESS):
            return None
        traders, viewers = lists
        if user in traders:
            return "trader"
        if user in viewers:
            return "viewer"
        return None

    def check(self, caller: Caller, needed: Role, command: str) -> Verdict:
        """May `caller` run `command`, which needs role `needed`?"""
        role = self.role_of(caller)
        if role is None:
            return Verdict(False, None, self._stranger(caller))
        if RANK[role] < RANK[needed]:
            return Verdict(
                False, role, f"/{command} needs the {needed} role, and you are a {role}. Ask the owner"
                f" to add your {caller.transport.title()} user id to {needed}s."
            )
        return Verdict(True, role)

    def _stranger(self, caller: Caller) -> str:
        if caller.transport == "telegram" and str(caller.user_id) in TELEGRAM_FACELESS:
            return ("Sorry, I cannot tell who sent that (anonymous admin or channel). Send it from"
                    " your own account.")
        where = f"[chat.{caller.transport}]" if caller.transport in self._lists else "the config"
        return (f"Sorry, I only take commands from people on my allowlist. Your {caller.transport.title()}"
                f" user id is {caller.user_id or 'unknown'}: the owner can add it to traders or viewers"
                f" under {where}.")


def audit_refusal(store: AuditLog, at: datetime, caller: Caller, command: str, verdict: Verdict,
                  via_button: bool) -> None:
    """Write a refused attempt to the audit log (never raises: a refusal must still be answered)."""
    detail = ("button" if via_button else "typed") + f"; role {verdict.role or 'none'}"
    try:
        store.audit(at, actor(caller), caller.transport, caller.chat_id or None, "refused", f"/{command}",
                    detail)
    except Exception:
        log.exception("auth: could not audit a refused /%s from %s", command, actor(caller))
    log.warning("auth: refused /%s from %s in chat %s (%s)", command, actor(caller), caller.chat_id, detail)
