"""The event log and the live bus.

Events are rows written in the same transaction as the change they describe, so a committed change
always has its event and ``?after=<id>`` can replay from the table. After a commit the bus is poked;
one reader task per process fetches the new rows once and fans them out to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.db import Database
from inbox.tables import Event

_LOGGER = logging.getLogger(__name__)

# Arbitrary constant: the advisory lock that orders event-writing transactions on PostgreSQL.
_EVENT_LOCK_KEY = 0x5B0A
DRAIN_BATCH = 500


async def record_event(
    session: AsyncSession,
    type_: str,
    *,
    account_id: int,
    payload: dict[str, Any],
    now: datetime,
    inbox_id: int | None = None,
    conversation_id: int | None = None,
) -> None:
    """Append one event to the log inside the caller's transaction."""
    await hold_event_lock(session)
    session.add(
        Event(
            account_id=account_id,
            type=type_,
            inbox_id=inbox_id,
            conversation_id=conversation_id,
            payload=payload,
            created_at=now,
        )
    )
    session.info["events_written"] = True


async def hold_event_lock(session: AsyncSession) -> None:
    """Take the event-order lock now (PostgreSQL; no-op elsewhere). Held until commit.

    Code that takes other locks in an event-writing transaction (the quota's usage row) takes this one
    first, so every transaction locks in the same order and none deadlock.
    """
    if session.bind.dialect.name == "postgresql" and not session.info.get("event_lock"):
        # Sequence values are handed out before commit, so two transactions could commit ids 6 then 5
        # and a reader at 6 would never see 5. Holding this lock to commit keeps ids in commit order.
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _EVENT_LOCK_KEY})
        session.info["event_lock"] = True


@dataclass(frozen=True)
class LiveEvent:
    """An event as subscribers get it: serialized once, however many sockets it goes to."""

    id: int
    account_id: int
    inbox_id: int | None
    type: str
    json: str
    body: dict[str, Any]


def event_view(row: Event) -> LiveEvent:
    body = {
        "id": row.id,
        "type": row.type,
        "inbox_id": row.inbox_id,
        "conversation_id": row.conversation_id,
        "data": row.payload,
        "created_at": row.created_at.isoformat(),
    }
    return LiveEvent(
        row.id, row.account_id, row.inbox_id, row.type, json.dumps(body, separators=(",", ":")), body
    )


@dataclass(eq=False)
class Subscription:
    """One listener. ``overflowed`` is set when it fell too far behind; it should resume from the log."""

    account_id: int | None
    queue: asyncio.Queue[LiveEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class EventBus:
    """Fans committed events out to subscribers in this process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._last_id = 0
        self._task: asyncio.Task[None] | None = None
        self.on_poke: list[Callable[[], None]] = []  # e.g. Redis publish for other processes

    async def start(self) -> None:
        async with self._db.read() as session:
            self._last_id = (await session.scalar(select(func.max(Event.id)))) or 0
        self._task = asyncio.create_task(self._run(), name="event-bus")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Called after a commit that wrote events (here or, through Redis, in another process)."""
        self._wake.set()

    def poke_local_and_remote(self) -> None:
        self.poke()
        for callback in self.on_poke:
            callback()

    @property
    def last_id(self) -> int:
        return self._last_id

    def subscribe(self, account_id: int | None) -> Subscription:
        sub = Subscription(account_id)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    async def backlog(self, account_id: int, after: int, limit: int = 1000) -> list[LiveEvent]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(Event)
                .where(Event.account_id == account_id, Event.id > after)
                .order_by(Event.id)
                .limit(limit)
            )
            return [event_view(r) for r in rows]

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except Exception:  # keep the bus alive; the next poke retries from the same id
                _LOGGER.exception("event bus read failed")

    async def _drain(self) -> None:
        while True:
            async with self._db.read() as session:
                rows = list(
                    await session.scalars(
                        select(Event).where(Event.id > self._last_id).order_by(Event.id).limit(DRAIN_BATCH)
                    )
                )
            if not rows:
                return
            for row in rows:
                view = event_view(row)
                for sub in list(self._subscribers):
                    if sub.account_id is not None and sub.account_id != row.account_id:
                        continue
                    try:
                        sub.queue.put_nowait(view)
                    except asyncio.QueueFull:
                        sub.overflowed.set()
                        self._subscribers.discard(sub)
                self._last_id = row.id
            if len(rows) < DRAIN_BATCH:  # nothing more committed yet: no extra read to find out
                return
