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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.db import Database
from inbox.tables import Event

_LOGGER = logging.getLogger(__name__)

# Arbitrary constant: the advisory lock that orders event-writing transactions on PostgreSQL.
_EVENT_LOCK_KEY = 0x5B0A
DRAIN_BATCH = 500
_EVENTS = cast(Table, Event.__table__)
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
# Several rows in one statement; the ids come back in the rows' order (the bus relies on it).
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)


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
    """Append one event to the log of the caller's transaction (``Database.write``).

    The rows are written just before the commit (``_write_events``: one statement on PostgreSQL), and
    then handed to the after-commit callbacks (EventBus.committed_here). The payload is serialized
    then, so pass a dict nothing changes afterwards.
    """
    pending: list[dict[str, Any]] | None = session.info.get("pending_events")
    if pending is None:
        pending = session.info["pending_events"] = []
        session.info.setdefault("before_commit", []).append(_write_events)
    pending.append(
        {
            "account_id": account_id,
            "type": type_,
            "inbox_id": inbox_id,
            "conversation_id": conversation_id,
            "payload": payload,
            "created_at": now,
        }
    )


async def _write_events(session: AsyncSession) -> None:
    rows: list[dict[str, Any]] = session.info.pop("pending_events")
    # Flush first: an UPDATE that waits for a row lock while this transaction holds the event lock
    # would deadlock with a transaction holding that row and waiting for the event lock at its commit.
    await session.flush()
    await hold_event_lock(session)
    ids: list[int]
    if len(rows) == 1:
        ids = [(await session.execute(_INSERT_EVENT, rows[0])).scalar_one()]
    else:  # one statement on PostgreSQL; SQLAlchemy runs it row by row on SQLite (ordered RETURNING)
        ids = list(await session.scalars(_INSERT_EVENTS, rows))
    # What Database.write hands to its after-commit callbacks. Never added to the session: an ORM
    # flush of new rows cost several times their INSERT.
    events = session.info["events"] = [Event(id=id_, **row) for id_, row in zip(ids, rows, strict=True)]
    for hook in session.info.get("on_events", ()):  # Database.on_events: work that commits with them
        await hook(session, events)


async def hold_event_lock(session: AsyncSession) -> None:
    """Take the event-order lock now (PostgreSQL; no-op elsewhere). Held until commit.

    ``_write_events`` takes it just before the commit, after every other lock of the transaction, and
    holds nothing else it could wait for: so it is held briefly and no lock order can deadlock on it.
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
        # Called synchronously with each event in id order; for fan-outs that index their own clients
        # (one listener per process instead of one queue per socket). A listener must not block.
        self._listeners: list[Callable[[LiveEvent], None]] = []
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

    def committed_here(self, rows: Sequence[Event]) -> None:
        """A commit in this process wrote ``rows``: fan them out, and tell the other processes.

        When they are the log's next ids (always, with one SQLite writer) they go out as they are,
        without reading them back; after a gap (another process wrote in between) the log is read.
        """
        ids = [row.id for row in rows]
        if ids == list(range(self._last_id + 1, self._last_id + 1 + len(ids))):
            for row in rows:
                self._deliver(event_view(row))
        else:
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

    def listen(self, listener: Callable[[LiveEvent], None]) -> None:
        """Call ``listener(event)`` for every event this process hands out, in id order."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[LiveEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

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
                if row.id > self._last_id:  # not handed out directly while this read ran
                    self._deliver(event_view(row))
            if len(rows) < DRAIN_BATCH:  # nothing more committed yet: no extra read to find out
                return

    def _deliver(self, view: LiveEvent) -> None:
        for sub in list(self._subscribers):
            if sub.account_id is not None and sub.account_id != view.account_id:
                continue
            try:
                sub.queue.put_nowait(view)
            except asyncio.QueueFull:
                sub.overflowed.set()
                self._subscribers.discard(sub)
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:  # one faulty listener must not stop the others or the bus
                _LOGGER.exception("event listener failed on event %s", view.id)
        self._last_id = view.id
