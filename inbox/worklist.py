"""What an agent's conversation list shows besides the conversation itself: the contact's name, the
channel, the last message, how many incoming messages this agent has not read, and since when the
contact has been waiting for an answer. Computed for one page at a time, in one statement."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, and_, bindparam, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.model import ChannelKind, ConversationStatus, MessageKind, MessageStatus
from inbox.queries import labels_for
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
    return _service_window(channel.kind, channel.config)


def _service_window(kind: str, config: dict[str, Any] | None) -> bool:
    configured = (config or {}).get("service_window")
    if isinstance(configured, bool):
        return configured
    return kind == ChannelKind.WHATSAPP


def _preview(text: str | None) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


async def enrich(
    session: AsyncSession, user_id: int, rows: list[t.Conversation], labels: dict[int, list[str]]
) -> list[ConversationListItem]:
    """List items for conversations already loaded (one conversation, a contact's conversations)."""
    return await list_items(session, user_id, [r.id for r in rows], labels)


@functools.cache
def _items_statement() -> Any:
    """One statement for a page of list items (bound: ``ids`` expanding, ``user_id``); built once.

    Core tables, not ORM entities: rows come back as tuples without identity-map bookkeeping. Every
    per-conversation figure is a correlated subquery, an index probe on messages (conversation_id, id),
    evaluated for the page's rows only.
    """
    conversations = t.Conversation.__table__
    c = conversations.c
    messages = t.Message.__table__
    contacts = t.Contact.__table__
    channels = t.Channel.__table__
    reads = t.ConversationRead.__table__
    labels = t.ConversationLabel.__table__
    unread_m, answered_m, waiting_m, last_m = (messages.alias(n) for n in ("mu", "ma", "mw", "ml"))
    last = messages.alias("last")
    user_id: Any = bindparam("user_id", type_=BigInteger)
    read_up_to = (
        select(reads.c.last_read_message_id)
        .where(reads.c.conversation_id == c.id, reads.c.user_id == user_id)
        .correlate(conversations)
        .scalar_subquery()
    )
    unread = (
        select(func.count())
        .select_from(unread_m)
        .where(
            unread_m.c.conversation_id == c.id,
            unread_m.c.kind == MessageKind.INCOMING,
            unread_m.c.id > func.coalesce(read_up_to, 0),
        )
        .correlate(conversations)
        .scalar_subquery()
    )
    answered = (
        select(func.max(answered_m.c.id))
        .where(
            answered_m.c.conversation_id == c.id,
            answered_m.c.kind == MessageKind.OUTGOING,
            answered_m.c.status != MessageStatus.FAILED,  # a refused reply has not answered anyone
        )
        .correlate(conversations)
        .scalar_subquery()
    )
    # The oldest incoming message after the last reply; min() keeps the column's type, so SQLite's
    # stored text comes back as an aware datetime.
    waiting = (
        select(func.min(waiting_m.c.created_at))
        .where(
            waiting_m.c.conversation_id == c.id,
            waiting_m.c.kind == MessageKind.INCOMING,
            waiting_m.c.id > func.coalesce(answered, 0),
        )
        .correlate(conversations)
        .scalar_subquery()
    )
    last_id = (
        select(func.max(last_m.c.id))
        .where(last_m.c.conversation_id == c.id, last_m.c.kind != MessageKind.ACTIVITY)
        .correlate(conversations)
        .scalar_subquery()
    )
    return (
        select(
            c.id,
            c.inbox_id,
            c.channel_id,
            c.contact_id,
            c.status,
            c.assignee_id,
            c.team_id,
            c.priority,
            c.snoozed_until,
            c.last_inbound_at,
            c.last_activity_at,
            c.created_at,
            c.recipient,
            c.meta,
            contacts.c.name.label("contact_name"),
            channels.c.kind.label("channel_kind"),
            channels.c.name.label("channel_name"),
            channels.c.config.label("channel_config"),
            last.c.id.label("m_id"),
            last.c.kind.label("m_kind"),
            last.c.text.label("m_text"),
            last.c.content_type.label("m_content_type"),
            last.c.status.label("m_status"),
            last.c.created_at.label("m_created_at"),
            unread.label("unread"),
            waiting.label("waiting"),
            exists().where(labels.c.conversation_id == c.id).label("labelled"),
        )
        .select_from(
            conversations.outerjoin(contacts, contacts.c.id == c.contact_id)
            .outerjoin(channels, channels.c.id == c.channel_id)
            .outerjoin(last, last.c.id == last_id)
        )
        .where(c.id.in_(bindparam("ids", expanding=True)))
    )


async def list_items(
    session: AsyncSession, user_id: int, ids: list[int], labels: dict[int, list[str]] | None = None
) -> list[ConversationListItem]:
    """List items for these conversations, in the order given: one statement for the whole page (the
    items with contact, channel, last message, unread count and waiting time), one more for labels
    if any conversation on the page has some."""
    if not ids:
        return []
    result = await session.execute(_items_statement(), {"ids": ids, "user_id": user_id})
    by_id = {r.id: r for r in result.all()}
    if labels is None:  # a second statement only for a page with labelled conversations
        labelled = [cid for cid, r in by_id.items() if r.labelled]
        labels = await labels_for(session, labelled) if labelled else {}
    items: list[ConversationListItem] = []
    for cid in ids:
        r = by_id.get(cid)
        if r is None:
            continue
        window = (
            r.last_inbound_at + SERVICE_WINDOW
            if r.channel_kind is not None
            and r.last_inbound_at is not None
            and _service_window(r.channel_kind, r.channel_config)
            else None
        )
        preview = (
            MessagePreview(
                id=r.m_id,
                kind=r.m_kind,
                text=_preview(r.m_text) or (f"[{r.m_content_type}]" if r.m_content_type != "text" else None),
                status=r.m_status,
                created_at=r.m_created_at,
            )
            if r.m_id is not None
            else None
        )
        items.append(
            ConversationListItem(
                id=r.id,
                inbox_id=r.inbox_id,
                channel_id=r.channel_id,
                contact_id=r.contact_id,
                status=r.status,
                assignee_id=r.assignee_id,
                team_id=r.team_id,
                priority=r.priority,
                labels=sorted(labels.get(r.id, [])),
                snoozed_until=r.snoozed_until,
                last_inbound_at=r.last_inbound_at,
                last_activity_at=r.last_activity_at,
                created_at=r.created_at,
                replies_disabled=bool((r.meta or {}).get("replies_disabled")),
                held=bool((r.meta or {}).get("held")),
                contact_name=r.contact_name,
                contact_address=r.recipient,
                channel_kind=r.channel_kind,
                channel_name=r.channel_name,
                last_message=preview,
                unread_count=r.unread or 0,
                waiting_since=r.waiting if r.status != ConversationStatus.RESOLVED else None,
                service_window_ends_at=window,
            )
        )
    return items


class UnreadCounts(BaseModel):
    """Conversations (not resolved) with messages this user has not read, per inbox, team and view."""

    inboxes: dict[int, int]
    teams: dict[int, int]
    mine: int
    unassigned: int
    all: int


async def unread_counts(
    session: AsyncSession, user_id: int, inbox_ids: set[int], *, hide_held: bool = False
) -> UnreadCounts:
    """Unread open conversations per inbox, team and assignee; ``hide_held`` leaves out held ones."""
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
    # Counted in SQL, grouped by what the counters need: a handful of rows, not one per conversation.
    assignee = case(
        (t.Conversation.assignee_id.is_(None), "none"),
        (t.Conversation.assignee_id == user_id, "me"),
        else_="other",
    ).label("assignee")
    rows = (
        await session.execute(
            select(t.Conversation.inbox_id, t.Conversation.team_id, assignee, func.count())
            .outerjoin(t.ConversationRead, read)
            .where(
                t.Conversation.inbox_id.in_(inbox_ids),
                t.Conversation.status != ConversationStatus.RESOLVED,
                unread,
                *([t.Conversation.meta["held"].as_boolean().is_not(True)] if hide_held else []),
            )
            .group_by(t.Conversation.inbox_id, t.Conversation.team_id, assignee)
        )
    ).all()
    inboxes: dict[int, int] = {}
    teams: dict[int, int] = {}
    by_assignee = {"none": 0, "me": 0, "other": 0}
    for inbox_id, team_id, who, n in rows:
        inboxes[inbox_id] = inboxes.get(inbox_id, 0) + n
        if team_id is not None:
            teams[team_id] = teams.get(team_id, 0) + n
        by_assignee[who] += n
    return UnreadCounts(
        inboxes=inboxes,
        teams=teams,
        mine=by_assignee["me"],
        unassigned=by_assignee["none"],
        all=sum(by_assignee.values()),
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
