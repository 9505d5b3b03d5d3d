"""Read-side queries for the inbox: filtered conversation lists, messages, contacts — cursor-paged."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, exists, func, or_, select, text, union_all
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
    # Conversations kept aside where the business opens first (``meta["held"]``) are shown to admins only.
    hide_held: bool = False


CONVERSATIONS = t.Conversation.__table__
MESSAGES = t.Message.__table__
CONTACTS = t.Contact.__table__
LABELS = t.ConversationLabel.__table__
CHANNELS = t.Channel.__table__

# Search on SQLite: first count the trigram FTS5 matches of messages and of contacts, up to
# FTS_PROBE_LIMIT (the LIMIT sits inside the FTS query, so a common term stops early; one statement).
# Up to that many, the FTS query itself picks the conversations (a rowid lookup per match, then a sort
# of those). A term with more matches is checked with LIKE on the newest SEARCH_WINDOW conversations,
# newest first, stopping at a page; only if they hold less than a page do the FTS matches pick the
# older ones.
FTS_PROBE_LIMIT = 300
SEARCH_WINDOW = 2000
MESSAGE_MATCHES = "SELECT rowid FROM message_search WHERE message_search MATCH :q"
CONTACT_MATCHES = "SELECT rowid FROM contact_search WHERE contact_search MATCH :q"
FTS_PROBE = (
    "SELECT (SELECT count(*) FROM (SELECT rowid FROM message_search WHERE message_search MATCH :q LIMIT :n)),"
    " (SELECT count(*) FROM (SELECT rowid FROM contact_search WHERE contact_search MATCH :q LIMIT :n))"
)
# Shorter terms (the trigram index needs three characters) match contacts only: a one- or two-letter
# substring of every message is a scan of all messages and no useful answer.
MIN_TEXT_TERM = 3


async def _contact_like_probe(session: AsyncSession, pattern: str) -> list[int] | None:
    """Contacts matching a short term (too short for the trigram index): one pass over contacts."""
    probe = select(CONTACTS.c.id).where(_contact_matches(pattern)).limit(FTS_PROBE_LIMIT + 1)
    rows = (await session.execute(probe)).scalars().all()
    return None if len(rows) > FTS_PROBE_LIMIT else [int(r) for r in rows]


def _message_like(conversation_id: Any, pattern: str) -> Any:
    # On PostgreSQL the pg_trgm GIN index on lower(text) (migration 0010_query_speed) serves this.
    return exists().where(
        MESSAGES.c.conversation_id == conversation_id,
        func.lower(MESSAGES.c.text).like(pattern, escape="\\"),
    )


def _contact_matches(pattern: str) -> Any:
    return or_(
        func.lower(CONTACTS.c.name).like(pattern, escape="\\"),
        func.lower(CONTACTS.c.email).like(pattern, escape="\\"),
        CONTACTS.c.phone.like(pattern, escape="\\"),
    )


def _contact_like(contact_id: Any, pattern: str) -> Any:
    return exists().where(CONTACTS.c.id == contact_id, _contact_matches(pattern))


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _after(cursor: str) -> Any:
    """Keyset condition for the page after ``cursor``: strictly older, ties broken by id."""
    at_raw, last_id = decode_cursor(cursor, 2)
    try:
        at = datetime.fromisoformat(at_raw)
        last_id = int(last_id)
    except (TypeError, ValueError) as exc:
        raise BadCursor("cursor is not one this server issued") from exc
    if at.tzinfo is None:
        raise BadCursor("cursor is not one this server issued")
    return _older(at, last_id)


def _older(at: datetime, conversation_id: int) -> Any:
    """After (at, id) in newest-first order. The leading ``<=`` is what the index range uses."""
    c = CONVERSATIONS.c
    return and_(c.last_activity_at <= at, or_(c.last_activity_at < at, c.id < conversation_id))


def _not_older(at: datetime, conversation_id: int) -> Any:
    """(at, id) and before it in newest-first order."""
    c = CONVERSATIONS.c
    return and_(c.last_activity_at >= at, or_(c.last_activity_at > at, c.id >= conversation_id))


def _filters(f: ConversationFilter, cursor: str | None) -> list[Any]:
    c = CONVERSATIONS.c
    conditions: list[Any] = []
    if f.status:
        conditions.append(c.status == f.status)
    if f.unassigned:
        conditions.append(c.assignee_id.is_(None))
    elif f.assignee_id is not None:
        conditions.append(c.assignee_id == f.assignee_id)
    if f.team_id is not None:
        conditions.append(c.team_id == f.team_id)
    if f.priority:
        conditions.append(c.priority == f.priority)
    if f.channel_kind:
        conditions.append(c.channel_id.in_(select(CHANNELS.c.id).where(CHANNELS.c.kind == f.channel_kind)))
    if f.label:
        conditions.append(exists().where(LABELS.c.conversation_id == c.id, LABELS.c.label == f.label.lower()))
    if f.hide_held:
        conditions.append(c.meta["held"].as_boolean().is_not(True))
    if cursor:
        conditions.append(_after(cursor))
    return conditions


def _newest(
    inbox_ids: set[int],
    conditions: list[Any],
    n: int,
    *,
    walk_each_inbox: bool = True,
    keys_only: bool = False,
) -> Any:
    """The ``n`` newest conversations (id, last_activity_at, contact_id) meeting ``conditions``.

    Each inbox is walked along its (inbox_id, status, last_activity_at, id) or (inbox_id,
    last_activity_at, id) index and stops after ``n`` rows; several inboxes are merged with UNION ALL
    of such walks, so no request sorts a whole inbox. ``walk_each_inbox=False`` is for conditions that
    already pick a few conversations by id: one statement over all inboxes, sorted. ``keys_only``
    leaves out contact_id, so the walk reads the index alone.
    """
    c = CONVERSATIONS.c
    columns = (c.id, c.last_activity_at) if keys_only else (c.id, c.last_activity_at, c.contact_id)

    def walk(*where: Any) -> Any:
        return (
            select(*columns)
            .where(*where, *conditions)
            .order_by(c.last_activity_at.desc(), c.id.desc())
            .limit(n)
        )

    inboxes = sorted(inbox_ids)
    if len(inboxes) == 1:
        return walk(c.inbox_id == inboxes[0])
    if not walk_each_inbox:
        return walk(c.inbox_id.in_(inboxes))
    merged = union_all(*(select(walk(c.inbox_id == i).subquery()) for i in inboxes)).subquery()
    return (
        select(*(merged.c[col.name] for col in columns))
        .order_by(merged.c.last_activity_at.desc(), merged.c.id.desc())
        .limit(n)
    )


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.execute(stmt)).all())


async def _search_page(
    session: AsyncSession, f: ConversationFilter, conditions: list[Any], q: str, n: int
) -> list[Any]:
    """The first ``n`` conversations meeting ``conditions`` whose contact or any message contains ``q``
    (case-insensitive), newest activity first."""
    c = CONVERSATIONS.c
    pattern = _like(q.lower())
    text_term = len(q) >= MIN_TEXT_TERM
    like = (
        or_(_message_like(c.id, pattern), _contact_like(c.contact_id, pattern))
        if text_term
        else _contact_like(c.contact_id, pattern)
    )
    if session.bind.dialect.name != "sqlite":
        # PostgreSQL's planner picks between the trigram GIN indexes and the newest-first walk.
        return await _rows(session, _newest(f.inbox_ids, [*conditions, like], n))
    if not text_term:
        contact_ids = await _contact_like_probe(session, pattern)
        if contact_ids == []:
            return []
        match = like if contact_ids is None else c.contact_id.in_(contact_ids)
        return await _rows(
            session, _newest(f.inbox_ids, [*conditions, match], n, walk_each_inbox=contact_ids is None)
        )
    phrase = '"' + q.replace('"', '""') + '"'
    messages, contacts = (
        await session.execute(text(FTS_PROBE), {"q": phrase, "n": FTS_PROBE_LIMIT + 1})
    ).one()
    if messages == 0 and contacts == 0:
        return []
    by_fts = []
    if messages:
        matches = text(MESSAGE_MATCHES).bindparams(q=phrase).columns(column("rowid"))
        by_fts.append(c.id.in_(select(MESSAGES.c.conversation_id).where(MESSAGES.c.id.in_(matches))))
    if contacts:
        by_fts.append(c.contact_id.in_(text(CONTACT_MATCHES).bindparams(q=phrase).columns(column("rowid"))))
    if messages <= FTS_PROBE_LIMIT and contacts <= FTS_PROBE_LIMIT:
        return await _rows(
            session, _newest(f.inbox_ids, [*conditions, or_(*by_fts)], n, walk_each_inbox=False)
        )
    # A common term: LIKE on the newest SEARCH_WINDOW conversations (where the window ends is an
    # index-only walk), newest first ...
    edge = await _rows(
        session,
        _newest(f.inbox_ids, conditions, SEARCH_WINDOW, keys_only=True).limit(1).offset(SEARCH_WINDOW - 1),
    )
    if not edge:  # the filtered list is shorter than the window
        return await _rows(session, _newest(f.inbox_ids, [*conditions, like], n))
    edge_id, edge_at = edge[0][0], edge[0][1]
    rows = await _rows(session, _newest(f.inbox_ids, [*conditions, _not_older(edge_at, edge_id), like], n))
    if len(rows) >= n:
        return rows
    # ... and the FTS matches for the older ones.
    older = [*conditions, _older(edge_at, edge_id), or_(*by_fts)]
    return rows + await _rows(session, _newest(f.inbox_ids, older, n - len(rows), walk_each_inbox=False))


async def conversation_page(
    session: AsyncSession, f: ConversationFilter, limit: int, cursor: str | None
) -> tuple[list[int], str | None]:
    """Ids of one page of conversations, newest activity first, and the cursor of the next page.

    Only ids and sort keys are read here (Core rows, no ORM objects).
    """
    if not f.inbox_ids:
        return [], None
    conditions = _filters(f, cursor)
    q = (f.q or "").strip()
    if q:
        rows = await _search_page(session, f, conditions, q, limit + 1)
    else:
        rows = list((await session.execute(_newest(f.inbox_ids, conditions, limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        at: datetime = rows[-1][1]
        next_cursor = encode_cursor(at.isoformat(), rows[-1][0])
    return [int(r[0]) for r in rows], next_cursor


async def labels_for(session: AsyncSession, conversation_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {cid: [] for cid in conversation_ids}
    if conversation_ids:
        rows = await session.execute(
            select(LABELS.c.conversation_id, LABELS.c.label).where(
                LABELS.c.conversation_id.in_(conversation_ids)
            )
        )
        for cid, label in rows:
            out[cid].append(label)
    return out


async def list_by_id(
    session: AsyncSession,
    stmt: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """Id-ordered paging for messages, contacts, users and the like (ascending unless ``newest_first``)."""
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        if not isinstance(after, int):
            raise BadCursor("cursor is not one this server issued")
        stmt = stmt.where(id_column < after if newest_first else id_column > after)
    order = id_column.desc() if newest_first else id_column
    rows = list(await session.scalars(stmt.order_by(order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].id)
    return rows, next_cursor
