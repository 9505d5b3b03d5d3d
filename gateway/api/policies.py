"""Consent, message templates, the quota and billing (DESIGN.md §3 over REST)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.contacts import visible_contact
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import channel_in_body, visible_channel
from gateway.api.errors import ApiError, forbidden, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import can_manage_billing, can_see_inbox, is_admin
from inbox.consent import (
    DEFAULT_KEYWORDS,
    ConsentSource,
    ConsentStatus,
    Keyword,
    consent_of,
    has_written_on,
    opt_in_link,
    set_consent,
)
from inbox.queries import list_by_id
from inbox.quota import QuotaStatus, add_packs, banner_level, cancel_packs, quota_status
from inbox.windows import TemplateCategory, TemplateStatus, period_of, template_param_count

api = ApiRoutes()


# -- consent -------------------------------------------------------------------------------------------


class ConsentChangeView(BaseModel):
    previous: str
    state: str
    source: str
    evidence: str | None
    at: datetime


class ChannelConsentView(BaseModel):
    channel_id: int
    channel_name: str
    kind: str
    state: ConsentStatus
    history: list[ConsentChangeView]


class ContactConsentView(BaseModel):
    contact_id: int
    channels: list[ChannelConsentView]


async def consent_view(session: AsyncSession, user: t.User, contact_id: int) -> ContactConsentView:
    """Every channel the contact wrote on or has a consent record for, with the full history."""
    channel_ids = set(
        await session.scalars(
            select(t.Conversation.channel_id).where(t.Conversation.contact_id == contact_id)
        )
    ) | set(
        await session.scalars(
            select(t.ConsentState.channel_id).where(t.ConsentState.contact_id == contact_id)
        )
    )
    items: list[ChannelConsentView] = []
    for channel_id in sorted(channel_ids):
        channel = await session.get(t.Channel, channel_id)
        if channel is None or not await can_see_inbox(session, user, channel.inbox_id):
            continue
        history = await session.scalars(
            select(t.ConsentChange)
            .where(t.ConsentChange.contact_id == contact_id, t.ConsentChange.channel_id == channel_id)
            .order_by(t.ConsentChange.id)
        )
        items.append(
            ChannelConsentView(
                channel_id=channel.id,
                channel_name=channel.name,
                kind=channel.kind,
                state=await consent_of(session, contact_id, channel_id),
                history=[
                    ConsentChangeView(
                        previous=h.previous,
                        state=h.state,
                        source=h.source,
                        evidence=h.evidence,
                        at=h.created_at,
                    )
                    for h in history
                ],
            )
        )
    return ContactConsentView(contact_id=contact_id, channels=items)


@api.route(
    "GET",
    "/contacts/{id}/consent",
    summary="A contact's consent per channel with its history",
    response=ContactConsentView,
)
async def get_consent(request: web.Request) -> ContactConsentView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        return await consent_view(session, user, contact.id)


class ConsentBody(BaseModel):
    channel_id: int
    state: Literal["opted_in", "opted_out"]


@api.route(
    "POST",
    "/contacts/{id}/consent",
    summary="Opt a contact in (only after they wrote on that channel; else 409 no_prior_contact) or out",
    body=ConsentBody,
    response=ContactConsentView,
)
async def post_consent(request: web.Request, body: ConsentBody) -> ContactConsentView:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        contact = await visible_contact(session, user, path_id(request))
        channel = await channel_in_body(session, user, body.channel_id)
        state = ConsentStatus(body.state)
        if state == ConsentStatus.OPTED_IN and not await has_written_on(session, contact.id, channel.id):
            raise ApiError(
                409,
                "no_prior_contact",
                "a contact can be opted in by hand only after they wrote on this channel; "
                "send them the opt-in link instead",
            )
        await set_consent(
            session,
            account_id=user.account_id,
            contact_id=contact.id,
            channel_id=channel.id,
            state=state,
            source=ConsentSource.AGENT,
            evidence=f"user:{user.id}",
            now=c.clock(),
        )
        return await consent_view(session, user, contact.id)


class OptInLinkView(BaseModel):
    channel_id: int
    keyword: str
    url: str | None


@api.route(
    "GET",
    "/channels/{id}/opt-in-link",
    summary="A click-to-chat link with the opt-in keyword pre-filled (wa.me for WhatsApp)",
    response=OptInLinkView,
)
async def get_opt_in_link(request: web.Request) -> OptInLinkView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        channel = await visible_channel(session, user, path_id(request))
        keywords = (channel.config or {}).get("opt_in_keywords") or DEFAULT_KEYWORDS[Keyword.OPT_IN]
        return OptInLinkView(channel_id=channel.id, keyword=str(keywords[0]), url=opt_in_link(channel))


# -- templates -----------------------------------------------------------------------------------------

_NAME = re.compile(r"^[a-z0-9_]+$")


class TemplateView(BaseModel):
    id: int
    channel_id: int
    name: str
    language: str
    category: str
    body: str
    params: int
    status: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: t.MessageTemplate) -> TemplateView:
        return cls(
            id=row.id,
            channel_id=row.channel_id,
            name=row.name,
            language=row.language,
            category=row.category,
            body=row.body,
            params=template_param_count(row.body),
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TemplateCreate(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="en_US", min_length=2, max_length=16)
    category: TemplateCategory
    body: str = Field(min_length=1, max_length=1024)
    status: TemplateStatus = TemplateStatus.APPROVED

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits and underscores (WhatsApp template names)")
        return value


class TemplatePatch(BaseModel):
    category: TemplateCategory | None = None
    body: str | None = Field(default=None, min_length=1, max_length=1024)
    status: TemplateStatus | None = None


@api.route(
    "GET", "/channels/{id}/templates", summary="Message templates of a channel", response=Page[TemplateView]
)
async def list_templates(request: web.Request) -> Page[TemplateView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        channel = await visible_channel(session, user, path_id(request))
        rows = await session.scalars(
            select(t.MessageTemplate)
            .where(t.MessageTemplate.channel_id == channel.id)
            .order_by(t.MessageTemplate.name, t.MessageTemplate.language)
        )
        return Page[TemplateView](items=[TemplateView.of(r) for r in rows])


@api.route(
    "POST",
    "/channels/{id}/templates",
    summary="Add a message template (admins)",
    body=TemplateCreate,
    response=TemplateView,
    status=201,
)
async def create_template(request: web.Request, body: TemplateCreate) -> TemplateView:
    user = user_of(request)
    if not is_admin(user):
        raise forbidden("only admins and super admins may manage templates")
    c = container_of(request)
    now = c.clock()
    try:
        async with c.db.write() as session:
            channel = await visible_channel(session, user, path_id(request))
            row = t.MessageTemplate(
                account_id=channel.account_id,
                channel_id=channel.id,
                name=body.name,
                language=body.language,
                category=body.category,
                body=body.body,
                status=body.status,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            return TemplateView.of(row)
    except IntegrityError as exc:
        raise ApiError(
            409, "template_exists", f"template {body.name!r} ({body.language}) already exists on this channel"
        ) from exc


async def _template(session: AsyncSession, user: t.User, request: web.Request) -> t.MessageTemplate:
    channel = await visible_channel(session, user, path_id(request))
    template_id = path_id(request, "template_id")
    row = await session.get(t.MessageTemplate, template_id)
    if row is None or row.channel_id != channel.id:
        raise not_found("template", template_id)
    return row


@api.route(
    "PATCH",
    "/channels/{id}/templates/{template_id}",
    summary="Change a template's body, category or status (admins)",
    body=TemplatePatch,
    response=TemplateView,
)
async def patch_template(request: web.Request, body: TemplatePatch) -> TemplateView:
    user = user_of(request)
    if not is_admin(user):
        raise forbidden("only admins and super admins may manage templates")
    c = container_of(request)
    async with c.db.write() as session:
        row = await _template(session, user, request)
        for field in ("category", "body", "status"):
            value = getattr(body, field)
            if value is not None:
                setattr(row, field, value)
        row.updated_at = c.clock()
        await session.flush()
        return TemplateView.of(row)


@api.route(
    "DELETE", "/channels/{id}/templates/{template_id}", summary="Remove a template (admins)", status=204
)
async def delete_template(request: web.Request) -> None:
    user = user_of(request)
    if not is_admin(user):
        raise forbidden("only admins and super admins may manage templates")
    async with container_of(request).db.write() as session:
        row = await _template(session, user, request)
        await session.delete(row)


# -- quota and billing ---------------------------------------------------------------------------------


class QuotaView(BaseModel):
    period: str
    period_start: datetime
    period_end: datetime
    included: int
    packs: int
    renewing_packs: int
    limit: int
    used: int
    percent: float
    tier: int | None
    blocked: bool
    banner: Literal["none", "notice", "warning", "blocked"]

    @classmethod
    def of(cls, q: QuotaStatus) -> QuotaView:
        return cls(
            period=q.period,
            period_start=q.period_start,
            period_end=q.period_end,
            included=q.included,
            packs=q.packs,
            renewing_packs=q.renewing_packs,
            limit=q.limit,
            used=q.used,
            percent=q.percent,
            tier=q.tier,
            blocked=q.blocked,
            banner=banner_level(q.tier),
        )


@api.route(
    "GET", "/quota", summary="This month's conversation quota and the banner level", response=QuotaView
)
async def get_quota(request: web.Request) -> QuotaView:
    user = user_of(request)
    c = container_of(request)
    async with c.db.read() as session:
        return QuotaView.of(await quota_status(session, user.account_id, c.clock()))


class PacksBody(BaseModel):
    count: int = Field(ge=1, le=1000)


@api.route(
    "POST",
    "/billing/packs",
    summary="Buy packs of 1,000 conversations (billing admins, super admins); counts at once",
    body=PacksBody,
    response=QuotaView,
)
async def buy_packs(request: web.Request, body: PacksBody) -> QuotaView:
    user = user_of(request)
    if not can_manage_billing(user):
        raise forbidden("only billing admins and super admins may buy packs")
    c = container_of(request)
    async with c.db.write() as session:
        return QuotaView.of(await add_packs(session, user.account_id, body.count, c.clock()))


@api.route(
    "POST",
    "/billing/packs/cancel",
    summary="Stop renewing packs (billing admins, super admins); they stay until the period ends",
    body=PacksBody,
    response=QuotaView,
)
async def cancel_packs_(request: web.Request, body: PacksBody) -> QuotaView:
    user = user_of(request)
    if not can_manage_billing(user):
        raise forbidden("only billing admins and super admins may cancel packs")
    c = container_of(request)
    async with c.db.write() as session:
        return QuotaView.of(await cancel_packs(session, user.account_id, body.count, c.clock()))


class BillableQuery(BaseModel):
    period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class BillableView(BaseModel):
    id: int
    channel_id: int
    contact_id: int
    conversation_id: int
    first_message_id: int
    period: str
    category: str
    opened_at: datetime
    expires_at: datetime
    released_at: datetime | None


@api.route(
    "GET",
    "/billing/conversations",
    summary="Billable conversations of a period (default: this month), oldest first",
    query=BillableQuery,
    response=Page[BillableView],
)
async def list_billable(request: web.Request, query: BillableQuery) -> Page[BillableView]:
    user = user_of(request)
    if not (can_manage_billing(user) or is_admin(user)):
        raise forbidden("only admins, billing admins and super admins may see billing")
    c = container_of(request)
    period = query.period or period_of(c.clock())
    async with c.db.read() as session:
        stmt = select(t.BillableConversation).where(
            t.BillableConversation.account_id == user.account_id,
            t.BillableConversation.period == period,
        )
        rows, cursor = await list_by_id(session, stmt, t.BillableConversation.id, query.limit, query.cursor)
        return Page[BillableView](
            items=[
                BillableView(
                    id=r.id,
                    channel_id=r.channel_id,
                    contact_id=r.contact_id,
                    conversation_id=r.conversation_id,
                    first_message_id=r.first_message_id,
                    period=r.period,
                    category=r.category,
                    opened_at=r.opened_at,
                    expires_at=r.expires_at,
                    released_at=r.released_at,
                )
                for r in rows
            ],
            next_cursor=cursor,
        )
