"""Bot API errors (as PTB raises them) → the two errors the outbox understands.

PTB maps HTTP answers in ``telegram.request.BaseRequest._request_wrapper``: ``parameters.retry_after``
→ ``RetryAfter`` (429), 403 → ``Forbidden``, 400 → ``BadRequest``, 401/404 → ``InvalidToken``,
``parameters.migrate_to_chat_id`` → ``ChatMigrated``, anything else → ``NetworkError``.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from urllib.parse import quote

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from inbox.model import ChannelError, PermanentChannelError, Reason, TransientChannelError


def retry_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` is an int, or a timedelta with PTB_TIMEDELTA=true: handle both."""
    with warnings.catch_warnings():
        # PTB 22.2+ warns that the int form goes away; both forms are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def map_send_error(exc: TelegramError, chat_id: int, redact: Redactor) -> ChannelError:
    """The outbox's view of a failed Bot API call for a message to ``chat_id``."""
    detail = redact(exc.message)
    if isinstance(exc, RetryAfter):
        return TransientChannelError(f"Telegram flood control: {detail}", retry_seconds(exc))
    if isinstance(exc, Forbidden):
        if chat_id > 0:  # private chats have positive ids: the person blocked the bot
            return PermanentChannelError(Reason.BLOCKED_BY_USER, detail, "403")
        return PermanentChannelError(Reason.CHANNEL_ERROR, f"the bot cannot write here: {detail}", "403")
    if isinstance(exc, ChatMigrated):
        # The group became a supergroup with a new id; replies need the new conversation.
        return PermanentChannelError(
            Reason.INVALID_RECIPIENT, f"group moved to chat {exc.new_chat_id}", "migrate_to_chat_id"
        )
    if isinstance(exc, InvalidToken):
        return PermanentChannelError(Reason.CHANNEL_ERROR, "the bot token was rejected by Telegram", "401")
    if isinstance(exc, BadRequest):  # a subclass of NetworkError, so before it
        lowered = detail.lower()
        if "chat not found" in lowered or "user not found" in lowered:
            return PermanentChannelError(Reason.INVALID_RECIPIENT, detail, "400")
        if "too long" in lowered:
            return PermanentChannelError(Reason.MESSAGE_TOO_LONG, detail, "400")
        return PermanentChannelError(Reason.CHANNEL_ERROR, detail, "400")
    if isinstance(exc, NetworkError):  # includes TimedOut and 5xx: try again
        return TransientChannelError(f"Telegram unreachable: {detail}")
    return TransientChannelError(f"Telegram error: {detail}")


class Redactor:
    """Replaces the bot token wherever it could show up (error texts, URLs, library log lines)."""

    def __init__(self, token: str | None) -> None:
        # Also as URL-quoted: file download URLs carry the token with its ":" escaped.
        self._forms = tuple(dict.fromkeys((token, quote(token, safe="")))) if token else ()

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, "<bot-token>")
        return text


class RedactingFilter(logging.Filter):
    """Installed on the HTTP and PTB loggers while an adapter runs: httpx logs every request URL at
    INFO and PTB logs its base URL at DEBUG, and both URLs carry the bot token."""

    LOGGERS = (
        "httpx",
        "httpcore",
        "telegram",
        "telegram.Bot",
        "telegram.BaseRequest",
        "telegram.HTTPXRequest",
    )

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)
