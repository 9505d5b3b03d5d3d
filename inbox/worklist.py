"""What an agent's conversation list shows besides the conversation itself: the contact's name, the
channel, the last message, how many incoming messages this agent has not read, and since when the
contact has been waiting for an answer. Computed for one page at a time (a handful of grouped queries)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.model import ChannelKind, ConversationStatus, MessageKind, MessageStatus
from inbox.views import ConversationView

SERVICE_WINDOW = timedelta(hours=24)
PREVIEW_CHARS = 140


class MessagePreview(BaseModel):
    id: int
    kind: str
    text: str | None
    status: str
    created_at: datetime


class ConversationListItem(ConversationView):
    """A conversation as the inbox list shows it; the fields of ConversationView plus these."""

    contact_name: str | None = None
    contact_address: str | None = None
    channel_kind: str | None = None
    channel_name: str | None = None
    last_message: MessagePreview | None = None
    unread_count: int = 0
    waiting_since: datetime | None = None  # oldest incoming message not yet answered
    service_window_ends_at: datetime | None = None  # on channels with a 24 h window


def has_service_window(channel: t.Channel) -> bool:
    """WhatsApp by default; a channel may say otherwise with ``service_window`` in its config."""
    configured = (channel.config or {}).get("service_window")
    if isinstance(configured, bool):
        return configured
    return channel.kind == ChannelKind.WHATSAPP


def _preview(text: str | None) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


async def enrich(
    session: AsyncSession, user_id: int, rows: list[t.Conversation], labels: dict[int, list[str]]
) -> list[ConversationListItem]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    contacts = {
        c.id: c
        for c in await session.scalars(
            select(t.Contact).where(t.Contact.id.in_({r.contact_id for r in rows}))
        )
    }
    channels = {
        c.id: c
        for c in await session.scalars(
            select(t.Channel).where(t.Channel.id.in_({r.channel_id for r in rows}))
        )
    }
    last_ids = (
        select(func.max(t.Message.id))
        .where(t.Message.conversation_id.in_(ids), t.Message.kind != MessageKind.ACTIVITY)
        .group_by(t.Message.conversation_id)
    )
    last = {
        m.conversation_id: m
        for m in await session.scalars(select(t.Message).where(t.Message.id.in_(last_ids)))
    }
    unread = await unread_by_conversation(session, user_id, ids)
    waiting = await waiting_since(session, ids)
    items: list[ConversationListItem] = []
    for r in rows:
        base = ConversationView.of(r, labels.get(r.id, []))
        contact = contacts.get(r.contact_id)
        channel = channels.get(r.channel_id)
        message = last.get(r.id)
        window = (
            r.last_inbound_at + SERVICE_WINDOW
            if channel is not None and r.last_inbound_at is not None and has_service_window(channel)
            else None
        )
        items.append(
            ConversationListItem(
                **base.model_dump(),
                contact_name=contact.name if contact else None,
                contact_address=r.recipient,
                channel_kind=channel.kind if channel else None,
                channel_name=channel.name if channel else None,
                last_message=MessagePreview(
                    id=message.id,
                    kind=message.kind,
                    text=_preview(message.text)
                    or (f"[{message.content_type}]" if message.content_type != "text" else None),
                    status=message.status,
                    created_at=message.created_at,
                )
                if message
                else None,
                unread_count=unread.get(r.id, 0),
                waiting_since=waiting.get(r.id) if r.status != ConversationStatus.RESOLVED else None,
                service_window_ends_at=window,
            )
        )
    return items


def _unread_join(user_id: int) -> Any:
    return and_(
        t.ConversationRead.conversation_id == t.Message.conversation_id,
        t.ConversationRead.user_id == user_id,
    )


async def unread_by_conversation(session: AsyncSession, user_id: int, ids: list[int]) -> dict[int, int]:
    rows = await session.execute(
        select(t.Message.conversation_id, func.count())
        .select_from(t.Message)
        .outerjoin(t.ConversationRead, _unread_join(user_id))
        .where(
            t.Message.conversation_id.in_(ids),
            t.Message.kind == MessageKind.INCOMING,
            t.Message.id > func.coalesce(t.ConversationRead.last_read_message_id, 0),
        )
        .group_by(t.Message.conversation_id)
    )
    return {cid: int(n) for cid, n in rows}


async def waiting_since(session: AsyncSession, ids: list[int]) -> dict[int, datetime]:
    """For each conversation, when the oldest incoming message after the last reply arrived."""
    answered = (
        select(t.Message.conversation_id.label("cid"), func.max(t.Message.id).label("mid"))
        .where(
            t.Message.conversation_id.in_(ids),
            t.Message.kind == MessageKind.OUTGOING,
            t.Message.status != MessageStatus.FAILED,  # a refused reply has not answered anyone
        )
        .group_by(t.Message.conversation_id)
        .subquery()
    )
    rows = await session.execute(
        select(t.Message.conversation_id, func.min(t.Message.created_at))
        .outerjoin(answered, answered.c.cid == t.Message.conversation_id)
        .where(
            t.Message.conversation_id.in_(ids),
            t.Message.kind == MessageKind.INCOMING,
            t.Message.id > func.coalesce(answered.c.mid, 0),
        )
        .group_by(t.Message.conversation_id)
    )
    # min() keeps the column's type, so SQLite's stored text comes back as an aware datetime.
    return {cid: at for cid, at in rows if at is not None}


class UnreadCounts(BaseModel):
    """Conversations (not resolved) with messages this user has not read, per inbox, team and view."""

    inboxes: dict[int, int]
    teams: dict[int, int]
    mine: int
    unassigned: int
    all: int


async def unread_counts(session: AsyncSession, user_id: int, inbox_ids: set[int]) -> UnreadCounts:
    if not inbox_ids:
        return UnreadCounts(inboxes={}, teams={}, mine=0, unassigned=0, all=0)
    read = and_(
        t.ConversationRead.conversation_id == t.Conversation.id, t.ConversationRead.user_id == user_id
    )
    # One index probe per open conversation (messages by conversation_id, id), not a scan of them all.
    unread = (
        exists()
        .where(
            t.Message.conversation_id == t.Conversation.id,
            t.Message.kind == MessageKind.INCOMING,
            t.Message.id > func.coalesce(t.ConversationRead.last_read_message_id, 0),
        )
        .correlate(t.Conversation, t.ConversationRead)
    )
    rows = (
        await session.execute(
            select(
                t.Conversation.id, t.Conversation.inbox_id, t.Conversation.team_id, t.Conversation.assignee_id
            )
            .outerjoin(t.ConversationRead, read)
            .where(
                t.Conversation.inbox_id.in_(inbox_ids),
                t.Conversation.status != ConversationStatus.RESOLVED,
                unread,
            )
        )
    ).all()
    inboxes: dict[int, int] = {}
    teams: dict[int, int] = {}
    for _, inbox_id, team_id, _assignee in rows:
        inboxes[inbox_id] = inboxes.get(inbox_id, 0) + 1
        if team_id is not None:
            teams[team_id] = teams.get(team_id, 0) + 1
    return UnreadCounts(
        inboxes=inboxes,
        teams=teams,
        mine=sum(1 for r in rows if r[3] == user_id),
        unassigned=sum(1 for r in rows if r[3] is None),
        all=len(rows),
    )


async def mark_read(session: AsyncSession, user_id: int, conversation_id: int, now: datetime) -> int:
    """Mark everything in the conversation read for this user; returns the newest message id."""
    newest = (
        await session.scalar(
            select(func.max(t.Message.id)).where(t.Message.conversation_id == conversation_id)
        )
    ) or 0
    row = await session.get(t.ConversationRead, (conversation_id, user_id))
    if row is None:
        session.add(
            t.ConversationRead(
                conversation_id=conversation_id, user_id=user_id, last_read_message_id=newest, read_at=now
            )
        )
    elif newest > row.last_read_message_id:
        row.last_read_message_id = newest
        row.read_at = now
    await session.flush()
    return int(newest)
