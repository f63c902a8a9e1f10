"""THE command registry (name, handler, usage, help, role) and the dispatcher that serves it.

Telegram's handlers and menu, Discord's slash and prefix commands, the console banner, /help
and every button are generated from `REGISTRY`. `CommandDispatcher` implements the adapters'
`Dispatcher` contract: parse → authorize (the same way for typed commands and button presses)
→ run the handler → a `Reply`, whatever happens.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from chatbot import handlers, handlers_admin, handlers_charts, handlers_trading
from chatbot.auth import Authorizer, Verdict, actor, audit_refusal
from chatbot.dispatch import CommandSpec
from chatbot.handlers import Request, Services
from chatbot.parsing import Parsed, action_to_parsed, echo, parse_command
from chatbot.replies import Caller, Reply, Role
from core.errors import CommandError, ExecutionError, FeedError, SnapshotError, StaleDataError

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Reply]]
APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again."
# Errors whose message is written for people (core/errors.py); any other exception is a bug.
_SPOKEN = (CommandError, ExecutionError, FeedError, StaleDataError, SnapshotError)


@dataclass(frozen=True, slots=True)
class Command:
    spec: CommandSpec
    handler: Handler
    button: bool = False  # may arrive as a button action ("approve:P-7F3K2A")


def _cmd(name: str, usage: str, help_: str, role: Role, handler: Handler, button: bool = False) -> Command:
    return Command(CommandSpec(name, usage, help_, role), handler, button)


REGISTRY: tuple[Command, ...] = (
    _cmd("start", "/start", "Say hello and get alerts in this chat", "viewer", handlers.start),
    _cmd("help", "/help", "What I can do", "viewer", handlers.help_),
    _cmd("status", "/status", "Value, weights vs targets, exposure, open proposal", "viewer",
         handlers.status),
    _cmd("signals", "/signals [ASSET]", "Funding, basis, premium, volatility, Fear & Greed", "viewer",
         handlers.signals),
    _cmd("plan", "/plan", "The open proposal, or a fresh one, with Approve/Reject", "viewer",
         handlers_trading.plan, button=True),
    _cmd("approve", "/approve ID", "Approve a proposal: it trades after a market re-check", "trader",
         handlers_trading.approve, button=True),
    _cmd("reject", "/reject ID", "Reject a proposal", "trader", handlers_trading.reject, button=True),
    _cmd("history", "/history [N]", "The last N proposals and their outcome", "viewer", handlers.history),
    _cmd("chart", "/chart allocation|funding|basis [ASSET]", "A chart of weights, funding or premium",
         "viewer", handlers_charts.chart, button=True),
    _cmd("backtest", "/backtest PRESET [FROM] [TO]", "Replay history through a preset (dates YYYY-MM-DD)",
         "viewer", handlers_charts.backtest),
    _cmd("pause", "/pause", "Block all approvals until /resume", "trader", handlers_admin.pause),
    _cmd("resume", "/resume", "Lift /pause", "trader", handlers_admin.resume),
    _cmd("mute", "/mute RULE DURATION", "Silence a rule's alerts for 30m, 2h, 1d… (off ends it)", "trader",
         handlers_admin.mute),
    _cmd("settings", "/settings [full]", "The effective config, secrets redacted", "viewer",
         handlers_admin.settings),
)


class CommandDispatcher:
    """Serves typed commands and button actions from the registry; never raises."""

    def __init__(self, services: Services, registry: Sequence[Command] = REGISTRY,
                 authorizer: Authorizer | None = None) -> None:
        self.services = services
        self.registry = tuple(registry)
        self._by_name = {c.spec.name: c for c in self.registry}
        self.auth = authorizer or Authorizer(services.settings.chat)

    def commands(self) -> Sequence[CommandSpec]:
        return [c.spec for c in self.registry]

    async def handle_text(self, caller: Caller, text: str) -> Reply:
        try:
            parsed: Parsed | None = parse_command(text)
            problem = ""
        except CommandError as exc:
            parsed, problem = None, str(exc)
        return await self._serve(caller, parsed, problem, via_button=False)

    async def handle_action(self, caller: Caller, action: str) -> Reply:
        try:
            parsed: Parsed | None = action_to_parsed(action)
            problem = ""
        except CommandError as exc:
            parsed, problem = None, str(exc)
        if parsed is not None:
            command = self._by_name.get(parsed.name)
            if command is None or not command.button:
                parsed, problem = None, "This button is no longer valid."
        return await self._serve(caller, parsed, problem, via_button=True)

    async def _serve(self, caller: Caller, parsed: Parsed | None, problem: str, via_button: bool) -> Reply:
        name = parsed.name if parsed is not None else ""
        try:
            if self.auth.role_of(caller) is None:
                # Strangers learn nothing but how to get access, whatever they sent.
                verdict = self.auth.check(caller, "viewer", name or "?")
                return self._refuse(caller, name or "(not a command)", verdict, via_button)
            if parsed is None:
                return Reply(text=problem, level="error")
            command = self._by_name.get(name)
            if command is None:
                return Reply(text=f"I don't know /{echo(name, 20)}. Send /help to see what I can do.",
                             level="error")
            verdict = self.auth.check(caller, command.spec.role, name)
            if not verdict.allowed or verdict.role is None:
                return self._refuse(caller, name, verdict, via_button)
            log.debug("command /%s by %s in chat %s%s", name, actor(caller), caller.chat_id,
                     " (button)" if via_button else "")
            request = Request(caller, verdict.role, name, parsed.args, command.spec.usage, via_button,
                              self.services, tuple(self.commands()))
            return await command.handler(request)
        except _SPOKEN as exc:
            return Reply(text=str(exc), level="error")
        except Exception:
            log.exception("command /%s by %s failed", name or "?", actor(caller))
            return Reply(text=APOLOGY, level="error")

    def _refuse(self, caller: Caller, name: str, verdict: Verdict, via_button: bool) -> Reply:
        audit_refusal(self.services.store, self.services.clock(), caller, name, verdict, via_button)
        return Reply(text=verdict.reason, level="error")
