"""Webhook payloads → ``InboundMessage`` / ``DeliveryUpdate``. Pure: no I/O (media is fetched later).

One POST may carry several ``entry``, ``changes``, ``messages`` and ``statuses``; every one is walked.
Unknown message types become ``content_type="unsupported"`` with the raw item kept, never dropped.
Unknown fields are ignored. protocols.md §1. Edits and revokes rewrite the original message (``edit_of``);
a changed or withdrawn reaction rewrites the contact's earlier reaction to the same message. A sender
known only by a business-scoped user id (``from_user_id``, ``contacts[].user_id``) is addressed by it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.whatsapp.errors import reason_for
from inbox.model import WHATSAPP_USER_ID, DeliveryUpdate, InboundMessage, InvalidWebhook, MessageStatus

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
    foreign: int = 0  # items of a change addressed to another phone number id, logged


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


def parse_envelope(channel_id: int, payload: Any, phone_number_id: str | None = None) -> ParsedWebhook:
    """Walk every entry/change of one webhook body. Raises InvalidWebhook if it is not an object.

    A change whose ``metadata.phone_number_id`` names another number than ``phone_number_id`` is not
    this channel's: it is logged and left out (``foreign``).
    """
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
            addressed_to = _str(_dict(value.get("metadata")).get("phone_number_id"))
            if phone_number_id and addressed_to and addressed_to != phone_number_id:
                parsed.foreign += len(_list(value.get("messages"))) + len(_list(value.get("statuses")))
                continue
            profiles = [_Profile.of(_dict(c)) for c in _list(value.get("contacts"))]
            for item in _list(value.get("messages")):
                parsed_item = parse_message(channel_id, _dict(item), profiles)
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
    if parsed.foreign:
        _LOGGER.warning(
            "whatsapp channel %s: %d items addressed to another phone_number_id left out",
            channel_id,
            parsed.foreign,
        )
    return parsed


@dataclass(frozen=True)
class _Profile:
    """One ``contacts[]`` entry: who sent the messages of this change."""

    wa_id: str | None
    user_id: str | None
    name: str | None
    username: str | None

    @classmethod
    def of(cls, c: dict[str, Any]) -> _Profile:
        profile = _dict(c.get("profile"))
        return cls(
            _str(c.get("wa_id")),
            _str(c.get("user_id")),
            _str(profile.get("name")),
            _str(profile.get("username")),
        )

    def matches(self, phone: str | None, user_id: str | None) -> bool:
        return (phone is not None and phone == self.wa_id) or (
            user_id is not None and user_id == self.user_id
        )


def parse_message(channel_id: int, item: dict[str, Any], profiles: list[_Profile]) -> InboundItem | None:
    wamid = _str(item.get("id"))
    phone = _str(item.get("from"))
    user_id = _str(item.get("from_user_id"))
    profile = next((p for p in profiles if p.matches(phone, user_id)), None)
    if user_id is None and profile is not None:
        user_id = profile.user_id
    if user_id is not None and not WHATSAPP_USER_ID.match(user_id):
        user_id = None
    sender = phone or user_id
    if not wamid or not sender:
        return None
    kind = _str(item.get("type")) or "unsupported"
    edit_of: str | None = None
    content_item = item
    if kind == "edit":
        # The new content is a whole message inside; the original keeps its place in the thread.
        edit = _dict(item.get("edit"))
        edit_of = _str(edit.get("original_message_id"))
        content_item = _dict(edit.get("message"))
        kind = _str(content_item.get("type")) or "unsupported"
    context_id = _str(_dict(item.get("context")).get("id"))
    text, content_type, media, refs = _content(kind, content_item)
    if kind == "revoke":
        edit_of = _str(_dict(item.get("revoke")).get("original_message_id"))
        if edit_of:  # without the original's id there is nothing to delete: kept as unsupported
            content_type = "deleted"
    if kind == "reaction" and refs and edit_of is None:
        # One reaction per contact and message: a new emoji replaces it, an empty one withdraws it.
        edit_of = f"reaction:{sender}:{refs[0]}"
        if not text:
            text, content_type = None, "deleted"
    if context_id and context_id not in refs:
        refs = (*refs, context_id)
    message = InboundMessage(
        channel_id=channel_id,
        provider_message_id=wamid,
        sender=sender,
        sender_name=profile.name if profile else None,
        text=text,
        content_type=content_type,
        references=refs,
        received_at=_timestamp(item.get("timestamp")),
        raw=item,
        edit_of=edit_of if edit_of and edit_of != wamid else None,
        contact_attributes=_contact_attributes(phone, user_id, profile, item),
    )
    return InboundItem(message, media)


def _contact_attributes(
    phone: str | None, user_id: str | None, profile: _Profile | None, item: dict[str, Any]
) -> dict[str, Any]:
    """What to keep on the contact: its business-scoped id, username, the ad that brought it."""
    attributes: dict[str, Any] = {}
    if user_id and phone:
        attributes["whatsapp_user_id"] = user_id
    if profile is not None and profile.username:
        attributes["whatsapp_username"] = profile.username
    referral = _dict(item.get("referral"))
    for key, name in (
        ("headline", "ad_headline"),
        ("source_type", "ad_source_type"),
        ("source_id", "ad_source_id"),
        ("source_url", "ad_source_url"),
        ("ctwa_clid", "ad_click_id"),
    ):
        value = _str(referral.get(key))
        if value:
            attributes[name] = value[:500]
    return attributes


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
        if sub == "nfm_reply":
            return _flow_answers(reply), "flow_reply", None, ()
        if sub == "call_permission_reply":
            answer = _str(reply.get("response")) or "unknown"
            return f"Call permission: {answer}", "call_permission", None, ()
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
        cards = [_contact_card(_dict(c)) for c in _list(item.get("contacts"))]
        return "\n".join(c for c in cards if c) or None, "contacts", None, ()
    if kind == "order":
        return _order(body), "order", None, ()
    if kind == "system":
        # A number change or a security-code change: shown in the thread as a notice.
        return _str(body.get("body")) or _str(body.get("type")), "system", None, ()
    return None, "unsupported", None, ()


def _contact_card(card: dict[str, Any]) -> str | None:
    """``Ana Souza: +55 11 98765-4321, ana@example.com`` for one shared contact card."""
    name = _str(_dict(card.get("name")).get("formatted_name"))
    phones = [_str(p.get("phone")) or _str(p.get("wa_id")) for p in map(_dict, _list(card.get("phones")))]
    emails = [_str(e.get("email")) for e in map(_dict, _list(card.get("emails")))]
    details = ", ".join(x for x in (*phones, *emails) if x)
    if name and details:
        return f"{name}: {details}"
    return name or details or None


def _order(body: dict[str, Any]) -> str:
    """One line per catalog item (quantity, product id, price) and the contact's note."""
    lines = []
    for product in map(_dict, _list(body.get("product_items"))):
        quantity = _str(product.get("quantity")) or "1"
        sku = _str(product.get("product_retailer_id")) or "?"
        raw_price = product.get("item_price")  # a number in Meta's examples, a string in some SDKs
        price = str(raw_price) if isinstance(raw_price, float) else _str(raw_price)
        currency = _str(product.get("currency")) or ""
        cost = f" at {price} {currency}".rstrip() if price else ""
        lines.append(f"{quantity} x {sku}{cost}")
    note = _str(body.get("text"))
    if note:
        lines.append(note)
    return "\n".join(lines) or "Order"


def _flow_answers(reply: dict[str, Any]) -> str:
    """A WhatsApp Flow's answers (``response_json``, a JSON string) as ``field: value`` lines."""
    try:
        answers = json.loads(_str(reply.get("response_json")) or "{}")
    except ValueError:
        answers = {}
    lines = [
        f"{key}: {value}"
        for key, value in (answers.items() if isinstance(answers, dict) else ())
        if key != "flow_token"  # ours, not the contact's
    ]
    return "\n".join(lines) or _str(reply.get("body")) or "Form sent"


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
