"""The Discord adapter (discord.py 2.7): slash and prefix commands, embeds, button views.

Thin by design: commands and button presses go to the `Dispatcher`, which authorizes the caller
and returns a `Reply`; this module only translates to and from Discord.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from chatbot.delivery import DeliveryError
from chatbot.discord_render import DiscordMessage, plain_notice, render
from chatbot.dispatch import CommandSpec, Dispatcher
from chatbot.replies import Button, Caller, Reply
from chatbot.telegram_render import SentParts, clean, part_digest
from core.config import DiscordConfig

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again."
DEFAULT_VIEW_TIMEOUT_S = 900.0
# discord.py sleeps through a 429 by default, however long; past this it raises RateLimited,
# so a throttled alert goes back to the outbox instead of holding up every other delivery.
MAX_RATELIMIT_WAIT_S = 30.0
_STYLES = {
    "primary": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
    "secondary": discord.ButtonStyle.secondary,
}


def caller_of(user: discord.abc.User, channel_id: int | None) -> Caller:
    return Caller(
        transport="discord",
        user_id=str(user.id),
        chat_id=str(channel_id or ""),
        display_name=user.display_name,
    )


def view_timeout(reply: Reply) -> float:
    """A proposal's buttons live as long as the proposal (`extra["expires_in_s"]`)."""
    try:
        seconds = float(reply.extra.get("expires_in_s", DEFAULT_VIEW_TIMEOUT_S))
    except ValueError:
        return DEFAULT_VIEW_TIMEOUT_S
    return max(seconds, 1.0)


class ReplyView(discord.ui.View):
    """A reply's buttons; a press goes to `handle_action`, expiry disables them in place."""

    def __init__(self, bot: PremiaBot, buttons: Sequence[Button], timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.bot = bot
        self.where: tuple[int, int] | None = None  # (channel id, message id), set once sent
        for button in buttons[:25]:
            item: discord.ui.Button[ReplyView] = discord.ui.Button(
                label=clean(button.label)[:80] or "…", style=_STYLES.get(button.style, _STYLES["secondary"])
            )
            item.callback = self._pressed(button.action)  # type: ignore[method-assign]
            self.add_item(item)

    def _pressed(self, action: str) -> Any:
        async def callback(interaction: discord.Interaction) -> None:
            await self.bot.answer_action(interaction, action, self)

        return callback

    def attach(self, message: discord.abc.Snowflake, channel_id: int) -> None:
        self.where = (channel_id, message.id)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.where is None:
            return
        channel_id, message_id = self.where
        # Through the channel, not the interaction webhook: its token dies after 15 minutes.
        message = self.bot.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(view=self)
        except discord.HTTPException as exc:
            log.info("discord: could not disable expired buttons: %s", exc)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        log.error("discord: button handler failed", exc_info=error)
        await _apologize(interaction)


def _files(message: DiscordMessage) -> list[discord.File]:
    if message.file is None:
        return []
    name, png = message.file
    return [discord.File(io.BytesIO(png), filename=name)]


def _view_kw(view: ReplyView | None) -> dict[str, Any]:
    """discord.py wants `view` left out, not None, when a new message has no buttons."""
    return {} if view is None else {"view": view}


def _takes_args(usage: str) -> tuple[bool, bool]:
    """(has arguments, first one required) from a usage line like "/approve <id> [note]"."""
    words = usage.split()[1:]
    return bool(words), bool(words) and words[0].startswith("<")


class PremiaBot(commands.Bot):
    """commands.Bot whose commands are generated from the dispatcher's registry."""

    def __init__(self, dispatcher: Dispatcher, config: DiscordConfig) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # the prefix-command fallback reads message text
        super().__init__(
            command_prefix=config.command_prefix,
            intents=intents,
            help_command=None,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
        )
        self.dispatcher = dispatcher
        self.config = config
        self.tree.error(self._on_tree_error)
        for spec in dispatcher.commands():
            try:
                self.tree.add_command(self._slash_command(spec))
                self.add_command(self._prefix_command(spec))
            except (ValueError, TypeError, discord.ClientException, app_commands.AppCommandError):
                log.warning("discord: command %r cannot be registered; skipped", spec.name)

    async def setup_hook(self) -> None:
        await self.tree.sync()

    # ── generated commands ──────────────────────────────────────────────────────────────

    def _slash_command(self, spec: CommandSpec) -> app_commands.Command[Any, Any, Any]:
        has_args, required = _takes_args(spec.usage)
        description = (spec.help or spec.usage or spec.name)[:100]
        if not has_args:

            async def bare(interaction: discord.Interaction) -> None:
                await self.answer_slash(interaction, spec.name, "")

            return app_commands.Command(name=spec.name, description=description, callback=bare)
        if required:

            async def with_args(interaction: discord.Interaction, args: str) -> None:
                await self.answer_slash(interaction, spec.name, args)
        else:

            async def with_args(interaction: discord.Interaction, args: str = "") -> None:
                await self.answer_slash(interaction, spec.name, args)

        app_commands.describe(args=spec.usage[:100])(with_args)
        return app_commands.Command(name=spec.name, description=description, callback=with_args)

    def _prefix_command(self, spec: CommandSpec) -> commands.Command[Any, Any, Any]:
        async def run(ctx: commands.Context[Any], *, args: str = "") -> None:
            await self.answer_prefix(ctx, f"/{spec.name} {args}".strip())

        return commands.Command(run, name=spec.name, help=spec.help, usage=spec.usage)

    # ── answering ───────────────────────────────────────────────────────────────────────

    async def answer_slash(self, interaction: discord.Interaction, name: str, args: str) -> None:
        # Defer first: a command may take longer than Discord's 3-second answer window.
        await interaction.response.defer(thinking=True)
        caller = caller_of(interaction.user, interaction.channel_id)
        reply = await self.dispatcher.handle_text(caller, f"/{name} {args}".strip())
        # An empty reply would leave "thinking…" up forever: always say something.
        for message in render(reply) or [DiscordMessage((discord.Embed(description="Done."),))]:
            view = self._view(reply, message)
            sent = await interaction.followup.send(
                embeds=list(message.embeds),
                files=_files(message),
                wait=True,
                **_view_kw(view),
            )
            if view is not None:
                view.attach(sent, sent.channel.id)

    async def answer_prefix(self, ctx: commands.Context[Any], text: str) -> None:
        caller = caller_of(ctx.author, ctx.channel.id)
        reply = await self.dispatcher.handle_text(caller, text)
        await send_reply(self, ctx.channel, reply)

    async def answer_action(self, interaction: discord.Interaction, action: str, pressed: ReplyView) -> None:
        await interaction.response.defer()  # for components: "update the message later"
        caller = caller_of(interaction.user, interaction.channel_id)
        reply = await self.dispatcher.handle_action(caller, action)
        if reply.level == "error":
            # A refusal or a mistake concerns the presser only: the shared message stays as is.
            await interaction.followup.send(plain_notice(reply), ephemeral=True)
            return
        pressed.stop()
        messages = render(reply) or [DiscordMessage(())]
        head, tail = messages[0], messages[1:]
        view = self._view(reply, head) if not tail else None
        edited = await interaction.edit_original_response(
            embeds=list(head.embeds), attachments=_files(head), view=view
        )
        if view is not None:
            view.attach(edited, edited.channel.id)
        for message in tail:
            view = self._view(reply, message)
            sent = await interaction.followup.send(
                embeds=list(message.embeds),
                files=_files(message),
                wait=True,
                **_view_kw(view),
            )
            if view is not None:
                view.attach(sent, sent.channel.id)

    def _view(self, reply: Reply, message: DiscordMessage) -> ReplyView | None:
        if not message.buttons:
            return None
        return ReplyView(self, message.buttons, view_timeout(reply))

    # ── errors ──────────────────────────────────────────────────────────────────────────

    async def on_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        if isinstance(error, commands.CommandNotFound):
            # Unknown "!foo": the dispatcher answers it like any unknown "/foo"; "!!!" is no
            # command at all, so the bot stays quiet in a shared channel.
            if re.fullmatch(r"[A-Za-z0-9_-]{1,32}", ctx.invoked_with or ""):
                text = "/" + ctx.message.content[len(ctx.prefix or "") :].strip()
                await self.answer_prefix(ctx, text)
            return
        log.error("discord: command %s failed", ctx.command, exc_info=error)
        await ctx.send(APOLOGY)

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("discord: slash command failed", exc_info=error)
        await _apologize(interaction)


async def _apologize(interaction: discord.Interaction) -> None:
    try:
        if interaction.response.is_done():
            await interaction.followup.send(APOLOGY, ephemeral=True)
        else:
            await interaction.response.send_message(APOLOGY, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("discord: could not send the apology: %s", exc)


async def send_message(
    bot: PremiaBot, channel: discord.abc.Messageable, reply: Reply, message: DiscordMessage
) -> None:
    """Send one rendered message; its buttons become a View."""
    view = bot._view(reply, message)
    sent = await channel.send(
        embeds=list(message.embeds),
        files=_files(message),
        **_view_kw(view),
    )
    if view is not None:
        view.attach(sent, sent.channel.id)


async def send_reply(bot: PremiaBot, channel: discord.abc.Messageable, reply: Reply) -> None:
    """Send a reply as channel messages; its buttons become a View on the last one."""
    for message in render(reply):
        await send_message(bot, channel, reply, message)


def _digest(message: DiscordMessage) -> str:
    embeds = json.dumps([e.to_dict() for e in message.embeds], sort_keys=True, default=str)
    return part_digest(embeds, message.file, message.buttons)


def _retry_after(exc: discord.HTTPException) -> float | None:
    """Seconds from a 429's Retry-After header (discord.py raises it once its own retries end)."""
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(float(headers["Retry-After"]), 0.0)
    except (KeyError, TypeError, ValueError):
        return None


def build_bot(dispatcher: Dispatcher, config: DiscordConfig) -> PremiaBot:
    """The Discord bot; start it with `await bot.start(token)` (slash commands sync on setup)."""
    return PremiaBot(dispatcher, config)


class DiscordNotifier:
    """Pushes alerts to Discord channels, raising DeliveryError the outbox understands."""

    transport = "discord"

    def __init__(self, bot: PremiaBot, parts: SentParts | None = None) -> None:
        self._bot = bot
        self._parts = parts or SentParts()

    async def send(self, chat_id: str, reply: Reply) -> None:
        """Send every part the channel does not have yet: a retry resumes after the delivered ones."""
        try:
            channel_id = int(chat_id)
        except ValueError:
            raise DeliveryError(f"{chat_id!r} is not a Discord channel id", permanent=True) from None
        messages = render(reply)
        key = SentParts.key(chat_id, reply)
        digests = [_digest(m) for m in messages]
        start = self._parts.resume_at(key, digests) if len(messages) > 1 else 0
        try:
            channel = self._bot.get_channel(channel_id) or await self._bot.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise DeliveryError(f"channel {chat_id} cannot receive messages", permanent=True)
            for i in range(start, len(messages)):
                await send_message(self._bot, channel, reply, messages[i])
                if len(messages) > 1:
                    self._parts.delivered(key, digests[: i + 1])
        except discord.RateLimited as exc:
            raise DeliveryError(f"discord rate limit: {exc}", retry_after=exc.retry_after) from exc
        except (discord.Forbidden, discord.NotFound) as exc:
            raise DeliveryError(f"discord refused: {exc}", permanent=True) from exc
        except discord.HTTPException as exc:
            if exc.status == 429:
                raise DeliveryError(f"discord rate limit: {exc}", retry_after=_retry_after(exc)) from exc
            if exc.status >= 500:
                raise DeliveryError(f"discord unavailable: {exc}") from exc
            raise DeliveryError(f"discord refused: {exc}", permanent=True) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"discord unreachable: {exc!r}") from exc
        self._parts.finished(key)
