"""`premia run`: one process and one event loop for the scheduler, the engine and every chat adapter.

Telegram starts when its token variable is set, Discord when its token is set; with neither, the
scheduler, the engine and paper trading still run and alerts wait in the outbox (`premia chat`
talks to the same store). Start-up is announced in chat (live mode loudly), a heartbeat is
written every minute, SIGTERM stops everything cleanly, and a second process polling the same
Telegram token is reported in the log, in chat and in /status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chatbot.alert_render import AlertPump, AlertRenderer
from chatbot.commands import CommandDispatcher
from chatbot.delivery import Notifier
from chatbot.handlers import Services
from chatbot.replies import Reply
from chatbot.wiring import ALIVE_WITHIN, HEARTBEAT, HEARTBEAT_S, build_services
from core.config import Settings, load_settings
from core.engine import CycleResult
from core.errors import ConfigError, PremiaError

log = logging.getLogger("premia.app")

INSTANCE_FLAG = "instance"
STOP_STEP_S = 10.0
RETRY_S = 30.0
AUTO_ACTOR = "auto-execute"
# Worded so the log scrubber (which blanks "token: …" pairs) leaves it readable.
CONFLICT_NOTE = ("Another process is polling the same Telegram bot, so two bots answer at random. "
                 "Stop one of them (only one `premia run` per bot token).")


# ── the process ─────────────────────────────────────────────────────────────────────────────


class BotProcess:
    """Everything `premia run` runs, started and stopped in order."""

    def __init__(self, settings: Settings, services: Services, *, env: Mapping[str, str] | None = None,
                 poll: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.services = services
        self.env = os.environ if env is None else env
        self.dispatcher = CommandDispatcher(services)
        self.notifiers: list[Notifier] = []
        render = AlertRenderer(services.store, settings, services.clock)
        self.pump = AlertPump(services.store, self.notifiers, render, services.clock)
        self.poll = poll
        self.scheduler: Any = None
        self.clockwork: Any = None  # core.scheduler.PremiaScheduler when the real engine runs
        self._auto_started: set[str] = set()
        self.telegram: Any = None
        self.discord: Any = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.stopping = asyncio.Event()
        self.started_at = services.clock()
        self.cycles = 0
        self.retry_s = RETRY_S
        self._conflict_told: datetime | None = None

    # ── start ──────────────────────────────────────────────────────────────────────────

    def token(self, var: str) -> str | None:
        value = self.env.get(var, "").strip()
        return value or None

    async def start(self) -> None:
        self._claim_instance()
        self._subscribe_configured_chats()
        if self.services.executor is not None:
            self.tasks.append(asyncio.create_task(self._reconcile(), name="reconcile"))
        self._start_scheduler()
        tg, dc = self.settings.chat.telegram.token_env, self.settings.chat.discord.token_env
        telegram_token, discord_token = self.token(tg), self.token(dc)
        if telegram_token:
            self.tasks.append(asyncio.create_task(self._run_telegram(telegram_token), name="telegram"))
        if discord_token:
            self.tasks.append(asyncio.create_task(self._run_discord(discord_token), name="discord"))
        if not telegram_token and not discord_token:
            print(f"Premia is running without chat: neither ${tg} nor ${dc} is set. The scheduler, the "
                  f"engine and {self.settings.mode} trading run on their own; alerts wait in the outbox "
                  f"({self.settings.db_path}). To talk to the bot: premia chat"
                  + (f" --config {self.env.get('PREMIA_CONFIG')}" if self.env.get("PREMIA_CONFIG") else ""),
                  flush=True)
        self.tasks.append(asyncio.create_task(self.pump.run(), name="outbox"))
        log.info("premia: started (%s mode, strategy %s, polling every %d min, store %s)",
                 self.settings.mode, self.settings.strategy.name, self.settings.scheduler.poll_minutes,
                 self.settings.db_path)

    def _claim_instance(self) -> None:
        """Warn about another live process on this store, then record this one."""
        store, now = self.services.store, self.services.clock()
        other = store.get_flag(INSTANCE_FLAG) or {}
        beat = store.last_heartbeat(HEARTBEAT)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": now.isoformat()}
        if other and (other.get("pid"), other.get("host")) != (me["pid"], me["host"]) and beat is not None \
                and now - beat < ALIVE_WITHIN:
            note = (f"Another Premia (pid {other.get('pid')} on {other.get('host')}) wrote to this store "
                    f"{int((now - beat).total_seconds())} s ago: run one instance per store.")
            log.error("premia: %s", note)
            self.services.notes["instance"] = note
        store.set_flag(INSTANCE_FLAG, me, now)
        store.heartbeat(HEARTBEAT, now)

    def _subscribe_configured_chats(self) -> None:
        store, now = self.services.store, self.services.clock()
        for chat_id in self.settings.chat.telegram.chat_ids:
            store.subscribe("telegram", chat_id, now)
        for channel_id in self.settings.chat.discord.channel_ids:
            store.subscribe("discord", channel_id, now)

    def _start_scheduler(self) -> None:
        """The engine's clockwork (core.scheduler), or one poll job when a test hands in `poll`."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        from core.scheduler import PremiaScheduler

        if self.poll is None:
            self.clockwork = PremiaScheduler(self.services.engine, on_cycle=self.after_cycle)
            self.scheduler = self.clockwork.build()
        else:
            self.scheduler = AsyncIOScheduler(
                timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
            self.scheduler.add_job(self.cycle, "interval", minutes=self.settings.scheduler.poll_minutes,
                                   id="poll", next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.heartbeat, "interval", seconds=HEARTBEAT_S, id="heartbeat")
        self.scheduler.start()

    async def _reconcile(self) -> None:
        """Settle orders a crash left in flight before any approval runs (retried until done)."""
        executor = self.services.executor
        assert executor is not None
        while not self.stopping.is_set():
            try:
                for message in await executor.reconcile():
                    log.warning("reconcile: %s", message)
                return
            except Exception as exc:
                log.warning("reconcile failed (%r); approvals wait, retrying in %.0f s", exc, self.retry_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.retry_s)

    async def heartbeat(self) -> None:
        self.services.store.heartbeat(HEARTBEAT, self.services.clock())

    async def cycle(self) -> None:
        """One cycle of the `poll` hook, then an immediate drain so new alerts leave at once."""
        assert self.poll is not None
        try:
            await self.poll()
            self.cycles += 1
        except PremiaError as exc:  # a feed down, stale data: expected, said plainly
            log.warning("premia: cycle skipped: %s", exc)
        except Exception:
            # A bad cycle is logged and the next one runs on time: the process never dies of it.
            log.exception("premia: engine cycle failed")
        finally:
            self.pump.poke()

    def after_cycle(self, result: CycleResult) -> None:
        """After each engine cycle: drain the outbox now, and trade a new proposal if auto-execute."""
        self.cycles += 1
        p = result.proposal
        if self.settings.proposals.auto_execute and p is not None and p.id not in self._auto_started:
            self._auto_started.add(p.id)
            self.tasks.append(asyncio.create_task(self.auto_execute(p.id), name=f"auto-{p.id}"))
        self.pump.poke()

    async def auto_execute(self, proposal_id: str) -> None:
        """`proposals.auto_execute`: the same checks as a person's approval, reported to every chat."""
        from chatbot import format as fmt
        from core.errors import ExecutionError

        executor, store = self.services.executor, self.services.store
        assert executor is not None
        now = self.services.clock()
        sp = store.get_proposal(proposal_id)
        if sp is None or sp.status != "proposed":
            return
        mode = "paper" if self.settings.mode == "paper" else "LIVE"
        try:
            report = await executor.approve(proposal_id, AUTO_ACTOR, "scheduler")
        except ExecutionError as exc:
            payload = {"title": f"Proposal {proposal_id} · not executed ({mode})",
                       "text": f"Automatic execution refused: {exc}"}
        except Exception:
            log.exception("auto-execute of %s failed", proposal_id)
            payload = {"title": f"Proposal {proposal_id} · not executed ({mode})",
                       "text": "Automatic execution failed unexpectedly; see the log. /status for the book."}
        else:
            text, table = fmt.execution_parts(report, self.settings.quote)
            payload = {"title": f"Proposal {proposal_id} · {fmt.status_word(report.status)} ({mode})",
                       "text": "Executed automatically (proposals.auto_execute = true).\n" + text}
            if table is not None:
                payload["table"] = {"headers": list(table.headers), "rows": [list(r) for r in table.rows]}
        store.enqueue_alert(f"execution:{proposal_id}", "execution", payload, now, timedelta(days=1))
        self.pump.poke()

    # ── adapters ───────────────────────────────────────────────────────────────────────

    async def _run_telegram(self, token: str) -> None:
        from telegram.error import InvalidToken, TelegramError

        from chatbot import telegram as tg

        app = tg.build_application(token, self.dispatcher, self.settings.chat.telegram,
                                   on_conflict=self._on_conflict)
        while not self.stopping.is_set():
            try:
                await tg.start(app)
                break
            except InvalidToken:
                log.error("telegram: the bot token in $%s is refused by Telegram; Telegram stays off",
                          self.settings.chat.telegram.token_env)
                return
            except (TelegramError, OSError) as exc:
                log.warning("telegram: cannot reach the Bot API (%s); retrying in %.0f s", exc, self.retry_s)
                with contextlib.suppress(Exception):
                    await app.shutdown()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.retry_s)
        if self.stopping.is_set():
            return
        self.telegram = app
        notifier = tg.TelegramNotifier.for_application(app)
        self.notifiers.append(notifier)
        await self._announce(notifier)
        self.pump.poke()

    async def _run_discord(self, token: str) -> None:
        import discord

        from chatbot import discord_bot

        bot = discord_bot.build_bot(self.dispatcher, self.settings.chat.discord)
        self.discord = bot
        notifier = discord_bot.DiscordNotifier(bot)

        async def ready() -> None:
            await bot.wait_until_ready()
            self.notifiers.append(notifier)
            await self._announce(notifier)
            self.pump.poke()

        self.tasks.append(asyncio.create_task(ready(), name="discord-ready"))
        try:
            await bot.start(token)  # reconnects by itself after network trouble
        except discord.LoginFailure:
            log.error("discord: the bot token in $%s is refused by Discord; Discord stays off",
                      self.settings.chat.discord.token_env)
        except Exception:
            log.exception("discord: the client stopped; Discord stays off")

    def _on_conflict(self, exc: Exception) -> None:
        self.services.notes["telegram_conflict"] = CONFLICT_NOTE
        now = self.services.clock()
        if self._conflict_told is None or now - self._conflict_told > timedelta(minutes=30):
            self._conflict_told = now
            log.error("premia: %s", CONFLICT_NOTE)
            telegram = [n for n in self.notifiers if n.transport == "telegram"]
            for n in telegram:
                asyncio.get_running_loop().create_task(
                    self._tell(n, Reply(text=CONFLICT_NOTE, title="⚠ Two bots on one token", level="alert")))

    def startup_reply(self) -> Reply:
        from core.brokers import startup_message

        s = self.settings
        try:
            how = startup_message(s)
        except ConfigError as exc:  # live without keys: the broker refuses to start anyway
            how = f"⚠️ LIVE mode, but {exc}"
        lines = [how, f"Strategy {s.strategy.name} · polling every {s.scheduler.poll_minutes} min · "
                      f"proposals expire after {s.proposals.expiry_minutes} min."]
        if s.proposals.auto_execute:
            lines.append("⚠ Automatic execution is ON: proposals trade without approval.")
        lines += [f"⚠ {note}" for note in self.services.notes.values()]
        lines.append("/status, /plan, /help.")
        title = "Premia started" + (" — LIVE" if s.mode == "live" else "")
        return Reply(text="\n".join(lines), title=title, level="alert")

    async def _announce(self, notifier: Notifier) -> None:
        reply = self.startup_reply()
        for chat_id in self.services.store.subscribers(notifier.transport):
            await self._tell(notifier, reply, chat_id)

    async def _tell(self, notifier: Notifier, reply: Reply, chat_id: str | None = None) -> None:
        """Best effort: a start-up or conflict notice is not worth an outbox entry."""
        chats = [chat_id] if chat_id else self.services.store.subscribers(notifier.transport)
        for chat in chats:
            try:
                await notifier.send(chat, reply)
            except Exception as exc:
                log.warning("%s: could not tell chat %s: %s", notifier.transport, chat, exc)

    # ── stop ───────────────────────────────────────────────────────────────────────────

    async def stop(self) -> None:
        """Stop in reverse order, each step bounded, so SIGTERM always ends the process."""
        self.stopping.set()
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.scheduler is not None:
            steps.append(("scheduler", lambda: self.scheduler.shutdown(wait=False)))
        if self.telegram is not None:
            from chatbot import telegram as tg

            steps.append(("telegram", lambda: tg.stop(self.telegram)))
        if self.discord is not None:
            steps.append(("discord", self.discord.close))
        steps.append(("last drain", self.pump.drain_once))
        for name, step in steps:
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await asyncio.wait_for(result, STOP_STEP_S)
            except Exception as exc:
                log.warning("premia: stopping %s: %r", name, exc)
        trading = [t for t in self.tasks if t.get_name().startswith("auto-") and not t.done()]
        if trading:  # an execution is let finish: cut short, it would wait for reconciliation
            await asyncio.wait(trading, timeout=3 * STOP_STEP_S)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.services.engine is not None:
            try:
                await asyncio.wait_for(self.services.engine.close(), STOP_STEP_S)
            except Exception as exc:
                log.warning("premia: closing the engine: %r", exc)
        self.services.store.heartbeat(HEARTBEAT, self.services.clock())
        log.info("premia: stopped cleanly after %d cycle(s)", self.cycles)

    async def serve(self) -> int:
        """Run until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()
            self.services.store.close()
        return 0


# ── `premia run` ────────────────────────────────────────────────────────────────────────────


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $PREMIA_CONFIG, else config/premia.example.toml)")


def run(args: argparse.Namespace) -> int:
    """Load the config and run the bot until SIGTERM."""
    settings = load_settings(getattr(args, "config", None))

    async def main() -> int:
        services = build_services(settings)
        return await BotProcess(settings, services).serve()

    return asyncio.run(main())
