"""Telegram ``Update`` → ``InboundMessage``: a pure dispatch on the update's kind, no I/O.

Files are only referenced here (``FileRef``); the adapter fetches them with ``getFile`` afterwards.
Provider ids: Telegram's ``message_id`` is unique per chat only, so ours are ``<chat_id>:<message_id>``,
the same form ``send`` returns, so a button press can point at the message that carried the button.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, Chat, Message, Update, User

from inbox.model import InboundMessage


@dataclass(frozen=True)
class FileRef:
    """A file to fetch with ``getFile`` and attach."""

    file_id: str
    content_type: str
    filename: str | None
    size: int | None


@dataclass(frozen=True)
class ParsedUpdate:
    message: InboundMessage  # attachments not yet filled
    files: tuple[FileRef, ...] = ()
    callback_query_id: str | None = None  # answered with answerCallbackQuery once stored


def provider_id(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def parse_update(channel_id: int, update: Update, raw: dict[str, Any]) -> ParsedUpdate | None:
    """The message to store for one update, or None when there is nothing for the inbox (service
    messages, channel posts, update kinds we did not ask for)."""
    for field, parser in _PARSERS:
        value = getattr(update, field)
        if value is not None:
            return parser(channel_id, update, value, raw)
    return None


def _message(channel_id: int, update: Update, msg: Message, raw: dict[str, Any]) -> ParsedUpdate | None:
    return _from_message(channel_id, update, msg, raw, edited=False)


def _edited(channel_id: int, update: Update, msg: Message, raw: dict[str, Any]) -> ParsedUpdate | None:
    return _from_message(channel_id, update, msg, raw, edited=True)


def _from_message(
    channel_id: int, update: Update, msg: Message, raw: dict[str, Any], *, edited: bool
) -> ParsedUpdate | None:
    user = msg.from_user
    if user is None or user.is_bot:
        return None  # channel posts and other bots' messages are not conversations with a contact
    content_type, files = _content(msg)
    text = msg.text if msg.text is not None else msg.caption
    if msg.location is not None and text is None:
        text = f"{msg.location.latitude}, {msg.location.longitude}"
    if content_type is None and text is None:
        return None  # service message: someone joined, a title changed, a pin...
    own_id = provider_id(msg.chat.id, msg.message_id)
    return ParsedUpdate(
        message=InboundMessage(
            channel_id=channel_id,
            # An edit is its own delivery (deduped by update_id) that rewrites the message it edits.
            provider_message_id=f"{own_id}:edit:{update.update_id}" if edited else own_id,
            edit_of=own_id if edited else None,
            text=_with_sender(msg.chat, user, text),
            content_type=content_type or "text",
            received_at=(msg.edit_date if edited else None) or msg.date,
            raw=raw,
            **_addressing(msg.chat, user),
        ),
        files=files,
    )


def _callback(channel_id: int, update: Update, cq: CallbackQuery, raw: dict[str, Any]) -> ParsedUpdate | None:
    user = cq.from_user
    carrier = cq.message  # None for inline-mode messages; maybe inaccessible when older than 48 h
    chat = carrier.chat if carrier is not None else None
    references: tuple[str, ...] = ()
    if carrier is not None:
        references = (provider_id(carrier.chat.id, carrier.message_id),)
    return ParsedUpdate(
        message=InboundMessage(
            channel_id=channel_id,
            provider_message_id=f"cb:{cq.id}",
            text=_with_sender(chat, user, cq.data),
            content_type="interactive",
            references=references,
            raw=raw,
            **_addressing(chat, user),
        ),
        callback_query_id=cq.id,
    )


_PARSERS: tuple[tuple[str, Callable[[int, Update, Any, dict[str, Any]], ParsedUpdate | None]], ...] = (
    ("message", _message),
    ("edited_message", _edited),
    ("callback_query", _callback),
)


def _addressing(chat: Chat | None, user: User) -> dict[str, Any]:
    """Sender fields; a group chat gets its own conversation (thread_key) and replies go to the group."""
    fields: dict[str, Any] = {
        "sender": str(user.id),
        "sender_name": user.full_name or None,
        "contact_attributes": {"telegram_username": user.username} if user.username else {},
    }
    if chat is not None and chat.type != Chat.PRIVATE:
        fields["thread_key"] = f"chat:{chat.id}"
        fields["reply_address"] = str(chat.id)
    return fields


def _with_sender(chat: Chat | None, user: User, text: str | None) -> str | None:
    """In a group several people write into one conversation: name who said it."""
    if text is None or chat is None or chat.type == Chat.PRIVATE:
        return text
    who = user.full_name or str(user.id)
    if user.username:
        who += f" (@{user.username})"
    return f"{who}: {text}"


def _content(msg: Message) -> tuple[str | None, tuple[FileRef, ...]]:
    """The content type and the files to fetch. Photos come in several sizes; we keep the largest."""
    if msg.photo:
        best = max(msg.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        # Telegram re-encodes every photo as JPEG.
        return "image", (FileRef(best.file_id, "image/jpeg", f"{best.file_unique_id}.jpg", best.file_size),)
    for kind in ("document", "audio", "video", "voice", "animation", "video_note"):
        media = getattr(msg, kind)
        if media is not None:
            default_type = "video/mp4" if kind == "video_note" else "application/octet-stream"
            return kind, (
                FileRef(
                    media.file_id,
                    getattr(media, "mime_type", None) or default_type,
                    getattr(media, "file_name", None),
                    media.file_size,
                ),
            )
    if msg.location is not None:
        return "location", ()
    if msg.effective_attachment is not None:
        return "unsupported", ()  # stickers, polls, contacts, dice...: kept raw, shown as unsupported
    return None, ()
