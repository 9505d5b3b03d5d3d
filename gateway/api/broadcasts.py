"""Broadcasts: one business-initiated message to many contacts, each in its own conversation.

``POST /broadcasts`` takes literal ``recipients`` (up to 1,000, sent before the response, which lists
each one's outcome) or an audience (``audience_id`` or an inline ``audience`` filter, admins only,
listed and sent in the background by inbox.broadcasts.BroadcastRunner, progress on the stream as
``broadcast.updated``). Either way each recipient passes the outbox gate on its own (consent, the
24-hour window, the quota) and the broadcast is a stored object with its recipients' outcomes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.audiences import audience_in_body
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import TemplateBody, channel_in_body, template_ref
from gateway.api.errors import ApiError, field_error, forbidden, not_found
from gateway.api.spec import ApiRoutes, Page
from gateway.api.uploads import MAX_FILES, reply_attachments
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.audiences import AudienceError, AudienceFilter, audience_condition
from inbox.broadcasts import (
    PersonalizationError,
    Recipient,
    cancel,
    check_personalization,
    create,
    set_allow_replies,
    stats,
)
from inbox.contacts import resolve_contact
from inbox.identities import InvalidAddress, normalize_address
from inbox.queries import list_by_id
from inbox.views import MessageView

api = ApiRoutes()

MAX_RECIPIENTS = 1000


class BroadcastBody(BaseModel):
    channel_id: int
    title: str | None = Field(default=None, max_length=200)
    recipients: list[str] | None = Field(default=None, min_length=1, max_length=MAX_RECIPIENTS)
    audience_id: int | None = None
    audience: AudienceFilter | None = None
    template: TemplateBody | None = None
    text: str | None = Field(default=None, max_length=65536)
    attachments: list[int] = Field(default_factory=list, max_length=MAX_FILES, description="upload ids")
    allow_replies: bool = True

    @model_validator(mode="after")
    def _one(self) -> BroadcastBody:
        if self.template is None and not (self.text and self.text.strip()) and not self.attachments:
            raise ValueError("give text, a template or attachments")
        if self.template is not None and self.attachments:
            raise ValueError("a template cannot carry attachments")
        given = [x is not None for x in (self.recipients, self.audience_id, self.audience)]
        if sum(given) != 1:
            raise ValueError("give exactly one of recipients, audience_id, audience")
        return self


class BroadcastItem(BaseModel):
    """One recipient's outcome: its message, ``queued`` or ``failed`` with the gate's reason."""

    to: str
    message: MessageView


class Progress(BaseModel):
    """Recipients by how far they got: ``sent`` counts those delivered and read too."""

    pending: int
    queued: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    canceled: int
    failed_by_reason: dict[str, int]


class BroadcastView(BaseModel):
    id: int
    title: str
    channel_id: int
    status: str = Field(description="expanding, sending, done or canceled")
    allow_replies: bool
    text: str | None
    template: dict[str, Any] | None
    attachments: list[dict[str, Any]]
    audience: AudienceFilter | None
    audience_id: int | None
    total: int
    queued: int = Field(description="recipients the gate accepted so far")
    failed: int = Field(description="recipients the gate refused so far (see progress.failed_by_reason)")
    created_at: datetime
    finished_at: datetime | None
    progress: Progress
    # Literal recipients only, in the order given: each one's message as stored.
    items: list[BroadcastItem] | None = None


class BroadcastListItem(BaseModel):
    id: int
    title: str
    channel_id: int
    status: str
    allow_replies: bool
    total: int
    queued: int
    failed: int
    canceled: int
    created_at: datetime
    finished_at: datetime | None


async def _view(
    session: AsyncSession, b: t.Broadcast, items: list[BroadcastItem] | None = None
) -> BroadcastView:
    s = await stats(session, b)
    return BroadcastView(
        id=b.id,
        title=b.title,
        channel_id=b.channel_id,
        status=b.status,
        allow_replies=b.allow_replies,
        text=b.text,
        template=b.template,
        attachments=b.attachments or [],
        audience=AudienceFilter.model_validate(b.audience) if b.audience is not None else None,
        audience_id=b.audience_id,
        total=b.total,
        queued=b.queued,
        failed=b.failed,
        created_at=b.created_at,
        finished_at=b.finished_at,
        progress=Progress(
            pending=s.pending,
            queued=s.queued,
            sent=s.sent,
            delivered=s.delivered,
            read=s.read,
            replied=s.replied,
            failed=s.failed,
            canceled=s.canceled,
            failed_by_reason=s.failed_by_reason,
        ),
        items=items,
    )


def _addresses(kind: str, recipients: list[str]) -> list[str]:
    """Normalized addresses, in order; 422 naming every recipient that is invalid or repeated."""
    problems: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    addresses: list[str] = []
    for index, raw in enumerate(recipients):
        field = f"recipients[{index}]"
        try:
            address = normalize_address(kind, raw)
        except InvalidAddress as exc:
            problems.append({"field": field, "problem": str(exc)})
            continue
        if address in seen:
            problems.append({"field": field, "problem": f"same address as recipients[{seen[address]}]"})
            continue
        seen[address] = index
        addresses.append(address)
    if problems:
        named = ", ".join(p["field"] for p in problems[:10]) + (" ..." if len(problems) > 10 else "")
        raise ApiError(
            422, "invalid_recipient", f"{len(problems)} recipient(s) cannot be sent to: {named}", problems
        )
    return addresses


def _personalization_error(exc: PersonalizationError) -> ApiError:
    details = [
        {"field": f"{{{{{key}}}}}", "problem": f"no value for {n} contact(s)", "contact_ids": ids}
        for key, (n, ids) in exc.missing.items()
    ]
    return ApiError(422, "missing_parameter", str(exc), details)


@api.route(
    "POST",
    "/broadcasts",
    summary="One message to many contacts (addresses or an audience), each in its own conversation",
    body=BroadcastBody,
    response=BroadcastView,
    status=201,
)
async def post_broadcast(request: web.Request, body: BroadcastBody) -> BroadcastView:
    user = user_of(request)
    c = container_of(request)
    template = template_ref(body.template)
    params = list(body.template.params) if body.template else []
    async with c.db.write() as session:
        now = c.clock()
        channel = await channel_in_body(session, user, body.channel_id)
        attachments = await reply_attachments(session, user, channel, body.attachments)
        title = body.title or (body.text or (template.name if template else ""))[:80]
        if body.recipients is not None:
            addresses = _addresses(channel.kind, body.recipients)
            contacts = [
                await resolve_contact(session, channel.account_id, channel.kind, a, None, now)
                for a in addresses
            ]
            first: dict[int, int] = {}
            for index, contact in enumerate(contacts):
                if contact.id in first:
                    raise field_error(
                        f"recipients[{index}]", f"the same contact as recipients[{first[contact.id]}]"
                    )
                first[contact.id] = index
            where: ColumnElement[bool] = t.Contact.id.in_(list(first))
            audience = None
            recipients = [Recipient(x.id, a) for x, a in zip(contacts, addresses, strict=True)]
        else:
            if not is_admin(user):
                raise forbidden(
                    "a broadcast to an audience reaches every contact of the account: admins only"
                )
            audience = body.audience or await audience_in_body(session, user, body.audience_id or 0)
            try:
                where = audience_condition(user.account_id, audience, now)
            except AudienceError as exc:
                raise field_error("audience", str(exc)) from None
            if not await session.scalar(select(func.count()).select_from(t.Contact).where(where)):
                raise field_error("audience", "the audience is empty: nobody would receive this broadcast")
            recipients = []
        try:
            await check_personalization(session, where, body.text, *params)
        except PersonalizationError as exc:
            raise _personalization_error(exc) from None
        broadcast = await create(
            session,
            channel=channel,
            title=title or "Broadcast",
            text=body.text,
            template=template,
            allow_replies=body.allow_replies,
            now=now,
            author_id=user.id,
            attachments=attachments,
            audience=audience,
            audience_id=body.audience_id,
            recipients=recipients,
        )
        broadcast_id = broadcast.id
    if body.recipients is None:
        await c.broadcasts.start(broadcast_id)
        async with c.db.read() as session:
            found = await session.get(t.Broadcast, broadcast_id)
            assert found is not None
            return await _view(session, found)
    # A short list is sent before answering, so the response can list every recipient's outcome.
    while await c.broadcasts.step(broadcast_id):
        pass
    async with c.db.read() as session:
        found = await session.get(t.Broadcast, broadcast_id)
        assert found is not None
        rows = await session.execute(
            select(t.BroadcastRecipient.contact_id, t.Message)
            .join(t.Message, t.Message.id == t.BroadcastRecipient.message_id)
            .where(t.BroadcastRecipient.broadcast_id == broadcast_id)
        )
        by_contact = {contact_id: MessageView.of(m) for contact_id, m in rows}
        items = [BroadcastItem(to=r.address, message=by_contact[r.contact_id]) for r in recipients]
        return await _view(session, found, items)


async def _visible_broadcast(session: AsyncSession, user: t.User, broadcast_id: int) -> t.Broadcast:
    b = await session.get(t.Broadcast, broadcast_id)
    if b is None or b.account_id != user.account_id:
        raise not_found("broadcast", broadcast_id)
    if not is_admin(user):
        channel = await session.get(t.Channel, b.channel_id)
        if channel is None or channel.inbox_id not in await visible_inbox_ids(session, user):
            raise not_found("broadcast", broadcast_id)
    return b


class BroadcastQuery(BaseModel):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


@api.route(
    "GET",
    "/broadcasts",
    summary="Broadcasts, oldest first",
    query=BroadcastQuery,
    response=Page[BroadcastListItem],
)
async def list_broadcasts(request: web.Request, query: BroadcastQuery) -> Page[BroadcastListItem]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        stmt = select(t.Broadcast).where(t.Broadcast.account_id == user.account_id)
        if not is_admin(user):
            channels = select(t.Channel.id).where(
                t.Channel.inbox_id.in_(await visible_inbox_ids(session, user))
            )
            stmt = stmt.where(t.Broadcast.channel_id.in_(channels))
        rows, cursor = await list_by_id(session, stmt, t.Broadcast.id, query.limit, query.cursor)
        items = [
            BroadcastListItem(
                id=b.id,
                title=b.title,
                channel_id=b.channel_id,
                status=b.status,
                allow_replies=b.allow_replies,
                total=b.total,
                queued=b.queued,
                failed=b.failed,
                canceled=b.canceled,
                created_at=b.created_at,
                finished_at=b.finished_at,
            )
            for b in rows
        ]
        return Page[BroadcastListItem](items=items, next_cursor=cursor)


@api.route("GET", "/broadcasts/{id}", summary="One broadcast with its progress", response=BroadcastView)
async def get_broadcast(request: web.Request) -> BroadcastView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        return await _view(session, await _visible_broadcast(session, user, path_id(request)))


class RecipientView(BaseModel):
    contact_id: int
    name: str | None
    address: str
    outcome: str = Field(description="pending, queued, failed or canceled")
    reason: str | None
    conversation_id: int | None
    message_id: int | None
    message_status: str | None


class RecipientQuery(BaseModel):
    outcome: str | None = None
    after: int | None = None
    limit: int = Field(default=100, ge=1, le=500)


class RecipientPage(BaseModel):
    items: list[RecipientView]
    next_after: int | None


@api.route(
    "GET",
    "/broadcasts/{id}/recipients",
    summary="A broadcast's recipients with their outcomes",
    query=RecipientQuery,
    response=RecipientPage,
)
async def list_recipients(request: web.Request, query: RecipientQuery) -> RecipientPage:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        b = await _visible_broadcast(session, user, path_id(request))
        r = t.BroadcastRecipient
        stmt = (
            select(r, t.Contact.name, t.Message.status, t.Message.reason)
            .join(t.Contact, t.Contact.id == r.contact_id)
            .outerjoin(t.Message, t.Message.id == r.message_id)
            .where(r.broadcast_id == b.id)
            .order_by(r.contact_id)
            .limit(query.limit + 1)
        )
        if query.outcome:
            stmt = stmt.where(r.outcome == query.outcome)
        if query.after is not None:
            stmt = stmt.where(r.contact_id > query.after)
        rows = list(await session.execute(stmt))
    more = len(rows) > query.limit
    items = [
        RecipientView(
            contact_id=rec.contact_id,
            name=name,
            address=rec.address,
            outcome="failed" if status == "failed" else rec.outcome,
            reason=reason or rec.reason,
            conversation_id=rec.conversation_id,
            message_id=rec.message_id,
            message_status=status,
        )
        for rec, name, status, reason in rows[: query.limit]
    ]
    return RecipientPage(items=items, next_after=items[-1].contact_id if more else None)


class BroadcastPatch(BaseModel):
    allow_replies: bool | None = None
    status: str | None = Field(default=None, description='"canceled" stops what is not yet sent')


@api.route(
    "PATCH",
    "/broadcasts/{id}",
    summary="Allow or disable replies, or cancel the rest",
    body=BroadcastPatch,
    response=BroadcastView,
)
async def patch_broadcast(request: web.Request, body: BroadcastPatch) -> BroadcastView:
    user = user_of(request)
    c = container_of(request)
    if body.status is not None and body.status != "canceled":
        raise field_error("status", 'only "canceled" can be set')
    async with c.db.write() as session:
        now = c.clock()
        b = await _visible_broadcast(session, user, path_id(request))
        await session.refresh(b, with_for_update=True)
        if body.status == "canceled" and not await cancel(session, b, now):
            raise ApiError(409, "conflict", f"broadcast {b.id} has already ended ({b.status})")
        if body.allow_replies is not None and body.allow_replies != b.allow_replies:
            await set_allow_replies(session, b, body.allow_replies, now)
        await session.flush()
        return await _view(session, b)
