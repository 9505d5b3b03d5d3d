"""The shared vocabulary: enums, the records that cross the channel boundary, and the adapter port.

Channel adapters import this module and nothing else of the core (import-linter enforces it).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

# WhatsApp's business-scoped user id (``US.13491208655302741918``): a contact who shows a username
# instead of a phone number is known only by it (the channel parses it, the core keys a contact on it).
WHATSAPP_USER_ID = re.compile(r"^[A-Z]{2}\.[0-9A-Za-z]{1,64}$")


class ChannelKind(StrEnum):
    EMAIL = "email"
    WEBCHAT = "webchat"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    LOOPBACK = "loopback"  # the in-memory channel the tests and the demo use


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    BILLING_ADMIN = "billing_admin"
    ADMIN = "admin"
    AGENT = "agent"
    INTEGRATION = "integration"  # a system that posts contact events; sees no inbox


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Priority(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class MessageKind(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    NOTE = "note"
    ACTIVITY = "activity"


class MessageStatus(StrEnum):
    """Delivery state of an outgoing message. Moves forward only; ``failed`` is final."""

    RECEIVED = "received"  # incoming messages, notes and activity lines
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# Order in which provider statuses may advance an outgoing message.
STATUS_RANK: Mapping[MessageStatus, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}


class Reason(StrEnum):
    """Why an outgoing message was refused or failed; the UI shows these in words."""

    NOT_OPTED_IN = "not_opted_in"
    OPTED_OUT = "opted_out"
    WINDOW_CLOSED = "window_closed"
    TEMPLATE_REQUIRED = "template_required"
    QUOTA_EXHAUSTED = "quota_exhausted"
    INVALID_RECIPIENT = "invalid_recipient"
    CHANNEL_ERROR = "channel_error"
    BLOCKED_BY_USER = "blocked_by_user"
    MESSAGE_TOO_LONG = "message_too_long"
    CONTACT_LIMIT = "contact_limit"  # the contact is past the plan's contact limit (inbox.contact_limit)


class Attachment(BaseModel):
    """A file on a message. Inbound adapters fill ``data``; the pipeline stores it and sets ``media_key``."""

    model_config = ConfigDict(frozen=True)

    content_type: str
    filename: str | None = None
    size: int | None = None
    media_key: str | None = None
    url: str | None = None
    data: bytes | None = Field(default=None, exclude=True, repr=False)


class TemplateRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="en_US", min_length=2, max_length=16)
    params: tuple[str, ...] = ()


class InboundMessage(BaseModel):
    """One message a contact sent, as an adapter parsed it."""

    model_config = ConfigDict(frozen=True)

    channel_id: int
    provider_message_id: str
    sender: str  # provider address: phone, email, telegram user id, webchat visitor id
    sender_name: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # Groups, email threads: which conversation inside the channel. None = one per contact.
    thread_key: str | None = None
    # Where replies go when that is not the sender (a group chat). None = the sender.
    reply_address: str | None = None
    # Provider ids of earlier messages this one answers, newest first (email References).
    references: tuple[str, ...] = ()
    received_at: datetime | None = None
    content_type: str = "text"  # text, image, location, interactive, unsupported, ...
    raw: Mapping[str, Any] = Field(default_factory=dict)
    # Email: the subject without reply prefixes. With no other match the pipeline joins the contact's
    # recent conversation with the same subject (the last-resort threading rule).
    subject: str | None = None
    # ``thread_key`` came from a verified reply token: it is looked up before ``references``.
    thread_key_signed: bool = False
    # Why this message must not open a conversation, reopen one or run hooks (bots, routing, consent):
    # auto_reply, bounce, bulk, filtered, spam. It joins a conversation it references, else it is kept
    # in a resolved conversation labelled with the reason (the filtered folder).
    held: str | None = None
    # The provider id of an earlier message this one edits (Telegram edited_message): the pipeline
    # rewrites that message's text and keeps the old text in its edit history.
    edit_of: str | None = None
    # Provider profile details to keep on the contact (e.g. telegram_username); newest wins.
    contact_attributes: Mapping[str, Any] = Field(default_factory=dict)


class DeliveryUpdate(BaseModel):
    """A provider's status callback for a message we sent."""

    model_config = ConfigDict(frozen=True)

    channel_id: int
    provider_message_id: str
    status: MessageStatus
    at: datetime | None = None
    error_code: str | None = None
    error_title: str | None = None
    reason: Reason | None = None  # for ``failed``: the adapter's mapping of error_code
    raw: Mapping[str, Any] = Field(default_factory=dict)


class OutboundMessage(BaseModel):
    """What the outbox hands an adapter: one message to one recipient."""

    model_config = ConfigDict(frozen=True)

    message_id: int
    channel_id: int
    to: str
    text: str | None = None
    template: TemplateRef | None = None
    attachments: tuple[Attachment, ...] = ()
    buttons: tuple[str, ...] = ()
    reply_to_provider_id: str | None = None
    thread_key: str | None = None
    subject: str | None = None
    # Provider ids of the conversation's earlier messages, oldest first (email References).
    references: tuple[str, ...] = ()
    # The replying agent's display name (agent profile), for channels that show a sender (email From).
    sender_name: str | None = None


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider_message_id: str
    status: MessageStatus = MessageStatus.SENT


class ReceiveResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: int
    conversation_id: int
    duplicate: bool


class ChannelError(Exception):
    """Base of the only errors an adapter's ``send`` may raise."""


class TransientChannelError(ChannelError):
    """Try again later (rate limit, 5xx, network). ``retry_after`` in seconds when the provider said."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class PermanentChannelError(ChannelError):
    """The provider refused this message for good. ``reason`` is shown to the agent."""

    def __init__(self, reason: Reason, detail: str, provider_code: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.provider_code = provider_code


class InvalidWebhook(Exception):
    """A webhook that failed verification or could not be parsed; nothing was stored."""


class ChannelInfo(BaseModel):
    """A channel row as adapters see it (they never touch the tables)."""

    model_config = ConfigDict(frozen=True)

    id: int
    account_id: int
    inbox_id: int
    kind: ChannelKind
    name: str
    config: Mapping[str, Any]


class StateStore(Protocol):
    """Small durable state for an adapter (polling offsets, IMAP UIDs), kept in the database."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, value: dict[str, Any]) -> None: ...


class MediaSink(Protocol):
    """Stores fetched media content-addressed; returns the key to put on ``Attachment.media_key``."""

    async def put(self, data: bytes) -> str: ...


InboundSink = Callable[[InboundMessage], Awaitable[ReceiveResult]]
StatusSink = Callable[[DeliveryUpdate], Awaitable[bool]]


class ChannelAdapter(Protocol):
    """The port every channel implements (DESIGN.md §5). No I/O in the constructor."""

    kind: ChannelKind

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        """Begin receiving (pollers, webhook registration). Called once at gateway start-up."""

    async def stop(self) -> None:
        """Stop receiving and close connections."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message; raise only TransientChannelError or PermanentChannelError."""
        ...
