"""The event log and the live bus.

Events are rows written in the same transaction as the change they describe, so a committed change
always has its event and ``?after=<id>`` can replay from the table. After a commit the bus is poked;
one reader task per process fetches the new rows once and fans them out to every subscriber.

On PostgreSQL writers never wait for each other to write events; readers only read ids below the
commit horizon (``CommitHorizon``), so ``?after=`` stays gap-free and in id order
(docs/event-order.md has the argument).
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

from sqlalchemy import Select, Table, bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.db import Database
from inbox.tables import Event

_LOGGER = logging.getLogger(__name__)

DRAIN_BATCH = 500
# How often a bus that is behind the commit horizon looks again (it also looks on every poke).
HORIZON_RETRY = (0.002, 0.1)
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
    # The transaction's other writes first, then its event ids: ids are handed out as late as possible,
    # so they are close to commit order and the commit horizon moves soon after.
    await session.flush()
    if session.bind.dialect.name == "postgresql":
        # The transaction id exists before the event ids are taken: CommitHorizon relies on it.
        await session.execute(_ASSIGN_XID)
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


_ASSIGN_XID = text("SELECT pg_current_xact_id()::text::bigint")
_LAST_EVENT_ID = text("SELECT coalesce(pg_sequence_last_value('events_id_seq'::regclass), 0)")
_XMIN = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


class CommitHorizon:
    """PostgreSQL: the event id at and below which every event has committed or never will.

    A writer takes its transaction id before its event ids. A reader reads the last id handed out
    (``L``), then takes a transaction id of its own (``X``): every writer holding an id up to ``L`` has
    a smaller one. Once the oldest running transaction (a snapshot's xmin) is ``X`` or later, all of
    them have ended, and no event up to ``L`` can still appear. Readers read only up to ``settled``: an
    id that commits late is never skipped, and writers never wait for one another. The statements run
    in this order on a READ COMMITTED session (the default), each with a new snapshot.
    """

    def __init__(self) -> None:
        self.settled = 0
        self._pending: tuple[int, int] | None = None  # (L, X) still waiting for xmin to reach X
        self._lock = asyncio.Lock()

    async def advance(self, session: AsyncSession) -> bool:
        """Move ``settled`` as far as the database allows now. True when it reached the last id."""
        async with self._lock:
            if self._pending is not None:
                if int(await session.scalar(_XMIN) or 0) < self._pending[1]:
                    return False  # a writer that may hold an id up to L still runs
                self.settled = max(self.settled, self._pending[0])
                self._pending = None
            last = int(await session.scalar(_LAST_EVENT_ID) or 0)
            if last <= self.settled:
                return True
            mine = int(await session.scalar(_ASSIGN_XID) or 0)
            if int(await session.scalar(_XMIN) or 0) >= mine:  # every writer before this read has ended
                self.settled = last
                return True
            self._pending = (last, mine)
            return False


_DRAIN = select(Event).where(Event.id > bindparam("after")).order_by(Event.id).limit(DRAIN_BATCH)
_DRAIN_TO = (
    select(Event)
    .where(Event.id > bindparam("after"), Event.id <= bindparam("cap"))
    .order_by(Event.id)
    .limit(DRAIN_BATCH)
)


def _max_id(horizon: CommitHorizon | None) -> Select[tuple[int]]:
    query = select(func.max(Event.id))
    return query if horizon is None else query.where(Event.id <= horizon.settled)


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
        self._behind = False  # the last drain stopped at the commit horizon (PostgreSQL)
        self._last_id = 0
        self._horizon = None if db.is_sqlite else CommitHorizon()
        self._task: asyncio.Task[None] | None = None
        self.on_poke: list[Callable[[], None]] = []  # e.g. Redis publish for other processes

    async def start(self) -> None:
        if self._horizon is not None:
            # Start past the log's settled end, so an event committing now is handed out, not lost.
            delay = HORIZON_RETRY[0]
            while not await self._advance():
                await asyncio.sleep(delay)  # a writer was running: it ends within its transaction
                delay = min(delay * 2, HORIZON_RETRY[1])
        async with self._db.read() as session:
            self._last_id = (await session.scalar(_max_id(self._horizon))) or 0
        self._task = asyncio.create_task(self._run(), name="event-bus")

    async def _advance(self) -> bool:
        assert self._horizon is not None
        async with self._db.read() as session:
            return await self._horizon.advance(session)

    def _cap(self) -> int | None:
        """The highest id a reader may read now (None: every committed row; SQLite's ids commit in order).

        Ids up to what the bus handed out are settled too: those handed out as a contiguous run after
        a commit (``committed_here``) may be past the horizon it last read."""
        return None if self._horizon is None else max(self._horizon.settled, self._last_id)

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
        """An account's events after ``after``, in id order, up to the commit horizon."""
        async with self._db.read() as session:
            if self._horizon is not None:
                await self._horizon.advance(session)
            query = select(Event).where(Event.account_id == account_id, Event.id > after)
            cap = self._cap()
            if cap is not None:
                query = query.where(Event.id <= cap)
            rows = await session.scalars(query.order_by(Event.id).limit(limit))
            return [event_view(r) for r in rows]

    async def _run(self) -> None:
        delay = HORIZON_RETRY[0]
        while True:
            if self._behind:  # events may be waiting for the horizon: look again soon, poke or not
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                delay = min(delay * 2, HORIZON_RETRY[1])
            else:
                await self._wake.wait()
                delay = HORIZON_RETRY[0]
            self._wake.clear()
            try:
                self._behind = not await self._drain()
            except Exception:  # keep the bus alive; the next poke retries from the same id
                _LOGGER.exception("event bus read failed")

    async def _drain(self) -> bool:
        """Hand out what committed after ``last_id``. False when the horizon held some ids back."""
        while True:
            async with self._db.read() as session:
                settled = True if self._horizon is None else await self._horizon.advance(session)
                cap = self._cap()
                if cap is None:
                    rows = list(await session.scalars(_DRAIN, {"after": self._last_id}))
                elif cap > self._last_id:
                    rows = list(await session.scalars(_DRAIN_TO, {"after": self._last_id, "cap": cap}))
                else:
                    return settled
            for row in rows:
                if row.id > self._last_id:  # not handed out directly while this read ran
                    self._deliver(event_view(row))
            if len(rows) < DRAIN_BATCH:  # nothing more committed yet: no extra read to find out
                return settled

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
