"""Read-side queries for the inbox: filtered conversation lists, messages, contacts — cursor-paged."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t


class BadCursor(ValueError):
    pass


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not one this server issued") from exc
    if not isinstance(parts, list) or len(parts) != arity:
        raise BadCursor("cursor is not one this server issued")
    return parts


@dataclass
class ConversationFilter:
    inbox_ids: set[int]  # what the user may see, intersected with the requested inbox
    status: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    label: str | None = None
    q: str | None = None
    priority: str | None = None
    channel_kind: str | None = None


def _search_condition(session: AsyncSession, q: str) -> Any:
    """Conversations whose contact or any message matches ``q`` (case-insensitive substring).

    SQLite uses the trigram FTS5 indexes (migration 0002_search) for terms of three or more
    characters; shorter terms and PostgreSQL fall back to LIKE.
    """
    if session.bind.dialect.name == "sqlite" and len(q.strip()) >= 3:
        phrase = '"' + q.strip().replace('"', '""') + '"'
        matching_messages = text("SELECT rowid FROM message_search WHERE message_search MATCH :q").bindparams(
            q=phrase
        )
        matching_contacts = text("SELECT rowid FROM contact_search WHERE contact_search MATCH :q").bindparams(
            q=phrase
        )
        return or_(
            t.Conversation.contact_id.in_(matching_contacts.columns(column("rowid"))),
            t.Conversation.id.in_(
                select(t.Message.conversation_id).where(
                    t.Message.id.in_(matching_messages.columns(column("rowid")))
                )
            ),
        )
    pattern = _like(q.lower())
    return or_(
        exists().where(
            t.Contact.id == t.Conversation.contact_id,
            or_(
                func.lower(t.Contact.name).like(pattern, escape="\\"),
                func.lower(t.Contact.email).like(pattern, escape="\\"),
                t.Contact.phone.like(pattern, escape="\\"),
            ),
        ),
        exists().where(
            t.Message.conversation_id == t.Conversation.id,
            func.lower(t.Message.text).like(pattern, escape="\\"),
        ),
    )


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_conversations(
    session: AsyncSession, f: ConversationFilter, limit: int, cursor: str | None
) -> tuple[list[t.Conversation], str | None]:
    """Newest activity first."""
    if not f.inbox_ids:
        return [], None
    stmt = select(t.Conversation).where(t.Conversation.inbox_id.in_(f.inbox_ids))
    if f.status:
        stmt = stmt.where(t.Conversation.status == f.status)
    if f.unassigned:
        stmt = stmt.where(t.Conversation.assignee_id.is_(None))
    elif f.assignee_id is not None:
        stmt = stmt.where(t.Conversation.assignee_id == f.assignee_id)
    if f.team_id is not None:
        stmt = stmt.where(t.Conversation.team_id == f.team_id)
    if f.priority:
        stmt = stmt.where(t.Conversation.priority == f.priority)
    if f.channel_kind:
        stmt = stmt.where(
            t.Conversation.channel_id.in_(select(t.Channel.id).where(t.Channel.kind == f.channel_kind))
        )
    if f.label:
        stmt = stmt.where(
            exists().where(
                t.ConversationLabel.conversation_id == t.Conversation.id,
                t.ConversationLabel.label == f.label.lower(),
            )
        )
    if f.q:
        stmt = stmt.where(_search_condition(session, f.q))
    if cursor:
        at_raw, last_id = decode_cursor(cursor, 2)
        try:
            at = datetime.fromisoformat(at_raw)
            last_id = int(last_id)
        except (TypeError, ValueError) as exc:
            raise BadCursor("cursor is not one this server issued") from exc
        stmt = stmt.where(
            or_(
                t.Conversation.last_activity_at < at,
                and_(t.Conversation.last_activity_at == at, t.Conversation.id < last_id),
            )
        )
    stmt = stmt.order_by(t.Conversation.last_activity_at.desc(), t.Conversation.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(stmt))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.last_activity_at.isoformat(), last.id)
    return rows, next_cursor


async def labels_for(session: AsyncSession, conversation_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {cid: [] for cid in conversation_ids}
    if conversation_ids:
        rows = await session.execute(
            select(t.ConversationLabel.conversation_id, t.ConversationLabel.label).where(
                t.ConversationLabel.conversation_id.in_(conversation_ids)
            )
        )
        for cid, label in rows:
            out[cid].append(label)
    return out


async def list_by_id(
    session: AsyncSession, stmt: Any, id_column: Any, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Ascending-id paging for messages, contacts, users and the like."""
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        if not isinstance(after, int):
            raise BadCursor("cursor is not one this server issued")
        stmt = stmt.where(id_column > after)
    rows = list(await session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].id)
    return rows, next_cursor
