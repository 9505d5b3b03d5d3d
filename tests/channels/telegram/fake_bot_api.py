"""A fake Telegram Bot API server on 127.0.0.1 that speaks the real request and response formats.

PTB talks to it through ``base_url`` (``{url}/bot``) and ``base_file_url`` (``{url}/file/bot``). Requests
are ``POST /bot<token>/<method>`` with form-encoded or multipart bodies (JSON-encoded values for
non-strings); answers are ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
"description": ..., "parameters": {...}}``. Updates are kept until confirmed, like Telegram: by a
later ``getUpdates`` offset, or by a 2xx answer from the webhook, which is POSTed with
``X-Telegram-Bot-Api-Secret-Token``.

Tests play Telegram users through it (``user_sends``, ``presses``...), script failures
(``fail_next``), and wait on what the bot did (``wait_for``), never on time.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "telegram"
BOT_USER = {"id": 7000001, "is_bot": True, "first_name": "Switchboard", "username": "switchboard_test_bot"}
JSON_FIELDS = {"reply_markup", "allowed_updates", "entities", "caption_entities", "reply_parameters"}
INT_FIELDS = {"chat_id", "offset", "limit", "timeout", "max_connections", "message_id"}
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def fixture(name: str) -> dict[str, Any]:
    """A recorded payload from tests/fixtures/telegram/."""
    return json.loads((FIXTURES / name).read_text())


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class Failure:
    """A scripted answer for the next call of a method: an API error, a 502, or a dropped connection."""

    status: int = 500
    description: str = "Internal Server Error"
    parameters: dict[str, Any] | None = None
    drop: bool = False  # close the connection without answering


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    answer: Any = None  # the result, or the ApiError raised
    finished: bool = False  # answered (long polls are seen when they arrive, answered later)


@dataclass
class TgUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None

    def as_from(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        data["language_code"] = "en"
        return data

    def as_chat(self) -> dict[str, Any]:
        data = {k: v for k, v in self.as_from().items() if k in ("id", "first_name", "last_name", "username")}
        return {**data, "type": "private"}


@dataclass
class TgGroup:
    id: int
    title: str

    def as_chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "supergroup", "title": self.title}


@dataclass
class StoredFile:
    data: bytes
    path: str
    unique_id: str


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None


@dataclass
class FakeBotApi:
    token: str = "7000001:AAE-fake-token-QkZ9sTt3uVwXyZ_0123456789"
    # Maps the public webhook URL to where the gateway really listens (a reverse proxy's job).
    route: Callable[[str], str] = lambda url: url
    calls: list[Call] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # unconfirmed updates, oldest first
    handed_out: Counter[int] = field(default_factory=Counter)  # update_id → deliveries
    webhook: Webhook | None = None
    webhook_answers: list[int] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    files: dict[str, StoredFile] = field(default_factory=dict)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Scripted answers per method, in order; None lets that call through normally.
    script: dict[str, list[Failure | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(900_000_001)
        self._file_numbers = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._changed = asyncio.Condition()
        self._poll_generation = 0
        self._kicks = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    # -- server ------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.url}/file/bot"

    def channel_config(self, **extra: Any) -> dict[str, Any]:
        return {
            "bot_token": self.token,
            "api_base_url": self.api_url,
            "file_base_url": self.file_url,
            **extra,
        }

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        params, files = await _read_params(request)
        call = Call(method, params, files)
        await self._record(call)
        failures = self.script.get(method)
        try:
            failure = failures.pop(0) if failures else None
            if failure is not None:
                if failure.drop:
                    assert request.transport is not None
                    request.transport.close()
                    call.answer = ApiError(0, "connection dropped")
                    return web.Response(status=500)
                if failure.status == 502:
                    call.answer = ApiError(502, "Bad Gateway")
                    return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>")
                raise ApiError(failure.status, failure.description, failure.parameters)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params, files)
            call.answer = result
            if (
                method == "getUpdates"
                and request.transport is not None
                and not request.transport.is_closing()
            ):
                # Counted only when someone is still listening (a cancelled long poll gets nothing).
                for update in result:
                    self.handed_out[update["update_id"]] += 1
            return web.json_response({"ok": True, "result": result})
        except ApiError as exc:
            call.answer = exc
            return web.json_response(exc.body(), status=exc.status)
        finally:
            call.finished = True
            await self._record(call, new=False)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.Response(status=404)

    async def _record(self, call: Call, new: bool = True) -> None:
        async with self._changed:
            if new:
                self.calls.append(call)
            self._changed.notify_all()

    # -- waiting (tests wait on what happened, never on time) --------------------------------------

    async def wait_for(
        self,
        method: str,
        match: Callable[[Call], bool] = lambda c: True,
        *,
        after: int = 0,
        answered: bool = True,
        timeout: float = 10,
    ) -> Call:
        """The first call of ``method`` at index >= ``after`` that matches, waiting for it to happen
        (and, with ``answered``, for the fake's answer; a long poll is answered only when it ends)."""

        async def find() -> Call:
            async with self._changed:
                while True:
                    for call in self.calls[after:]:
                        if call.method == method and (call.finished or not answered) and match(call):
                            return call
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def end_long_polls(self) -> None:
        """Answer waiting getUpdates calls now (empty), as when their timeout runs out."""
        async with self._changed:
            self._kicks += 1
            self._changed.notify_all()

    def set_webhook_elsewhere(self, url: str) -> None:
        """Someone else (another deployment, a script) set a webhook for this bot."""
        self.webhook = Webhook(url, None, None)

    def fail_next(self, method: str, *failures: Failure | None) -> None:
        self.script.setdefault(method, []).extend(failures)

    # -- playing users -----------------------------------------------------------------------------

    def user(
        self, user_id: int, first_name: str, last_name: str | None = None, username: str | None = None
    ) -> TgUser:
        user = TgUser(user_id, first_name, last_name, username)
        self.chats[user.id] = user.as_chat()
        return user

    def group(self, chat_id: int, title: str) -> TgGroup:
        group = TgGroup(chat_id, title)
        self.chats[group.id] = group.as_chat()
        return group

    def add_file(self, data: bytes, kind: str = "photos", ext: str = "jpg") -> tuple[str, str]:
        """Store a file as if a user had uploaded it; returns (file_id, file_unique_id)."""
        number = next(self._file_numbers)
        file_id = f"AgACAgIAAxkBAAI{number:06d}fake"
        unique = f"AQAD{number:06d}"
        self.files[file_id] = StoredFile(data, f"{kind}/file_{number}.{ext}", unique)
        return file_id, unique

    def _message_base(self, chat: dict[str, Any], sender: dict[str, Any]) -> dict[str, Any]:
        return {
            "message_id": self._next_message_id(chat["id"]),
            "date": 1717000000 + len(self.calls),
            "from": sender,
            "chat": chat,
        }

    async def user_sends(self, user: TgUser, text: str, *, group: TgGroup | None = None) -> dict[str, Any]:
        payload = fixture("group_text.json" if group else "private_text.json")
        message = {**payload["message"], **self._message_base((group or user).as_chat(), user.as_from())}
        message["text"] = text
        return await self.push({"message": message})

    async def user_sends_photo(self, user: TgUser, data: bytes, caption: str | None = None) -> dict[str, Any]:
        payload = fixture("photo.json")
        message = {**payload["message"], **self._message_base(user.as_chat(), user.as_from())}
        # Telegram offers the photo in several sizes; only the largest (last) is the full picture.
        small_id, small_unique = self.add_file(data[: max(1, len(data) // 8)])
        large_id, large_unique = self.add_file(data)
        message["photo"] = [
            {
                "file_id": small_id,
                "file_unique_id": small_unique,
                "file_size": len(data) // 8,
                "width": 90,
                "height": 67,
            },
            {
                "file_id": large_id,
                "file_unique_id": large_unique,
                "file_size": len(data),
                "width": 1280,
                "height": 960,
            },
        ]
        if caption is None:
            message.pop("caption", None)
        else:
            message["caption"] = caption
        return await self.push({"message": message})

    async def user_sends_document(
        self, user: TgUser, data: bytes, file_name: str, mime_type: str, caption: str | None = None
    ) -> dict[str, Any]:
        payload = fixture("document.json")
        message = {**payload["message"], **self._message_base(user.as_chat(), user.as_from())}
        file_id, unique = self.add_file(data, "documents", file_name.rsplit(".", 1)[-1])
        message["document"] = {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": len(data),
        }
        message.pop("caption", None)
        if caption is not None:
            message["caption"] = caption
        return await self.push({"message": message})

    async def user_edits(self, user: TgUser, original: dict[str, Any], text: str) -> dict[str, Any]:
        """``original`` is an update this fake pushed earlier."""
        message = copy.deepcopy(original["message"])
        message["text"] = text
        message["edit_date"] = message["date"] + 30
        return await self.push({"edited_message": message})

    async def user_presses(self, user: TgUser, bot_message: dict[str, Any], label: str) -> dict[str, Any]:
        """Press the button labelled ``label`` on a message the bot sent (a sendMessage result)."""
        rows = bot_message.get("reply_markup", {}).get("inline_keyboard", [])
        button = next(b for row in rows for b in row if b["text"] == label)
        payload = fixture("callback_query.json")
        query = {
            **payload["callback_query"],
            "id": f"{user.id}{len(self.calls):012d}",
            "from": user.as_from(),
            "message": bot_message,
            "data": button["callback_data"],
        }
        return await self.push({"callback_query": query})

    def user_blocks_bot(self, user: TgUser) -> None:
        self.blocked.add(user.id)

    # -- update delivery ---------------------------------------------------------------------------

    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update as Telegram would; with a webhook set, POST it there at once."""
        update = {"update_id": next(self._update_ids), **update}
        async with self._changed:
            self.pending.append(update)
            self._changed.notify_all()
        if self.webhook is not None:
            await self.deliver_webhooks()
        return update

    async def deliver_webhooks(self) -> None:
        """POST pending updates to the webhook in order; a non-2xx answer keeps it (and the rest) queued."""
        assert self.webhook is not None and self._http is not None
        while self.pending:
            update = self.pending[0]
            headers = {}
            if self.webhook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook.secret_token
            self.handed_out[update["update_id"]] += 1
            async with self._http.post(self.route(self.webhook.url), json=update, headers=headers) as resp:
                self.webhook_answers.append(resp.status)
                if not 200 <= resp.status < 300:
                    return
            self.pending.pop(0)

    # -- Bot API methods ---------------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False}

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        url = params.get("url", "")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_RE.match(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if not url:
            self.webhook = None
            return True
        self.webhook = Webhook(url, secret, params.get("allowed_updates"))
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self.pending.clear()
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.webhook is not None:
            raise ApiError(409, fixture("errors.json")["webhook_active"]["description"])
        offset = params.get("offset")
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        self._poll_generation += 1
        generation = self._poll_generation
        async with self._changed:
            if offset is not None:
                # An offset confirms every update before it: Telegram forgets them.
                self.pending = [u for u in self.pending if u["update_id"] >= offset]
            try:
                kicks = self._kicks
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: (
                            bool(self.pending) or generation != self._poll_generation or kicks != self._kicks
                        )
                    ),
                    timeout,
                )
            except TimeoutError:
                return []
            if kicks != self._kicks and not self.pending:
                return []
            if generation != self._poll_generation:
                # A newer getUpdates arrived: Telegram ends the older one with a conflict.
                raise ApiError(409, fixture("errors.json")["other_poller"]["description"])
            return self.pending[:limit]

    def _check_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return self.chats[chat_id]

    def _bot_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._check_chat(params)
        message = self._message_base(chat, BOT_USER)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return {**self._bot_message(params), "text": text}

    def _upload(
        self, params: dict[str, Any], files: dict[str, bytes], field_name: str
    ) -> tuple[str, str, int]:
        value = params.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            data = files.get(value.removeprefix("attach://"))
        elif field_name in files:
            data = files[field_name]
        elif isinstance(value, str) and value in self.files:
            data = self.files[value].data
        else:
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        assert data is not None
        file_id, unique = self.add_file(data, field_name + "s")
        return file_id, unique, len(data)

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        message = self._bot_message(params)
        file_id, unique, size = self._upload(params, files, "photo")
        message["photo"] = [
            {"file_id": file_id, "file_unique_id": unique, "file_size": size, "width": 800, "height": 600}
        ]
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        message = self._bot_message(params)
        file_id, unique, size = self._upload(params, files, "document")
        message["document"] = {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": size,
            "file_name": params.get("_filename_document") or "file",
        }
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        stored = self.files.get(params.get("file_id", ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": params["file_id"],
            "file_unique_id": stored.unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if not params.get("callback_query_id"):
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        return True

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(100))
        return next(counter)

    def sent_to(self, chat_id: int) -> list[Call]:
        """Messages the bot sent into a chat (successful send* calls), oldest first."""
        return [
            c
            for c in self.calls
            if c.method.startswith("send")
            and isinstance(c.answer, dict)
            and c.params.get("chat_id") == chat_id
        ]


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Bot API parameters from a query string, a form, a multipart body or JSON, typed like Telegram does."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        body = await request.json()
        params.update(body)
        return params, files
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
                params[f"_filename_{key}"] = value.filename
            else:
                params[key] = value
    for key in list(params):
        value = params[key]
        if key in JSON_FIELDS and isinstance(value, str):
            params[key] = json.loads(value)
        elif key in INT_FIELDS and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            params[key] = int(value)
    return params, files
