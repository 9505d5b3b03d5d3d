"""``switchboard reports rebuild``: the facts (and their roll-ups) again from the stored event log.

The log is replayed through the same code that writes the facts live (``facts.record_facts``), so a
rebuild gives the facts live writing gave. Run it with the gateways stopped (like a migration):
events committed while it runs would be counted by both.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.db import Database
from reports.facts import HANDLED, record_facts

BATCH = 5000


async def rebuild(db: Database, *, batch: int = BATCH) -> int:
    """Delete every fact and replay the event log; returns how many events were replayed."""
    async with db.write() as session:
        for table in (t.ReportFact, t.ReportConversation, t.ReportRollup, t.ReportAgentDay):
            await session.execute(delete(table))
    async with db.read() as session:
        last = (await session.scalar(select(func.max(t.Event.id)))) or 0
    after, replayed, limit = 0, 0, batch
    while after < last:
        async with db.write() as session:
            events = list(
                await session.scalars(
                    select(t.Event)
                    .where(t.Event.id > after, t.Event.id <= last, t.Event.type.in_(HANDLED))
                    .order_by(t.Event.id)
                    .limit(limit)
                )
            )
            if not events:
                break
            full = len(events) == limit and events[-1].id < last
            if full:
                # The last transaction may go on past the batch: its events share their time.
                events = events[: _open_tail(events)]
                if not events:
                    limit *= 2  # one transaction longer than a batch: read further
                    continue
            cut = await _whole_transactions(session, events)
            if cut == 0 and full and await _created_later(session, events[0], last):
                limit *= 2
                continue
            events = events[: cut or len(events)]
            await record_facts(session, events)
        after, replayed, limit = events[-1].id, replayed + len(events), batch
    return replayed


def _open_tail(events: Sequence[t.Event]) -> int:
    """Where the events written at the last event's time begin (one write gives its events one time)."""
    index = len(events)
    while index > 0 and events[index - 1].created_at == events[-1].created_at:
        index -= 1
    return index


async def _whole_transactions(session: AsyncSession, events: Sequence[t.Event]) -> int:
    """How many of ``events`` to replay now: up to the first event of a conversation that is not
    followed yet and whose ``conversation.created`` the batch does not hold (its transaction was cut
    by the batch's end; live writing saw that event with the rest of its transaction)."""
    created = {e.conversation_id for e in events if e.type == "conversation.created"}
    others = {e.conversation_id for e in events if e.conversation_id is not None} - created
    if not others:
        return len(events)
    followed = set(
        await session.scalars(
            select(t.ReportConversation.conversation_id).where(
                t.ReportConversation.conversation_id.in_(others)
            )
        )
    )
    for index, e in enumerate(events):
        if e.conversation_id in others and e.conversation_id not in followed:
            return index
    return len(events)


async def _created_later(session: AsyncSession, first: t.Event, last: int) -> bool:
    """Whether the log opens ``first``'s conversation after it (else it is older than the log)."""
    found = await session.scalar(
        select(t.Event.id)
        .where(
            t.Event.conversation_id == first.conversation_id,
            t.Event.type == "conversation.created",
            t.Event.id > first.id,
            t.Event.id <= last,
        )
        .limit(1)
    )
    return found is not None
