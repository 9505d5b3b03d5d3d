"""Webhook payloads → ``InboundMessage`` / ``DeliveryUpdate``. Pure: no I/O (media is fetched later).

One POST may carry several ``entry``, ``changes``, ``messages`` and ``statuses``; every one is walked.
Unknown message types become ``content_type="unsupported"`` with the raw item kept, never dropped.
Unknown fields are ignored (newer payloads add e.g. ``contacts[].user_id``). protocols.md §1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.whatsapp.errors import reason_for
from inbox.model import DeliveryUpdate, InboundMessage, InvalidWebhook, MessageStatus

_LOGGER = logging.getLogger(__name__)

OBJECT = "whatsapp_business_account"
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
STATUSES: Mapping[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
}


@dataclass(frozen=True)
class MediaRef:
    """A media object to fetch through ``GET /{media-id}`` before the message is stored."""

    media_id: str
    mime_type: str
    filename: str | None = None


@dataclass(frozen=True)
class InboundItem:
    message: InboundMessage
    media: MediaRef | None = None


@dataclass
class ParsedWebhook:
    messages: list[InboundItem] = field(default_factory=list)
    statuses: list[DeliveryUpdate] = field(default_factory=list)
    skipped: int = 0  # items without an id or sender: nothing to de-duplicate on, logged


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _timestamp(value: Any) -> datetime | None:
    """``timestamp`` is a string of epoch seconds."""
    text = _str(value)
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 12:  # "²".isdigit()
        return None
    return datetime.fromtimestamp(int(text), tz=UTC)


def parse_envelope(channel_id: int, payload: Any) -> ParsedWebhook:
    """Walk every entry/change of one webhook body. Raises InvalidWebhook if it is not an object."""
    if not isinstance(payload, dict):
        raise InvalidWebhook("webhook body is not a JSON object")
    parsed = ParsedWebhook()
    if payload.get("object") != OBJECT:
        return parsed
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            if change.get("field") != "messages":
                continue  # user_preferences, templates, account updates: not messages
            value = _dict(change.get("value"))
            names = {
                _str(c.get("wa_id")): _str(_dict(c.get("profile")).get("name"))
                for c in map(_dict, _list(value.get("contacts")))
            }
            for item in _list(value.get("messages")):
                parsed_item = parse_message(channel_id, _dict(item), names)
                if parsed_item is None:
                    parsed.skipped += 1
                else:
                    parsed.messages.append(parsed_item)
            for item in _list(value.get("statuses")):
                update = parse_status(channel_id, _dict(item))
                if update is None:
                    parsed.skipped += 1
                else:
                    parsed.statuses.append(update)
    if parsed.skipped:
        _LOGGER.warning("whatsapp channel %s: skipped %d items without id", channel_id, parsed.skipped)
    return parsed


def parse_message(
    channel_id: int, item: dict[str, Any], names: Mapping[str | None, str | None]
) -> InboundItem | None:
    wamid = _str(item.get("id"))
    sender = _str(item.get("from"))
    if not wamid or not sender:
        return None
    kind = _str(item.get("type")) or "unsupported"
    context_id = _str(_dict(item.get("context")).get("id"))
    text, content_type, media, refs = _content(kind, item)
    if context_id and context_id not in refs:
        refs = (*refs, context_id)
    message = InboundMessage(
        channel_id=channel_id,
        provider_message_id=wamid,
        sender=sender,
        sender_name=names.get(sender),
        text=text,
        content_type=content_type,
        references=refs,
        received_at=_timestamp(item.get("timestamp")),
        raw=item,
    )
    return InboundItem(message, media)


def _content(kind: str, item: dict[str, Any]) -> tuple[str | None, str, MediaRef | None, tuple[str, ...]]:
    """(text, content_type, media to fetch, referenced wamids) for one message item."""
    body = _dict(item.get(kind))
    if kind == "text":
        return _str(body.get("body")), "text", None, ()
    if kind in MEDIA_TYPES:
        media_id = _str(body.get("id"))
        mime = _str(body.get("mime_type")) or "application/octet-stream"
        media = MediaRef(media_id, mime, _str(body.get("filename"))) if media_id else None
        return _str(body.get("caption")), kind, media, ()
    if kind == "interactive":
        # A tap on one of our reply buttons or list rows; the title is what the contact saw.
        sub = _str(body.get("type")) or ""
        reply = _dict(body.get(sub))
        if sub in ("button_reply", "list_reply"):
            return _str(reply.get("title")), "interactive", None, ()
        return None, "unsupported", None, ()
    if kind == "button":
        # A tap on a *template* quick-reply button (e.g. "Stop promotions").
        return _str(body.get("text")) or _str(body.get("payload")), "button", None, ()
    if kind == "reaction":
        target = _str(body.get("message_id"))
        # An empty emoji means the reaction was removed.
        return _str(body.get("emoji")) or "", "reaction", None, (target,) if target else ()
    if kind == "location":
        lat, lon = body.get("latitude"), body.get("longitude")
        label = ", ".join(x for x in (_str(body.get("name")), _str(body.get("address"))) if x)
        where = f"{lat}, {lon}"
        return (f"{label} ({where})" if label else where), "location", None, ()
    if kind == "contacts":
        people = [
            _str(_dict(_dict(c).get("name")).get("formatted_name")) for c in _list(item.get("contacts"))
        ]
        return ", ".join(p for p in people if p) or None, "contacts", None, ()
    return None, "unsupported", None, ()


def parse_status(channel_id: int, item: dict[str, Any]) -> DeliveryUpdate | None:
    wamid = _str(item.get("id"))
    status = STATUSES.get(_str(item.get("status")) or "")
    if not wamid or status is None:
        return None  # "deleted", "warning" and unknown statuses say nothing about delivery
    code: int | None = None
    title: str | None = None
    if status is MessageStatus.FAILED:
        first = _dict(next(iter(_list(item.get("errors"))), None))
        raw_code = first.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        title = _str(first.get("title")) or _str(first.get("message"))
    return DeliveryUpdate(
        channel_id=channel_id,
        provider_message_id=wamid,
        status=status,
        at=_timestamp(item.get("timestamp")),
        error_code=str(code) if code is not None else None,
        error_title=title[:300] if title else None,
        reason=reason_for(code) if status is MessageStatus.FAILED else None,
        raw=item,
    )
