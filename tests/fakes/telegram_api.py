"""A fake Telegram Bot API on 127.0.0.1 for driving a real python-telegram-bot Application.

It answers `/bot{token}/{method}` like api.telegram.org does (long-polled getUpdates included),
records every call, and lets a test inject failures (403, 429 with retry_after, 5xx, Conflict).

    async with FakeBotAPI() as api:
        app = build_application(TOKEN, dispatcher, TelegramConfig(base_url=api.base_url))
        api.push_text("/status")
        await api.wait_for("sendMessage")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {
    "id": 777000,
    "is_bot": True,
    "first_name": "Premia",
    "username": "PremiaTestBot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
# Fields PTB sends as plain strings; every other field arrives JSON-encoded.
_TEXT_FIELDS = {"text", "caption", "parse_mode", "callback_query_id", "url", "language_code"}


@dataclass
class Call:
    """One request the bot made: decoded fields, uploaded files, and the status we answered."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200
    result: Any = None  # what the fake answered, e.g. the Message a sendMessage created


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    times: int | None  # None: until cleared
    after: int = 0  # calls still to answer normally before the fault starts


class FakeBotAPI:
    """The fake server; use as an async context manager."""

    def __init__(self, token: str = "") -> None:
        self.token = token  # "" accepts any token
        self.calls: list[Call] = []
        self.port = 0
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # ── lifecycle ───────────────────────────────────────────────────────────────────────

    async def __aenter__(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        async with self._changed:
            self._changed.notify_all()  # release held getUpdates
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ── test controls ───────────────────────────────────────────────────────────────────

    def fail(
        self,
        method: str,
        status: int = 500,
        description: str = "Internal Server Error",
        *,
        retry_after: int | None = None,
        times: int | None = 1,
        after: int = 0,
    ) -> None:
        """Answer `times` calls of `method` with an error (None: until `clear_faults`), starting
        once `after` more calls have succeeded (0: the next call fails)."""
        self._faults[method].append(_Fault(status, description, retry_after, times, after))

    def clear_faults(self, method: str | None = None) -> None:
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method, None)

    def push_text(
        self,
        text: str,
        *,
        chat_id: int = 1001,
        user_id: int = 1001,
        username: str = "owner",
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """Queue a message from a person, with the bot_command entity Telegram adds."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "first_name": username},
            "from": {"id": user_id, "is_bot": False, "first_name": username, "username": username},
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0].encode("utf-16-le")) // 2
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._push({"message": message})

    def push_callback(
        self, message: dict[str, Any], data: str, *, user_id: int = 1001, username: str = "owner"
    ) -> dict[str, Any]:
        """Queue a button press on a message the bot sent (as returned in `sent(...)`)."""
        chat_id = message["chat"]["id"]
        current = self._messages.get((chat_id, message["message_id"]), message)
        return self._push(
            {
                "callback_query": {
                    "id": str(next(self._callback_ids)),
                    "from": {"id": user_id, "is_bot": False, "first_name": username, "username": username},
                    "chat_instance": f"ci-{chat_id}",
                    "message": current,
                    "data": data,
                }
            }
        )

    def sent(self, method: str) -> list[Call]:
        """Successful calls of `method`, in order."""
        return [c for c in self.calls if c.method == method and c.status == 200]

    def calls_of(self, method: str) -> list[Call]:
        """Every call of `method`, failed ones included."""
        return [c for c in self.calls if c.method == method]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message as it stands now (after edits)."""
        return self._messages[(chat_id, message_id)]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until `method` succeeded `count` times; return those calls."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.sent(method)) < count:
            if asyncio.get_running_loop().time() > deadline:
                seen = [(c.method, c.status) for c in self.calls]
                raise AssertionError(f"{method} ×{count} not seen within {timeout}s; calls: {seen}")
            await asyncio.sleep(0.01)
        return self.sent(method)

    # ── the API ─────────────────────────────────────────────────────────────────────────

    def _push(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **body}
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.Response:
        if self.token and request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files)
        self.calls.append(call)
        faults = self._faults.get(method)
        if faults and faults[0].after > 0:
            faults[0].after -= 1
        elif faults:
            fault = faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    faults.popleft()
            call.status = fault.status
            return _error(fault.status, fault.description, fault.retry_after)
        handler = getattr(self, "_api_" + method, None)
        if handler is None:
            call.status = 400
            return _error(400, f"Bad Request: method {method} is not faked")
        call.result = await handler(params, files)
        return web.json_response({"ok": True, "result": call.result})

    async def _api_getMe(self, params: dict, files: dict) -> Any:
        return BOT_USER

    async def _api_deleteWebhook(self, params: dict, files: dict) -> Any:
        return True

    async def _api_setMyCommands(self, params: dict, files: dict) -> Any:
        return True

    async def _api_answerCallbackQuery(self, params: dict, files: dict) -> Any:
        return True

    async def _api_getUpdates(self, params: dict, files: dict) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)

        def due() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] >= offset][:100]

        # Long polling: hold the request until an update arrives or the timeout passes.
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(due()) or self._closing), timeout)
        return due()

    def _new_message(self, chat_id: Any, **body: Any) -> dict[str, Any]:
        cid = int(chat_id) if str(chat_id).lstrip("-").isdigit() else -100
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": cid, "type": "private" if cid > 0 else "group", "title": "chat"},
            "from": BOT_USER,
            **{k: v for k, v in body.items() if v is not None},
        }
        self._messages[(cid, message["message_id"])] = message
        return message

    async def _api_sendMessage(self, params: dict, files: dict) -> Any:
        return self._new_message(
            params["chat_id"], text=params["text"], reply_markup=params.get("reply_markup")
        )

    async def _api_sendPhoto(self, params: dict, files: dict) -> Any:
        data = files.get("photo", b"")
        photo = [
            {
                "file_id": f"photo-{len(self.calls)}",
                "file_unique_id": f"u{len(self.calls)}",
                "width": 640,
                "height": 480,
                "file_size": len(data),
            }
        ]
        return self._new_message(
            params["chat_id"],
            photo=photo,
            caption=params.get("caption"),
            reply_markup=params.get("reply_markup"),
        )

    def _edit(self, params: dict, **changes: Any) -> Any:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self._messages[key]
        message.update(changes)
        if params.get("reply_markup") is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = params["reply_markup"]
        message["edit_date"] = int(time.time())
        return message

    async def _api_editMessageText(self, params: dict, files: dict) -> Any:
        return self._edit(params, text=params["text"])

    async def _api_editMessageCaption(self, params: dict, files: dict) -> Any:
        return self._edit(params, caption=params.get("caption", ""))

    async def _api_editMessageReplyMarkup(self, params: dict, files: dict) -> Any:
        return self._edit(params)


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Form or multipart fields, JSON-decoded where PTB encoded them, and uploaded files."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        return await request.json(), files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = value.file.read()
        elif key in _TEXT_FIELDS:
            params[key] = value
        else:
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
    return params, files
