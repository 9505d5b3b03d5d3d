"""The 24-hour customer-service window, message templates and billable conversations (DESIGN.md §3).

Channel config keys (``channels.config``): ``service_window`` (bool) and ``metered`` (bool), both
defaulting to true on WhatsApp and false elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.caches import Caches
from inbox.db import first_row_once
from inbox.model import ChannelKind, MessageKind, MessageStatus, Reason, TemplateRef
from inbox.outbox import Refusal, SendContext

SERVICE_WINDOW = timedelta(hours=24)
CONVERSATION_LENGTH = timedelta(hours=24)
_PARAM = re.compile(r"\{\{\s*(\d+)\s*\}\}")

# Statements every gated send runs, built once (building a select and its cache key costs more CPU
# than SQLite spends running it; bench/HISTORY.md). Core rows where the gate only reads a column or two.
_LAST_INBOUND_AT = (
    select(t.Conversation.last_inbound_at)
    .where(
        t.Conversation.channel_id == bindparam("channel_id"),
        t.Conversation.contact_id == bindparam("contact_id"),
        t.Conversation.last_inbound_at.is_not(None),
    )
    .order_by(t.Conversation.last_inbound_at.desc())
    .limit(1)
)
_TEMPLATE = select(t.MessageTemplate).where(
    t.MessageTemplate.channel_id == bindparam("channel_id"),
    t.MessageTemplate.name == bindparam("name"),
    t.MessageTemplate.language == bindparam("language"),
)
_TEMPLATE_BODY = select(t.MessageTemplate.body, t.MessageTemplate.status).where(
    t.MessageTemplate.channel_id == bindparam("channel_id"),
    t.MessageTemplate.name == bindparam("name"),
    t.MessageTemplate.language == bindparam("language"),
)
_OPEN_BILLABLE = (
    select(t.BillableConversation)
    .where(
        t.BillableConversation.channel_id == bindparam("channel_id"),
        t.BillableConversation.contact_id == bindparam("contact_id"),
        t.BillableConversation.expires_at > bindparam("now"),
        t.BillableConversation.released_at.is_(None),
    )
    .order_by(t.BillableConversation.id.desc())
    .limit(1)
    .execution_options(populate_existing=True)
)
_OPEN_BILLABLE_ID = (
    select(t.BillableConversation.id)
    .where(
        t.BillableConversation.channel_id == bindparam("channel_id"),
        t.BillableConversation.contact_id == bindparam("contact_id"),
        t.BillableConversation.expires_at > bindparam("now"),
        t.BillableConversation.released_at.is_(None),
    )
    .limit(1)
)


class TemplateCategory(StrEnum):
    MARKETING = "marketing"
    UTILITY = "utility"
    AUTHENTICATION = "authentication"


class TemplateStatus(StrEnum):
    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    PAUSED = "paused"


class ConversationCategory(StrEnum):
    USER_INITIATED = "user_initiated"
    BUSINESS_INITIATED = "business_initiated"


def _flag(config: dict[str, Any] | None, kind: str, key: str) -> bool:
    value = (config or {}).get(key)
    if value is None:
        return kind == ChannelKind.WHATSAPP
    return bool(value)


def has_service_window(channel: t.Channel) -> bool:
    """Whether free-form sends on this channel need the contact's open 24-hour window."""
    return _flag(channel.config, channel.kind, "service_window")


def is_metered(channel: t.Channel) -> bool:
    """Whether business messages on this channel open billable conversations."""
    return _flag(channel.config, channel.kind, "metered")


def period_of(when: datetime) -> str:
    """The quota period (calendar month, UTC) holding ``when``: ``YYYY-MM``."""
    return f"{when.year:04d}-{when.month:02d}"


async def last_inbound_at(session: AsyncSession, channel_id: int, contact_id: int) -> datetime | None:
    """When the contact last wrote on this channel (any of its conversations there)."""
    conn = await session.connection()
    found: datetime | None = (
        await conn.execute(_LAST_INBOUND_AT, {"channel_id": channel_id, "contact_id": contact_id})
    ).scalar()
    return found


@dataclass(frozen=True)
class WindowState:
    last_inbound_at: datetime | None
    open: bool

    @property
    def closes_at(self) -> datetime | None:
        return self.last_inbound_at + SERVICE_WINDOW if self.last_inbound_at else None


async def window_state(session: AsyncSession, channel_id: int, contact_id: int, now: datetime) -> WindowState:
    """Open while less than 24 h have passed since the last inbound message: 23:59:59 yes, 24:00:00 no."""
    last = await last_inbound_at(session, channel_id, contact_id)
    return WindowState(last, last is not None and now - last < SERVICE_WINDOW)


async def window_open_for(session: AsyncSession, ctx: SendContext) -> bool:
    """The window state of a send, computed once per check and shared by the policies."""
    cached = ctx.notes.get("window_open")
    if isinstance(cached, bool):
        return cached
    state = await window_state(session, ctx.channel.id, ctx.conversation.contact_id, ctx.now)
    ctx.notes["window_open"] = state.open
    ctx.notes["ever_wrote"] = state.last_inbound_at is not None
    return state.open


# -- templates ----------------------------------------------------------------------------------------


def template_param_count(body: str) -> int:
    """Parameters a template body needs: the highest ``{{n}}``."""
    return max((int(n) for n in _PARAM.findall(body)), default=0)


def render_template(body: str, params: tuple[str, ...]) -> str:
    return _PARAM.sub(
        lambda m: params[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(params) else "", body
    )


async def find_template(session: AsyncSession, channel_id: int, ref: TemplateRef) -> t.MessageTemplate | None:
    found: t.MessageTemplate | None = await session.scalar(
        _TEMPLATE, {"channel_id": channel_id, "name": ref.name, "language": ref.language}
    )
    return found


async def _template_row(
    session: AsyncSession, channel_id: int, ref: TemplateRef, caches: Caches | None = None
) -> Row[tuple[str, str]] | None:
    key = ("template", channel_id, ref.name, ref.language)

    async def load() -> Row[tuple[str, str]] | None:
        row: Row[tuple[str, str]] | None = await first_row_once(
            session,
            key,
            _TEMPLATE_BODY,
            {"channel_id": channel_id, "name": ref.name, "language": ref.language},
        )
        return row

    if caches is None:
        return await load()
    return await caches.get(session, key, (t.MessageTemplate.__tablename__,), load)


def _template_problem(row: Row[tuple[str, str]] | None, ref: TemplateRef) -> str | None:
    if row is None:
        return f"no template {ref.name!r} ({ref.language}) on this channel"
    body, status = row
    if status != TemplateStatus.APPROVED:
        return f"template {ref.name!r} ({ref.language}) is {status}, not approved"
    needed = template_param_count(body)
    if len(ref.params) != needed:
        return f"template {ref.name!r} takes {needed} parameters, {len(ref.params)} given"
    return None


async def check_template(session: AsyncSession, channel_id: int, ref: TemplateRef) -> str | None:
    """Why this template cannot be sent on the channel, or None if it can."""
    return _template_problem(await _template_row(session, channel_id, ref), ref)


class WindowPolicy:
    """Free-form only inside the window; outside it approved templates with the right parameters.

    With ``caches`` a template is read once per process, until a commit changes the templates.
    """

    def __init__(self, caches: Caches | None = None) -> None:
        self._caches = caches

    async def check(self, session: AsyncSession, ctx: SendContext) -> Refusal | None:
        if not has_service_window(ctx.channel):
            return None
        template = ctx.draft.template
        if template is not None:
            row = await _template_row(session, ctx.channel.id, template, self._caches)
            problem = _template_problem(row, template)
            if problem is not None:
                return Refusal(Reason.TEMPLATE_REQUIRED, problem + "; send an approved template")
            assert row is not None
            if ctx.stage == "submit" and ctx.message is not None and not ctx.message.text:
                ctx.message.text = render_template(row[0], template.params)  # what the contact reads
            return None
        if await window_open_for(session, ctx):
            return None
        if ctx.notes.get("ever_wrote"):
            return Refusal(
                Reason.WINDOW_CLOSED,
                "more than 24 hours have passed since the contact last wrote; send an approved template",
            )
        return Refusal(
            Reason.TEMPLATE_REQUIRED,
            "the contact has not written on this channel; the first message must be an approved template",
        )


# -- billable conversations ---------------------------------------------------------------------------


async def open_billable(
    session: AsyncSession, channel_id: int, contact_id: int, now: datetime
) -> t.BillableConversation | None:
    """The billable conversation with this contact that is still running, if any."""
    found: t.BillableConversation | None = await session.scalar(
        _OPEN_BILLABLE, {"channel_id": channel_id, "contact_id": contact_id, "now": now}
    )
    return found


async def billable_is_open(session: AsyncSession, channel_id: int, contact_id: int, now: datetime) -> bool:
    """Whether a billable conversation with this contact is still running (a Core read of one id)."""
    conn = await session.connection()
    found = await conn.execute(
        _OPEN_BILLABLE_ID, {"channel_id": channel_id, "contact_id": contact_id, "now": now}
    )
    return found.first() is not None


def new_billable(ctx: SendContext, message_id: int, window_open: bool) -> t.BillableConversation:
    return t.BillableConversation(
        account_id=ctx.conversation.account_id,
        channel_id=ctx.channel.id,
        contact_id=ctx.conversation.contact_id,
        conversation_id=ctx.conversation.id,
        first_message_id=message_id,
        period=period_of(ctx.now),
        category=ConversationCategory.USER_INITIATED
        if window_open
        else ConversationCategory.BUSINESS_INITIATED,
        opened_at=ctx.now,
        expires_at=ctx.now + CONVERSATION_LENGTH,
    )


async def others_alive_in(session: AsyncSession, billable: t.BillableConversation, message_id: int) -> bool:
    """Whether any other business message in this billable conversation is queued or went out."""
    found = await session.scalar(
        select(t.Message.id)
        .join(t.Conversation, t.Conversation.id == t.Message.conversation_id)
        .where(
            t.Message.channel_id == billable.channel_id,
            t.Conversation.contact_id == billable.contact_id,
            t.Message.kind == MessageKind.OUTGOING,
            t.Message.id != message_id,
            t.Message.created_at >= billable.opened_at,
            t.Message.created_at < billable.expires_at,
            t.Message.status != MessageStatus.FAILED,
        )
        .limit(1)
    )
    return found is not None
