"""Conversations, their messages, replies and notes, and business-initiated sends."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import container_of, path_id, user_of
from gateway.api.errors import ApiError, field_error, not_found
from gateway.api.spec import ApiRoutes, Page
from gateway.api.uploads import MAX_FILES, reply_attachments
from inbox import tables as t
from inbox.access import can_see_inbox, is_admin, visible_inbox_ids
from inbox.contacts import resolve_contact
from inbox.conversations import ConversationPatch, apply_patch, find_or_open_conversation
from inbox.identities import InvalidAddress, normalize_address
from inbox.inbound import conversation_labels
from inbox.model import ChannelKind, ConversationStatus, Priority, TemplateRef
from inbox.notifications import mentioned_users
from inbox.outbox import Draft, DraftError
from inbox.queries import ConversationFilter, conversation_page, list_by_id
from inbox.views import ConversationView, MessageView
from inbox.worklist import ConversationListItem, enrich, list_items

api = ApiRoutes()


class ConversationQuery(BaseModel):
    inbox_id: int | None = None
    status: ConversationStatus | None = None
    assignee_id: int | Literal["me", "none"] | None = None
    team_id: int | None = None
    label: str | None = Field(default=None, max_length=64)
    q: str | None = Field(default=None, max_length=200)
    priority: Priority | None = None
    channel_kind: ChannelKind | None = None
    cursor: str | None = None
    limit: int = Field(default=25, ge=1, le=100)


async def visible_conversation(session: AsyncSession, user: t.User, conversation_id: int) -> t.Conversation:
    """The conversation if the user may see it; 404 otherwise (we do not confirm it exists)."""
    conversation = await session.get(t.Conversation, conversation_id)
    if (
        conversation is None
        or conversation.account_id != user.account_id
        or not await can_see_inbox(session, user, conversation.inbox_id)
        or ((conversation.meta or {}).get("held") and not is_admin(user))
    ):
        raise not_found("conversation", conversation_id)
    return conversation


async def visible_channel(session: AsyncSession, user: t.User, channel_id: int) -> t.Channel:
    """The channel if it belongs to an inbox the user may see; 404 otherwise."""
    channel = await session.get(t.Channel, channel_id)
    if (
        channel is None
        or channel.account_id != user.account_id
        or not await can_see_inbox(session, user, channel.inbox_id)
    ):
        raise not_found("channel", channel_id)
    return channel


async def channel_in_body(session: AsyncSession, user: t.User, channel_id: int) -> t.Channel:
    """Like ``visible_channel`` for a ``channel_id`` given in a request body: 422 naming the field."""
    try:
        return await visible_channel(session, user, channel_id)
    except ApiError:
        raise ApiError(
            422,
            "validation_error",
            f"channel_id: channel {channel_id} does not exist",
            [{"field": "channel_id", "problem": "unknown"}],
        ) from None


@api.route(
    "GET",
    "/conversations",
    summary="Conversations, newest activity first",
    query=ConversationQuery,
    response=Page[ConversationListItem],
)
async def list_conversations_(request: web.Request, query: ConversationQuery) -> Page[ConversationListItem]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        inbox_ids = await visible_inbox_ids(session, user)
        if query.inbox_id is not None:
            inbox_ids &= {query.inbox_id}
        f = ConversationFilter(
            inbox_ids=inbox_ids,
            status=query.status,
            assignee_id=user.id
            if query.assignee_id == "me"
            else (query.assignee_id if isinstance(query.assignee_id, int) else None),
            unassigned=query.assignee_id == "none",
            team_id=query.team_id,
            label=query.label,
            q=query.q,
            priority=query.priority,
            channel_kind=query.channel_kind,
            hide_held=not is_admin(user),
        )
        ids, cursor = await conversation_page(session, f, query.limit, query.cursor)
        return Page[ConversationListItem](items=await list_items(session, user.id, ids), next_cursor=cursor)


@api.route("GET", "/conversations/{id}", summary="One conversation", response=ConversationListItem)
async def get_conversation(request: web.Request) -> ConversationListItem:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        conversation = await visible_conversation(session, user, path_id(request))
        labels = {conversation.id: await conversation_labels(session, conversation.id)}
        (item,) = await enrich(session, user.id, [conversation], labels)
        return item


class ConversationPatchBody(BaseModel):
    status: ConversationStatus | None = None
    snoozed_until: datetime | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    priority: Priority | None = None
    labels: list[str] | None = Field(default=None, max_length=50)
    replies_disabled: bool | None = Field(
        default=None, description="the contact's answers get the channel's auto-answer (stored all the same)"
    )

    @model_validator(mode="after")
    def _snooze(self) -> ConversationPatchBody:
        if self.snoozed_until is not None and self.status != ConversationStatus.SNOOZED:
            raise ValueError("snoozed_until needs status 'snoozed'")
        if self.snoozed_until is not None and self.snoozed_until.tzinfo is None:
            raise ValueError("snoozed_until needs a time zone (e.g. 2026-01-01T09:00:00Z)")
        return self


@api.route(
    "PATCH",
    "/conversations/{id}",
    summary="Change status, assignee, team, priority, labels",
    body=ConversationPatchBody,
    response=ConversationView,
)
async def patch_conversation(request: web.Request, body: ConversationPatchBody) -> ConversationView:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        conversation = await visible_conversation(session, user, path_id(request))
        patch = ConversationPatch(
            status=body.status,
            snoozed_until=body.snoozed_until,
            priority=body.priority,
            labels=body.labels,
            replies_disabled=body.replies_disabled,
        )
        if "assignee_id" in body.model_fields_set:
            if body.assignee_id is not None:
                assignee = await session.get(t.User, body.assignee_id)
                if assignee is None or assignee.account_id != user.account_id:
                    raise ApiError(
                        422,
                        "validation_error",
                        f"assignee_id: user {body.assignee_id} does not exist",
                        [{"field": "assignee_id", "problem": "unknown"}],
                    )
                if not await can_see_inbox(session, assignee, conversation.inbox_id):
                    raise ApiError(
                        422,
                        "validation_error",
                        f"assignee_id: {assignee.name} is not a member of this inbox",
                        [{"field": "assignee_id", "problem": "not an inbox member"}],
                    )
            patch.assignee_id = body.assignee_id
        if "team_id" in body.model_fields_set:
            if body.team_id is not None:
                team = await session.get(t.Team, body.team_id)
                if team is None or team.account_id != user.account_id:
                    raise ApiError(
                        422,
                        "validation_error",
                        f"team_id: team {body.team_id} does not exist",
                        [{"field": "team_id", "problem": "unknown"}],
                    )
            patch.team_id = body.team_id
        return await apply_patch(
            session, conversation, patch, actor=user.name, actor_id=user.id, now=c.clock()
        )


class MessageQuery(BaseModel):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


@api.route(
    "GET",
    "/conversations/{id}/messages",
    summary="Messages, oldest first",
    query=MessageQuery,
    response=Page[MessageView],
)
async def list_messages(request: web.Request, query: MessageQuery) -> Page[MessageView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        conversation = await visible_conversation(session, user, path_id(request))
        rows, cursor = await list_by_id(
            session,
            select(t.Message).where(t.Message.conversation_id == conversation.id),
            t.Message.id,
            query.limit,
            query.cursor,
        )
        return Page[MessageView](items=[MessageView.of(m) for m in rows], next_cursor=cursor)


class TemplateBody(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="en_US", min_length=2, max_length=16)
    params: list[str] = Field(default_factory=list, max_length=20)


class ReplyBody(BaseModel):
    text: str | None = Field(default=None, max_length=65536)
    template: TemplateBody | None = None
    private: bool = False
    # Ids from POST /uploads, sent in this order (the text is the caption where the channel has one).
    attachments: list[int] = Field(default_factory=list, max_length=MAX_FILES)

    @model_validator(mode="after")
    def _one(self) -> ReplyBody:
        if self.template is None and not (self.text and self.text.strip()) and not self.attachments:
            raise ValueError("give text, a template or attachments")
        if self.template is not None and self.attachments:
            raise ValueError("a template cannot carry attachments")
        if self.template is not None and self.private:
            raise ValueError("a private note cannot be a template")
        return self


def template_ref(body: TemplateBody | None) -> TemplateRef | None:
    if body is None:
        return None
    return TemplateRef(name=body.name, language=body.language, params=tuple(body.params))


@api.route(
    "POST",
    "/conversations/{id}/messages",
    summary="Reply (text, uploaded files or a template) or add a private note; refused sends come back "
    "failed with a reason",
    body=ReplyBody,
    response=MessageView,
    status=201,
)
async def post_message(request: web.Request, body: ReplyBody) -> MessageView:
    user = user_of(request)
    c = container_of(request)
    conversation_id = path_id(request)
    async with c.db.read() as session:
        conversation = await visible_conversation(session, user, conversation_id)
        if body.private:  # a note's @name must be someone who can see the conversation
            for mentioned in await mentioned_users(session, user.account_id, body.text):
                if not await can_see_inbox(session, mentioned, conversation.inbox_id):
                    raise field_error("text", f"{mentioned.name} is mentioned but is not in this inbox")
        channel = None if body.private else await session.get(t.Channel, conversation.channel_id)
        attachments = await reply_attachments(session, user, channel, body.attachments)
    draft = Draft(
        conversation_id=conversation_id,
        text=body.text,
        template=template_ref(body.template),
        attachments=attachments,
        private=body.private,
        author_id=user.id,
        origin="agent",
    )
    try:
        return await c.outbox.submit(draft)
    except DraftError as exc:
        raise ApiError(422, "validation_error", str(exc)) from exc


class SendBody(BaseModel):
    channel_id: int
    to: str = Field(min_length=1, max_length=320)
    text: str | None = Field(default=None, max_length=65536)
    template: TemplateBody | None = None

    @model_validator(mode="after")
    def _one(self) -> SendBody:
        if self.template is None and not (self.text and self.text.strip()):
            raise ValueError("give text or a template")
        return self


@api.route(
    "POST",
    "/messages",
    summary="Business-initiated send to an address on a channel",
    body=SendBody,
    response=MessageView,
    status=201,
)
async def send_message(request: web.Request, body: SendBody) -> MessageView:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        channel = await channel_in_body(session, user, body.channel_id)
        try:
            address = normalize_address(channel.kind, body.to)
        except InvalidAddress as exc:
            raise ApiError(
                422, "invalid_recipient", f"to: {exc}", [{"field": "to", "problem": str(exc)}]
            ) from exc
        now = c.clock()
        contact = await resolve_contact(session, channel.account_id, channel.kind, address, None, now)
        conversation, _ = await find_or_open_conversation(session, channel, contact.id, address, now)
        draft = Draft(
            conversation_id=conversation.id,
            text=body.text,
            template=template_ref(body.template),
            author_id=user.id,
            origin="api",
            business_initiated=True,
        )
        view = await c.outbox.submit(draft, session=session)
    await c.outbox.enqueue_if_queued(view)
    return view
