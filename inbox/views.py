"""How records look to clients: the API responses and the live-stream payloads share these models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from inbox import tables as t

SECRET_SUFFIXES = ("secret", "token", "password", "api_key")


class MessageView(BaseModel):
    id: int
    conversation_id: int
    channel_id: int
    kind: str
    origin: str
    text: str | None
    content_type: str
    attachments: list[dict[str, Any]]
    template: dict[str, Any] | None
    status: str
    reason: str | None
    error_detail: str | None
    provider_message_id: str | None
    author_id: int | None
    created_at: datetime
    updated_at: datetime
    # Earlier texts of an edited incoming message, oldest first: {text, replaced_at, provider_message_id}.
    edit_history: list[dict[str, Any]] = []

    @classmethod
    def of(cls, m: t.Message) -> MessageView:
        return cls(
            id=m.id,
            conversation_id=m.conversation_id,
            channel_id=m.channel_id,
            kind=m.kind,
            origin=m.origin,
            text=m.text,
            content_type=m.content_type,
            attachments=list(m.attachments or []),
            template=m.template,
            status=m.status,
            reason=m.reason,
            error_detail=m.error_detail,
            provider_message_id=m.provider_message_id,
            author_id=m.author_id,
            created_at=m.created_at,
            updated_at=m.updated_at,
            edit_history=list((m.raw or {}).get("edit_history") or []) if m.kind == "incoming" else [],
        )


class ConversationView(BaseModel):
    id: int
    inbox_id: int
    channel_id: int
    contact_id: int
    status: str
    assignee_id: int | None
    team_id: int | None
    priority: str
    labels: list[str]
    snoozed_until: datetime | None
    last_inbound_at: datetime | None
    last_activity_at: datetime
    created_at: datetime
    # The contact's answers get the channel's auto-answer (inbox.broadcasts); they are stored all the same.
    replies_disabled: bool = False
    # Kept aside: an inbox where the business opens first got a message from a contact it never wrote to.
    held: bool = False

    @classmethod
    def of(cls, c: t.Conversation, labels: list[str]) -> ConversationView:
        return cls(
            id=c.id,
            inbox_id=c.inbox_id,
            channel_id=c.channel_id,
            contact_id=c.contact_id,
            status=c.status,
            assignee_id=c.assignee_id,
            team_id=c.team_id,
            priority=c.priority,
            labels=sorted(labels),
            snoozed_until=c.snoozed_until,
            last_inbound_at=c.last_inbound_at,
            last_activity_at=c.last_activity_at,
            created_at=c.created_at,
            replies_disabled=bool((c.meta or {}).get("replies_disabled")),
            held=bool((c.meta or {}).get("held")),
        )


class IdentityView(BaseModel):
    kind: str
    address: str


class TagView(BaseModel):
    tag: str
    source: str  # auto (a rule's: not editable) | manual
    created_at: datetime

    @classmethod
    def of(cls, row: t.ContactTag) -> TagView:
        return cls(tag=row.tag, source=row.source, created_at=row.created_at)


class ContactView(BaseModel):
    id: int
    name: str | None
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    labels: list[str]
    identities: list[IdentityView]
    tags: list[TagView] = []
    auto_captured: bool = False  # created by an integration's event: the AUTO label
    over_limit: bool = False  # past the plan's contact limit: business-initiated sends are refused
    created_at: datetime

    @classmethod
    def of(
        cls,
        c: t.Contact,
        identities: list[t.ContactIdentity],
        tags: list[t.ContactTag] | None = None,
        *,
        over_limit: bool = False,
    ) -> ContactView:
        return cls(
            id=c.id,
            name=c.name,
            email=c.email,
            phone=c.phone,
            attributes=dict(c.attributes or {}),
            labels=list(c.labels or []),
            identities=[IdentityView(kind=i.kind, address=i.address) for i in identities],
            tags=[TagView.of(x) for x in tags or []],
            auto_captured=bool(c.auto_captured),
            over_limit=over_limit,
            created_at=c.created_at,
        )


class UserView(BaseModel):
    id: int
    email: str
    name: str
    role: str
    availability: str
    language: str | None  # the user's own choice for the pages; None follows the account's

    @classmethod
    def of(cls, u: t.User) -> UserView:
        return cls(
            id=u.id,
            email=u.email,
            name=u.name,
            role=u.role,
            availability=u.availability,
            language=u.language,
        )


class TeamView(BaseModel):
    id: int
    name: str
    member_ids: list[int]


class InboxView(BaseModel):
    id: int
    name: str
    team_id: int | None
    member_ids: list[int]
    settings: dict[str, Any]


class ChannelView(BaseModel):
    id: int
    inbox_id: int
    kind: str
    name: str
    config: dict[str, Any]

    @classmethod
    def of(cls, c: t.Channel, *, reveal_secrets: bool) -> ChannelView:
        config = dict(c.config or {})
        if not reveal_secrets:
            config = {k: v for k, v in config.items() if not k.lower().endswith(SECRET_SUFFIXES)}
        return cls(id=c.id, inbox_id=c.inbox_id, kind=c.kind, name=c.name, config=config)


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict (datetimes as ISO strings) for events and responses."""
    return model.model_dump(mode="json")
