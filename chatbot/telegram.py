"""The Telegram adapter (python-telegram-bot 22): updates in, rendered replies out.

Thin by design: every command, text and button goes to the `Dispatcher`, which authorizes the
caller and returns a `Reply`; this module only translates to and from the Bot API.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from chatbot.delivery import DeliveryError
from chatbot.dispatch import CommandSpec, Dispatcher
from chatbot.replies import Button, Caller, Reply
from chatbot.telegram_render import (
    CALLBACK_DATA_LIMIT,
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    SentParts,
    TelegramMessage,
    assemble,
    clean,
    keyboard_rows,
    part_digest,
    render,
    render_text,
    short_notice,
)
from core.config import TelegramConfig

log = logging.getLogger(__name__)

Hook = Callable[[Application], Awaitable[None]]
ACTIONS_KEY = "premia.actions"
PARTS_KEY = "premia.sent_parts"
APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again."
EXPIRED_BUTTON = "This button has expired; type the command instead."
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class ActionCodec:
    """Button action ⇄ callback_data (at most 64 bytes): long actions go through a bounded table."""

    def __init__(self, capacity: int = 4096) -> None:
        self._long: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def encode(self, action: str) -> str:
        raw = action.encode("utf-8", "surrogatepass")
        if len(raw) <= CALLBACK_DATA_LIMIT and not action.startswith("#") and clean(action) == action:
            return action
        key = "#" + hashlib.sha256(raw).hexdigest()[:40]
        self._long[key] = action
        self._long.move_to_end(key)
        while len(self._long) > self._capacity:
            self._long.popitem(last=False)
        return key

    def decode(self, data: str) -> str | None:
        """The action, or None when a long action was forgotten (restart, table full)."""
        return self._long.get(data) if data.startswith("#") else data


def keyboard(rows: Sequence[Sequence[Button]], codec: ActionCodec) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(clean(b.label) or "…", callback_data=codec.encode(b.action)) for b in row]
            for row in rows
        ]
    )


def _chat(chat_id: str | int) -> str | int:
    """Numeric ids as int; "@channel" names as they are."""
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


async def send_message(bot: Bot, chat_id: str | int, m: TelegramMessage, codec: ActionCodec) -> Message:
    """Send one rendered message (sendPhoto when it carries an image)."""
    markup = keyboard(m.keyboard, codec)
    if m.photo is not None:
        return await bot.send_photo(
            _chat(chat_id),
            photo=m.photo,
            filename=m.filename,
            caption=m.text or None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )
    return await bot.send_message(
        _chat(chat_id),
        m.text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        link_preview_options=_NO_PREVIEW,
    )


async def send_messages(
    bot: Bot, chat_id: str | int, messages: Sequence[TelegramMessage], codec: ActionCodec
) -> list[Message]:
    """Send rendered messages in order."""
    return [await send_message(bot, chat_id, m, codec) for m in messages]


def _digest(m: TelegramMessage) -> str:
    return part_digest(m.text, m.photo or b"", m.filename, m.keyboard)


async def send_reply(bot: Bot, chat_id: str | int, reply: Reply, codec: ActionCodec) -> None:
    await send_messages(bot, chat_id, render(reply), codec)


def _caller(update: Update) -> Caller:
    user, chat = update.effective_user, update.effective_chat
    return Caller(
        transport="telegram",
        user_id=str(user.id) if user else "",
        chat_id=str(chat.id) if chat else "",
        display_name=(user.full_name or user.username or "") if user else "",
    )


def normalize_command(text: str, bot_username: str | None) -> str | None:
    """ "/status@PremiaBot x" → "/status x"; None when the command names another bot."""
    head, sep, rest = text.strip().partition(" ")
    if head.startswith("/") and "@" in head:
        name, _, target = head.partition("@")
        if bot_username and target.lower() != bot_username.lower():
            return None
        head = name
    return head + sep + rest


def build_application(
    token: str,
    dispatcher: Dispatcher,
    config: TelegramConfig,
    *,
    post_init: Hook | None = None,
    post_stop: Hook | None = None,
    post_shutdown: Hook | None = None,
    on_conflict: Callable[[Exception], object] | None = None,
) -> Application:
    """A PTB Application whose handlers are generated from the dispatcher's command registry."""
    # httpx logs every request URL, and Telegram's carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    specs = list(dispatcher.commands())
    codec = ActionCodec()

    async def _post_init(app: Application) -> None:
        await publish_commands(app.bot, specs)
        if post_init is not None:
            await post_init(app)

    builder = ApplicationBuilder().token(token).job_queue(None).post_init(_post_init)
    if config.base_url:
        base = config.base_url.rstrip("/")
        file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file"
        builder = builder.base_url(base).base_file_url(file_base)
    if post_stop is not None:
        builder = builder.post_stop(post_stop)
    if post_shutdown is not None:
        builder = builder.post_shutdown(post_shutdown)
    app = builder.build()
    app.bot_data[ACTIONS_KEY] = codec

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        text = normalize_command(message.text, context.bot.username)
        if text is None:
            return
        reply = await dispatcher.handle_text(_caller(update), text)
        await send_reply(context.bot, message.chat_id, reply, codec)

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        action = codec.decode(query.data or "")
        if action is None:
            await _answer(query, EXPIRED_BUTTON, alert=True)
            return
        reply = await dispatcher.handle_action(_caller(update), action)
        if reply.level == "error":
            # A refusal or a mistake concerns the presser only: the shared message stays as is.
            await _answer(query, short_notice(reply), alert=True)
            return
        await _answer(query, short_notice(reply))
        await _edit_in_place(context.bot, query, reply, codec)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _report_error(update, context, on_conflict)

    # Only new messages: an edited "/approve" must not act a second time.
    new_messages = filters.UpdateType.MESSAGE
    for spec in specs:
        try:
            app.add_handler(CommandHandler(spec.name, on_text, filters=new_messages))
        except ValueError:
            log.warning("telegram: command %r is not a valid Telegram command; skipped", spec.name)
    chat_text = filters.TEXT & (filters.COMMAND | filters.ChatType.PRIVATE)
    app.add_handler(MessageHandler(new_messages & chat_text, on_text))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_error_handler(on_error)
    return app


async def publish_commands(bot: Bot, specs: Sequence[CommandSpec]) -> None:
    """setMyCommands from the registry, so Telegram's menu matches what the bot serves."""
    commands = [BotCommand(s.name, (s.help or s.usage or s.name)[:256]) for s in specs if _valid_name(s.name)]
    try:
        await bot.set_my_commands(commands)
    except TelegramError as exc:
        log.warning("telegram: could not publish the command menu: %s", exc)


def _valid_name(name: str) -> bool:
    return (
        1 <= len(name) <= 32
        and all(c.isascii() and (c.isalnum() or c == "_") for c in name)
        and name == name.lower()
    )


async def _answer(query: object, text: str, *, alert: bool = False) -> None:
    try:
        await query.answer(text[:200] or None, show_alert=alert)  # type: ignore[attr-defined]
    except BadRequest as exc:
        # Queries older than ~15 s cannot be answered; the edit below still shows the result.
        log.info("telegram: callback answer refused: %s", exc)


async def _edit_in_place(bot: Bot, query: object, reply: Reply, codec: ActionCodec) -> None:
    """Show the new state in the message whose button was pressed; extras follow as new ones."""
    message = query.message  # type: ignore[attr-defined]
    if not isinstance(message, Message):
        # Older than 48 h (InaccessibleMessage) or inline: answer with a fresh message instead.
        chat_id = message.chat.id if message is not None else query.from_user.id  # type: ignore
        await send_reply(bot, chat_id, reply, codec)
        return
    is_photo = bool(message.photo)
    chunks = render_text(reply, CAPTION_LIMIT if is_photo else MESSAGE_LIMIT)
    if not chunks:
        await _ignore_unchanged(message.edit_reply_markup(reply_markup=None))
        await send_reply(bot, message.chat_id, reply, codec)
        return
    head, tail = chunks[0], chunks[1:]
    alone = not tail and reply.image is None
    markup = keyboard(keyboard_rows(reply.buttons), codec) if alone else None
    if is_photo:
        edit = message.edit_caption(caption=head, parse_mode=ParseMode.HTML, reply_markup=markup)
    else:
        edit = message.edit_text(
            head, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=_NO_PREVIEW
        )
    await _ignore_unchanged(edit)
    if not alone:
        await send_messages(bot, message.chat_id, assemble(tail, reply, caption_title=False), codec)


async def _ignore_unchanged(edit: Awaitable[object]) -> None:
    try:
        await edit
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def _report_error(
    update: object,
    context: ContextTypes.DEFAULT_TYPE,
    on_conflict: Callable[[Exception], object] | None,
) -> None:
    err = context.error
    if isinstance(err, Conflict):
        log.error(
            "telegram: another process is polling with this bot token (%s). Only one instance"
            " may run per bot token, so stop the other one.",
            err,
        )
        if on_conflict is not None:
            on_conflict(err)
        return
    if update is None and isinstance(err, NetworkError):
        log.warning("telegram: polling failed (%s); retrying", err)
        return
    log.error("telegram: handling an update failed", exc_info=err)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(APOLOGY[:200], show_alert=True)
            else:
                await context.bot.send_message(update.effective_chat.id, APOLOGY)
        except TelegramError as exc:
            log.warning("telegram: could not send the apology: %s", exc)


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns that the type will become timedelta
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Classify a Bot API failure: throttled, transient, or never going to work for this chat."""
    if isinstance(exc, RetryAfter):
        return DeliveryError(f"telegram flood control: {exc}", retry_after=_retry_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return DeliveryError(f"chat moved to {exc.new_chat_id}; update the chat id", permanent=True)
    if isinstance(exc, (Forbidden, InvalidToken, BadRequest)):
        # Order matters: BadRequest is a NetworkError subclass in PTB.
        return DeliveryError(f"telegram refused: {exc}", permanent=True)
    return DeliveryError(f"telegram unavailable: {exc}")


class TelegramNotifier:
    """Pushes alerts to Telegram chats, raising DeliveryError the outbox understands."""

    transport = "telegram"

    def __init__(self, bot: Bot, actions: ActionCodec | None = None, parts: SentParts | None = None) -> None:
        self._bot = bot
        self._actions = actions or ActionCodec()
        self._parts = parts or SentParts()

    @classmethod
    def for_application(cls, app: Application) -> TelegramNotifier:
        """Share the application's bot and button table, so pressed alert buttons resolve."""
        parts = app.bot_data.setdefault(PARTS_KEY, SentParts())
        return cls(app.bot, app.bot_data.get(ACTIONS_KEY), parts)

    async def send(self, chat_id: str, reply: Reply) -> None:
        """Send every part the chat does not have yet: a retry resumes after the delivered ones."""
        messages = render(reply)
        key = SentParts.key(chat_id, reply)
        digests = [_digest(m) for m in messages]
        start = self._parts.resume_at(key, digests) if len(messages) > 1 else 0
        try:
            for i in range(start, len(messages)):
                await send_message(self._bot, chat_id, messages[i], self._actions)
                if len(messages) > 1:
                    self._parts.delivered(key, digests[: i + 1])
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        self._parts.finished(key)


def _forward_polling_error(app: Application) -> Callable[[TelegramError], None]:
    def callback(exc: TelegramError) -> None:
        # As run_polling does: errors while fetching updates go to the error handlers.
        app.create_task(app.process_error(update=None, error=exc))

    return callback


async def start(app: Application, *, poll_timeout: float = 10.0) -> None:
    """Start polling inside a running loop (the bot shares it with the scheduler and Discord)."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    assert app.updater is not None, "build_application always creates an updater"
    await app.updater.start_polling(
        timeout=timedelta(seconds=poll_timeout), error_callback=_forward_polling_error(app)
    )
    await app.start()


async def stop(app: Application) -> None:
    """Undo `start`, running post_stop and post_shutdown like run_polling does."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
        if app.post_stop is not None:
            await app.post_stop(app)
    await app.shutdown()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
