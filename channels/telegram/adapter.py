"""The Telegram channel: python-telegram-bot's ``Bot`` by composition, webhook or long polling.

Webhook mode: ``start`` registers ``{public_url}/webhooks/telegram/{channel_id}`` with a secret token and
``allowed_updates``; ``handle_webhook`` checks ``X-Telegram-Bot-Api-Secret-Token`` in constant time,
stores through the sink, then answers 200 (a non-2xx makes Telegram deliver again).

Polling mode: ``poll_forever`` (run by the gateway under the cluster lease ``poller:<channel id>``, so
one process polls a bot at a time — Telegram ends the older of two getUpdates with a 409):
``deleteWebhook`` (getUpdates answers 409 while a webhook is set), then ``getUpdates`` from the offset
kept in the channel's state store. Each update is stored before the offset moves past
it, so a restart neither repeats nor skips one. A watchdog rebuilds the polling client after network
errors, with back-off (PTB #4405: polling can wedge after network errors).

See shared/reference/protocols.md §2.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from channels.media import ANY_TYPE, MediaLimits
from channels.telegram.config import ALLOWED_UPDATES, Mode, TelegramConfig
from channels.telegram.errors import RedactingFilter, Redactor, map_send_error, retry_seconds
from channels.telegram.parse import (
    FileRef,
    Ignored,
    ParsedUpdate,
    UnreadableUpdate,
    parse_update,
    provider_id,
    update_id,
)
from channels.telegram.split import MAX_CAPTION, split_text, utf16_len
from inbox.model import (
    Attachment,
    ChannelInfo,
    ChannelKind,
    InboundSink,
    OutboundMessage,
    PermanentChannelError,
    Reason,
    SendResult,
    StateStore,
    StatusSink,
)

_LOGGER = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
OFFSET_KEY = "polling"
# State keys ``unreadable:<update_id>`` keep, raw, the updates that could not be read.
UNREADABLE_KEY = "unreadable"
# getFile serves files up to 20 MB (Bot API, getFile).
MAX_DOWNLOAD = 20 * 1024 * 1024
# Outbound images Telegram shows as photos; other files go as documents.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# Bot API uploads: photos up to 10 MB, other files up to 50 MB (each file is its own call).
MEDIA_LIMITS = MediaLimits(
    "Telegram",
    max_files=10,
    sizes={**dict.fromkeys(PHOTO_TYPES, 10 * 1024 * 1024), ANY_TYPE: 50 * 1024 * 1024},
)
# callback_data is 1-64 bytes (Bot API, InlineKeyboardButton).
MAX_CALLBACK_DATA = 64
# Seconds a Bot API answer may take beyond a long poll's own timeout.
READ_TIMEOUT = 10.0
NO_TOKEN = "this Telegram channel has no bot_token configured"


class MediaReader(Protocol):
    """Reads stored media by key (the gateway's media store)."""

    async def get(self, key: str) -> bytes: ...


class _Bot(Bot):
    """PTB's ``Bot`` plus getUpdates answered as raw JSON.

    ``Bot.get_updates`` turns the whole batch into ``Update`` objects and raises if one does not fit
    (a newer Bot API, an odd field): the poller would then ask for the same batch for ever. PTB's own
    request path (``_post``: error mapping to Conflict, RetryAfter, InvalidToken...) is kept.
    """

    async def raw_updates(self, offset: int | None, poll_seconds: float) -> list[Any]:
        data: dict[str, Any] = {
            "offset": offset,
            "timeout": poll_seconds,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        # The long poll holds the request for ``poll_seconds``: the read may take that much longer.
        result = await self._post("getUpdates", data, read_timeout=poll_seconds + READ_TIMEOUT)
        return result if isinstance(result, list) else []


class _Client:
    """A PTB ``Bot`` and the two HTTP pools it uses (one for getUpdates, one for everything else)."""

    def __init__(self, config: TelegramConfig) -> None:
        token = config.token
        assert token is not None
        # Separate pools for sending and for the long poll (PTB #3087: pool timeouts).
        self.requests = (HTTPXRequest(connection_pool_size=8), HTTPXRequest(connection_pool_size=2))
        self.bot = _Bot(
            token,
            base_url=config.api_base_url,
            base_file_url=config.file_base_url,
            request=self.requests[0],
            get_updates_request=self.requests[1],
        )

    async def open(self) -> None:
        # Only the HTTP pools: Bot.initialize would also call getMe and put the token in its error text.
        for request in self.requests:
            await request.initialize()

    async def close(self) -> None:
        for request in self.requests:
            with contextlib.suppress(Exception):
                await request.shutdown()


Sleep = Callable[[float], Awaitable[None]]
Step = Callable[[Bot, InlineKeyboardMarkup | None], Awaitable[Message]]


class TelegramAdapter:
    """One Telegram bot as a channel. No I/O before ``start``."""

    kind = ChannelKind.TELEGRAM

    def __init__(
        self,
        info: ChannelInfo,
        config: TelegramConfig,
        *,
        state: StateStore,
        media: MediaReader,
        public_url: str,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.channel_id = info.id
        self.config = config
        self.mode = config.effective_mode(public_url)
        self.webhook_url = f"{public_url.rstrip('/')}/webhooks/telegram/{info.id}"
        self._state = state
        self._media = media
        self._sleep = sleep
        self._redact = Redactor(config.token)
        self._log_filter = RedactingFilter(self._redact)
        self._client: _Client | None = None
        self._sink: InboundSink | None = None
        self._task: asyncio.Task[None] | None = None
        # Parts of a multi-part message already delivered, by outbox message id, so a retry after a
        # failure half-way does not send the first parts again (kept in memory: lost on restart).
        self._progress: dict[int, list[str]] = {}
        self.polling_client_builds = 0  # how often the watchdog built a polling client (for tests, ops)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink = sink
        if self.config.token is None:
            _LOGGER.warning(
                "telegram channel %s has no bot_token: not receiving, and sends fail until one is set",
                self.channel_id,
            )
            return
        self._log_filter.install()
        self._client = _Client(self.config)
        await self._client.open()
        if self.mode is Mode.WEBHOOK:
            self._task = asyncio.create_task(
                self._register_webhook(), name=f"telegram-{self.channel_id}-webhook"
            )
        # Polling mode: the gateway runs ``poll_forever`` in the one process holding the channel's lease.

    @property
    def polling(self) -> bool:
        """Whether this channel has a poll loop to run (long polling with a token)."""
        return self.mode is Mode.POLLING and self.config.token is not None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._log_filter.remove()
        self._sink = None

    @property
    def _bot(self) -> Bot | None:
        return self._client.bot if self._client is not None else None

    # -- webhook -----------------------------------------------------------------------------------

    async def _register_webhook(self) -> None:
        secret = self.config.webhook_secret
        if secret is None:
            _LOGGER.error("telegram channel %s: webhook mode needs a webhook_secret", self.channel_id)
            return
        delay = self.config.reconnect_delay
        while True:
            assert self._bot is not None
            try:
                await self._bot.set_webhook(
                    url=self.webhook_url,
                    secret_token=secret.get_secret_value(),
                    allowed_updates=list(ALLOWED_UPDATES),
                )
                _LOGGER.info("telegram channel %s: webhook set to %s", self.channel_id, self.webhook_url)
                return
            except InvalidToken:
                _LOGGER.error("telegram channel %s: the bot token was rejected", self.channel_id)
                return
            except RetryAfter as exc:
                await self._sleep(retry_seconds(exc))
            except BadRequest as exc:  # e.g. not an https URL: a settings problem, retrying will not help
                _LOGGER.error(
                    "telegram channel %s: Telegram refused the webhook %s (%s)",
                    self.channel_id,
                    self.webhook_url,
                    self._redact(exc.message),
                )
                return
            except TelegramError as exc:
                _LOGGER.warning(
                    "telegram channel %s: setWebhook failed (%s); retrying in %.1fs",
                    self.channel_id,
                    self._redact(exc.message),
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, self.config.max_reconnect_delay)

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        """Verify the secret, store the update, then answer 200; 403 and nothing stored on a mismatch."""
        secret = self.config.webhook_secret
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        given = request.headers.get(SECRET_HEADER, "").encode()
        if (
            secret is None
            or self.mode is not Mode.WEBHOOK
            or not hmac.compare_digest(given, secret.get_secret_value().encode())
        ):
            return web.Response(status=403, text="bad secret token")
        if self._bot is None or self._sink is None:
            return web.Response(status=503, text="channel not running")
        try:
            raw = await request.json()
        except ValueError:
            return web.Response(status=400, text="not a Telegram update: the body is not JSON")
        if not isinstance(raw, dict) or update_id(raw) is None:
            return web.Response(status=400, text="not a Telegram update: update_id missing")
        # Stored before we answer: Telegram delivers again on a non-2xx (holding back newer updates),
        # and dedupe absorbs repeats. Whatever the update holds, it is answered 200 once taken.
        await self._ingest(raw)
        return web.Response(status=200)

    # -- polling -----------------------------------------------------------------------------------

    async def poll_forever(self) -> None:
        """The polling loop and its watchdog, until cancelled: a failure closes the client and builds a
        new one after a back-off that doubles up to ``max_reconnect_delay``. Runs only after ``start``."""
        if not self.polling:
            return
        state = await self._state.get(OFFSET_KEY)
        offset: int | None = int(state["offset"]) if state and "offset" in state else None
        delay = self.config.reconnect_delay
        client: _Client | None = None
        try:
            while True:
                try:
                    if client is None:
                        client = _Client(self.config)
                        await client.open()
                        self.polling_client_builds += 1
                        # Polling and a webhook exclude each other: getUpdates answers 409 while one is set.
                        await self._call_with_watchdog(client.bot.delete_webhook())
                    updates = await self._call_with_watchdog(
                        client.bot.raw_updates(offset, self.config.poll_timeout),
                        extra=self.config.poll_timeout,
                    )
                    for raw in updates:
                        number = update_id(raw) if isinstance(raw, dict) else None
                        if number is None:
                            _LOGGER.warning(
                                "telegram channel %s: getUpdates item without update_id", self.channel_id
                            )
                            continue
                        if offset is not None and number < offset:
                            continue  # already ours (Telegram may answer with one it was told to forget)
                        await self._ingest(raw)
                        # Only now is the update ours: move past it durably (Telegram forgets it once
                        # a later getUpdates carries this offset).
                        await self._state.set(OFFSET_KEY, {"offset": number + 1})
                        offset = number + 1
                    delay = self.config.reconnect_delay
                    continue
                except InvalidToken:
                    _LOGGER.error(
                        "telegram channel %s: the bot token was rejected; polling stopped", self.channel_id
                    )
                    # Wait here rather than return: the lease runner would start polling again.
                    await asyncio.Event().wait()
                except RetryAfter as exc:
                    await self._sleep(retry_seconds(exc))
                    continue
                except Conflict as exc:
                    # A webhook was set behind our back (the new client deletes it again), or another
                    # process polls this bot: back off, and say so.
                    _LOGGER.warning(
                        "telegram channel %s: 409 conflict (%s); is another instance polling this bot?",
                        self.channel_id,
                        self._redact(exc.message),
                    )
                except (NetworkError, TimeoutError) as exc:  # TimeoutError: the watchdog's bound
                    _LOGGER.warning(
                        "telegram channel %s: polling failed (%s); new client in %.1fs",
                        self.channel_id,
                        self._redact(str(exc)) or type(exc).__name__,
                        delay,
                    )
                except Exception:  # the store failed: keep the offset, the same updates come again
                    _LOGGER.exception("telegram channel %s: storing an update failed", self.channel_id)
                if client is not None:
                    await client.close()
                    client = None
                await self._sleep(delay)
                delay = min(delay * 2, self.config.max_reconnect_delay)
        finally:
            if client is not None:
                await client.close()

    async def _call_with_watchdog(self, call: Awaitable[Any], extra: float = 0) -> Any:
        """A wedged connection pool must not stall polling for ever: give up after a generous bound."""
        async with asyncio.timeout(30 + extra):  # not wait_for: it can swallow a cancel on 3.11
            return await call

    # -- inbound -----------------------------------------------------------------------------------

    async def _ingest(self, raw: dict[str, Any]) -> None:
        number = update_id(raw)
        try:
            parsed = parse_update(self.channel_id, raw)
        except Exception as exc:
            # Parsing is deterministic: retrying would stall the channel on this update for ever. Keep
            # it raw in the channel's state (nothing is lost), say so, and move on.
            _LOGGER.warning(
                "telegram channel %s: update %s not readable (%s); kept raw, skipped",
                self.channel_id,
                number,
                exc if isinstance(exc, UnreadableUpdate) else type(exc).__name__,
            )
            await self._state.set(f"{UNREADABLE_KEY}:{number}", {"update": raw, "error": str(exc)[:300]})
            return
        if isinstance(parsed, Ignored):
            _LOGGER.info("telegram channel %s: update %s ignored: %s", self.channel_id, number, parsed.why)
            return
        assert self._sink is not None and self._bot is not None
        attachments = [await self._fetch(ref) for ref in parsed.files]
        message = parsed.message
        if attachments:
            message = message.model_copy(update={"attachments": tuple(attachments)})
        await self._sink(message)
        if parsed.callback_query_id is not None:
            await self._answer(parsed)

    async def _fetch(self, ref: FileRef) -> Attachment:
        """The file's bytes via getFile. A file Telegram will not serve is kept as metadata only;
        a network error propagates, so the update is not acknowledged and comes again."""
        meta = Attachment(content_type=ref.content_type, filename=ref.filename, size=ref.size)
        if ref.size is not None and ref.size > MAX_DOWNLOAD:
            return meta
        assert self._bot is not None
        try:
            file = await self._bot.get_file(ref.file_id)
            data = bytes(await file.download_as_bytearray())
        except BadRequest as exc:  # "file is too big", an expired file id
            _LOGGER.warning(
                "telegram channel %s: file not fetched (%s)", self.channel_id, self._redact(exc.message)
            )
            return meta
        return meta.model_copy(update={"data": data, "size": len(data)})

    async def _answer(self, parsed: ParsedUpdate) -> None:
        """Stops the spinner on the user's button; the press is already stored, so failures only log."""
        assert self._bot is not None and parsed.callback_query_id is not None
        try:
            await self._bot.answer_callback_query(parsed.callback_query_id)
        except TelegramError as exc:
            _LOGGER.info(
                "telegram channel %s: answerCallbackQuery failed (%s)",
                self.channel_id,
                self._redact(exc.message),
            )

    # -- outbound ----------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        bot = self._bot
        if bot is None:
            raise PermanentChannelError(Reason.CHANNEL_ERROR, NO_TOKEN)
        try:
            chat_id = int(message.to)
        except ValueError:
            raise PermanentChannelError(
                Reason.INVALID_RECIPIENT, f"not a Telegram chat id: {message.to!r}"
            ) from None
        steps = await self._plan(chat_id, message)
        done = self._progress.setdefault(message.message_id, [])
        markup = _keyboard(message.buttons)
        try:
            for index in range(len(done), len(steps)):
                last = index == len(steps) - 1
                sent = await steps[index](bot, markup if last else None)
                done.append(provider_id(sent.chat.id, sent.message_id))
        except TelegramError as exc:
            error = map_send_error(exc, chat_id, self._redact)
            if isinstance(error, PermanentChannelError):
                del self._progress[message.message_id]  # the outbox will not try this message again
            raise error from None
        del self._progress[message.message_id]
        # The last part carries the buttons, so a press on them finds this message (parse.references).
        return SendResult(provider_message_id=done[-1])

    async def _plan(self, chat_id: int, message: OutboundMessage) -> list[Step]:
        """One Bot API call per step: attachments (the first with the text as caption when it fits),
        then the text in chunks of at most 4,096 characters."""
        text = (message.text or "").strip()
        if not text and not message.attachments:
            if message.template is not None:
                raise PermanentChannelError(Reason.CHANNEL_ERROR, "Telegram has no templates; send text")
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "nothing to send")
        steps: list[Step] = []
        caption: str | None = None
        if message.attachments and text and utf16_len(text) <= MAX_CAPTION:
            caption, text = text, ""
        for attachment in message.attachments:
            steps.append(await self._attachment_step(chat_id, attachment, caption))
            caption = None
        for chunk in split_text(text):
            steps.append(_text_step(chat_id, chunk))
        return steps

    async def _attachment_step(self, chat_id: int, attachment: Attachment, caption: str | None) -> Step:
        content: bytes | str
        if attachment.media_key is not None:
            try:
                content = await self._media.get(attachment.media_key)
            except (OSError, ValueError) as exc:
                raise PermanentChannelError(Reason.CHANNEL_ERROR, f"attachment not readable: {exc}") from exc
        elif attachment.url is not None:
            content = attachment.url  # Telegram fetches URLs itself
        else:
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "attachment has neither stored media nor a URL")
        as_photo = attachment.content_type in PHOTO_TYPES

        async def step(bot: Bot, markup: InlineKeyboardMarkup | None) -> Message:
            if as_photo:
                return await bot.send_photo(
                    chat_id, photo=content, caption=caption, filename=attachment.filename, reply_markup=markup
                )
            return await bot.send_document(
                chat_id, document=content, caption=caption, filename=attachment.filename, reply_markup=markup
            )

        return step


def _text_step(chat_id: int, text: str) -> Step:
    async def step(bot: Bot, markup: InlineKeyboardMarkup | None) -> Message:
        return await bot.send_message(chat_id, text, reply_markup=markup)

    return step


def _keyboard(buttons: tuple[str, ...]) -> InlineKeyboardMarkup | None:
    """One button per row; a press comes back as a callback_query whose data is the button's label."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=callback_data(label))] for label in buttons]
    )


def callback_data(label: str) -> str:
    """The label cut to 64 bytes of UTF-8 without splitting a character."""
    return label.encode()[:MAX_CALLBACK_DATA].decode(errors="ignore") or "-"


__all__ = ["MediaReader", "TelegramAdapter"]
