"""A Telegram update (its raw JSON) → ``InboundMessage``: a pure, lenient dispatch on the update's kind.

Read from the JSON, not from python-telegram-bot's objects: PTB's ``de_json`` rejects updates with a
shape it does not expect (a newer Bot API, a field of another type), and an update we cannot take must
never stop a poller or earn Telegram a non-2xx. Only the fields we use are read; each is checked.

Files are only referenced here (``FileRef``); the adapter fetches them with ``getFile`` afterwards.
Provider ids: Telegram's ``message_id`` is unique per chat only, so ours are ``<chat_id>:<message_id>``,
the same form ``send`` returns, so a button press can point at the message that carried the button.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inbox.model import InboundMessage

# The update kinds that carry a customer's message. Every other kind (inline mode, payments, polls,
# membership, reactions, business connections...) is acknowledged and logged, never stored.
MESSAGE_KINDS = ("message", "edited_message")
# Message fields with a file to fetch, and the type to assume when Telegram names none.
FILE_KINDS: Mapping[str, str] = {
    "document": "application/octet-stream",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "voice": "audio/ogg",
    "animation": "video/mp4",
    "video_note": "video/mp4",
}


class UnreadableUpdate(ValueError):
    """An update that names a message but lacks what every message has (a chat, an id)."""


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


@dataclass(frozen=True)
class Ignored:
    """An update with nothing for the inbox, and why (for the log line)."""

    why: str


def provider_id(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def update_id(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_update(channel_id: int, raw: Mapping[str, Any]) -> ParsedUpdate | Ignored:
    """The message to store for one update, or ``Ignored`` when there is nothing for the inbox (service
    messages, channel posts, other bots, update kinds that are not messages). Raises UnreadableUpdate."""
    for kind in MESSAGE_KINDS:
        if kind in raw:
            return _from_message(channel_id, raw, _dict(raw[kind], kind), edited=kind.startswith("edited"))
    if "callback_query" in raw:
        return _callback(channel_id, raw, _dict(raw["callback_query"], "callback_query"))
    kinds = sorted(k for k in raw if k != "update_id")
    return Ignored(f"{', '.join(kinds) or 'empty'} update")


def _from_message(
    channel_id: int, raw: Mapping[str, Any], msg: Mapping[str, Any], *, edited: bool
) -> ParsedUpdate | Ignored:
    chat = _dict(msg.get("chat"), "message.chat")
    chat_id, message_id = _int(chat.get("id")), _int(msg.get("message_id"))
    if chat_id is None or message_id is None:
        raise UnreadableUpdate("a message without chat.id or message_id")
    user = _opt_dict(msg.get("from"))
    if _int(user.get("id")) is None or user.get("is_bot") is True:
        return Ignored("a channel post or another bot's message")  # not a conversation with a contact
    content_type, text, files = _content(msg)
    if content_type is None and text is None:
        return Ignored("a service message")  # someone joined, a title changed, a pin...
    text = _forwarded(msg, text)
    own_id = provider_id(chat_id, message_id)
    references: tuple[str, ...] = ()
    replied = _int(_opt_dict(msg.get("reply_to_message")).get("message_id"))
    if replied is not None:
        references = (provider_id(chat_id, replied),)
    at = (_time(msg.get("edit_date")) if edited else None) or _time(msg.get("date"))
    return ParsedUpdate(
        message=InboundMessage(
            channel_id=channel_id,
            # An edit is its own delivery (deduped by update_id) that rewrites the message it edits.
            provider_message_id=f"{own_id}:edit:{update_id(raw)}" if edited else own_id,
            edit_of=own_id if edited else None,
            text=_with_sender(chat, user, text),
            content_type=content_type or "text",
            references=references,
            received_at=at,
            raw=raw,
            **_addressing(chat, user),
        ),
        files=files,
    )


def _callback(channel_id: int, raw: Mapping[str, Any], cq: Mapping[str, Any]) -> ParsedUpdate | Ignored:
    query_id = _str(cq.get("id"))
    user = _opt_dict(cq.get("from"))
    if query_id is None or _int(user.get("id")) is None:
        raise UnreadableUpdate("a callback query without id or from.id")
    # None for inline-mode messages; an "inaccessible message" (date 0) when older than 48 h still
    # names its chat and id.
    carrier = _opt_dict(cq.get("message"))
    chat = _opt_dict(carrier.get("chat")) or None
    references: tuple[str, ...] = ()
    chat_id, message_id = _int((chat or {}).get("id")), _int(carrier.get("message_id"))
    if chat_id is not None and message_id is not None:
        references = (provider_id(chat_id, message_id),)
    return ParsedUpdate(
        message=InboundMessage(
            channel_id=channel_id,
            provider_message_id=f"cb:{query_id}",
            text=_with_sender(chat, user, _str(cq.get("data")) or _str(cq.get("game_short_name"))),
            content_type="interactive",
            references=references,
            raw=raw,
            **_addressing(chat, user),
        ),
        callback_query_id=query_id,
    )


def _addressing(chat: Mapping[str, Any] | None, user: Mapping[str, Any]) -> dict[str, Any]:
    """Sender fields; a group chat gets its own conversation (thread_key) and replies go to the group."""
    username = _str(user.get("username"))
    fields: dict[str, Any] = {
        "sender": str(user["id"]),
        "sender_name": _full_name(user),
        "contact_attributes": {"telegram_username": username} if username else {},
    }
    chat_id = _int((chat or {}).get("id"))
    if chat is not None and chat_id is not None and chat.get("type", "private") != "private":
        fields["thread_key"] = f"chat:{chat_id}"
        fields["reply_address"] = str(chat_id)
    return fields


def _with_sender(chat: Mapping[str, Any] | None, user: Mapping[str, Any], text: str | None) -> str | None:
    """In a group several people write into one conversation: name who said it."""
    if text is None or chat is None or chat.get("type", "private") == "private":
        return text
    who = _full_name(user) or str(user["id"])
    username = _str(user.get("username"))
    if username:
        who += f" (@{username})"
    return f"{who}: {text}"


def _forwarded(msg: Mapping[str, Any], text: str | None) -> str | None:
    """A forwarded message says from whom (Bot API 7 ``forward_origin``, or the older fields)."""
    origin = _opt_dict(msg.get("forward_origin"))
    who = (
        _full_name(_opt_dict(origin.get("sender_user")))
        or _str(origin.get("sender_user_name"))
        or _str(_opt_dict(origin.get("sender_chat") or origin.get("chat")).get("title"))
        or _full_name(_opt_dict(msg.get("forward_from")))
        or _str(_opt_dict(msg.get("forward_from_chat")).get("title"))
        or _str(msg.get("forward_sender_name"))
    )
    if who is None or text is None:
        return text
    return f"[Forwarded from {who}] {text}"


def _content(msg: Mapping[str, Any]) -> tuple[str | None, str | None, tuple[FileRef, ...]]:
    """(content type, text, files to fetch). Photos come in several sizes; we keep the largest."""
    text = _str(msg.get("text"))
    if text is None:
        text = _str(msg.get("caption"))
    photos = [p for p in _list(msg.get("photo")) if isinstance(p, dict) and _str(p.get("file_id"))]
    if photos:
        best = max(
            photos, key=lambda p: ((_int(p.get("width")) or 0) * (_int(p.get("height")) or 0), _size(p))
        )
        unique = _str(best.get("file_unique_id")) or "photo"
        # Telegram re-encodes every photo as JPEG.
        return (
            "image",
            text,
            (FileRef(best["file_id"], "image/jpeg", f"{unique}.jpg", _int(best.get("file_size"))),),
        )
    for kind, default_type in FILE_KINDS.items():
        media = _opt_dict(msg.get(kind))
        file_id = _str(media.get("file_id"))
        if file_id:
            ref = FileRef(
                file_id,
                _str(media.get("mime_type")) or default_type,
                _str(media.get("file_name")),
                _int(media.get("file_size")),
            )
            return kind, text, (ref,)
    for kind, describe in _DESCRIBED.items():
        body = msg.get(kind)
        if isinstance(body, dict):
            content_type, said, files = describe(body)
            return content_type, said if text is None else text, files
    if text is not None:
        return None, text, ()
    if any(key in msg for key in _UNSUPPORTED):
        return "unsupported", None, ()  # kept raw, shown as unsupported
    return None, None, ()


def _sticker(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    file_id = _str(body.get("file_id"))
    kind = (
        "video/webm"
        if body.get("is_video")
        else "application/x-tgsticker"
        if body.get("is_animated")
        else "image/webp"
    )
    files = (FileRef(file_id, kind, None, _int(body.get("file_size"))),) if file_id else ()
    return "sticker", _str(body.get("emoji")), files


def _location(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    return "location", _coordinates(body), ()


def _venue(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    label = ", ".join(x for x in (_str(body.get("title")), _str(body.get("address"))) if x)
    where = _coordinates(_opt_dict(body.get("location")))
    if label and where:
        return "location", f"{label} ({where})", ()
    return "location", label or where, ()


def _contact(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    name = _full_name(body)
    phone = _str(body.get("phone_number"))
    return "contacts", ": ".join(x for x in (name, phone) if x) or None, ()


def _dice(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    value = _int(body.get("value"))
    return (
        "dice",
        " ".join(x for x in (_str(body.get("emoji")), None if value is None else str(value)) if x),
        (),
    )


def _game(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    return "game", _str(body.get("title")), ()


def _poll(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[FileRef, ...]]:
    options = [_str(_opt_dict(o).get("text")) for o in _list(body.get("options"))]
    question = _str(body.get("question"))
    listed = " / ".join(o for o in options if o)
    return "poll", "\n".join(x for x in (question, listed) if x) or None, ()


_DESCRIBED: Mapping[str, Callable[[Mapping[str, Any]], tuple[str, str | None, tuple[FileRef, ...]]]] = {
    "sticker": _sticker,
    "venue": _venue,  # before location: a venue message carries both
    "location": _location,
    "contact": _contact,
    "dice": _dice,
    "game": _game,
    "poll": _poll,
}
# Content we do not show but must not mistake for a service message.
_UNSUPPORTED = ("story", "invoice", "giveaway", "giveaway_winners", "paid_media", "checklist")


def _coordinates(body: Mapping[str, Any]) -> str | None:
    lat, lon = body.get("latitude"), body.get("longitude")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lat, lon)):
        return None
    return f"{lat}, {lon}"


def _full_name(person: Mapping[str, Any]) -> str | None:
    return " ".join(x for x in (_str(person.get("first_name")), _str(person.get("last_name"))) if x) or None


def _dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise UnreadableUpdate(f"{where} is not an object")
    return value


def _opt_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _size(photo: Mapping[str, Any]) -> int:
    return _int(photo.get("file_size")) or 0


def _time(value: Any) -> datetime | None:
    seconds = _int(value)
    if not seconds or not 0 < seconds < 2**40:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)
