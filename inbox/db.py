"""Engine and transactions for SQLite (embedded default) and PostgreSQL (scale-out).

``Database.write()`` is the one way to change records. On SQLite it begins ``IMMEDIATE`` so writers
queue for the lock instead of failing a read-to-write upgrade (SQLITE_BUSY_SNAPSHOT); on PostgreSQL
exactness comes from row locks taken by the code that counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Executable, Insert, Row, Table, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import class_mapper, make_transient_to_detached

from inbox import sqlite_inline

Clock = Callable[[], datetime]
_Row = TypeVar("_Row")


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs and pick the async drivers."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'switchboard.sqlite3'}"


class Database:
    """Owns the engine. Created cheaply; ``connect()`` opens it, ``close()`` disposes it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None
        self._checkpointer: sqlite_inline.Checkpointer | None = None
        # Events are published after commit: each callback gets the event rows a write committed.
        self.after_commit: list[Callable[[Sequence[Any]], None]] = []
        # Called inside the transaction, right after its event rows were inserted (with their ids), for
        # work that must commit or roll back with the events: webhook deliveries, report facts. A hook
        # may write rows; it must not record events (the log of this transaction is already written).
        self.on_events: list[Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]] = []
        # SQLite has one writer. Queuing writers here (FIFO, no polling) instead of in SQLite's busy
        # handler, which sleeps in growing steps, keeps write latency flat under concurrency.
        self._write_lock = asyncio.Lock()
        self._writers: set[asyncio.Task[Any]] = set()  # tasks inside write(): see the guard there

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database.connect() was not called")
        return self._engine

    def connect(self) -> None:
        if self._engine is not None:
            return
        if self.is_sqlite:
            # Two engines on one file, both on the loop's thread (sqlite_inline): writers BEGIN
            # IMMEDIATE, readers stay deferred (WAL lets them read while a writer works).
            path = make_url(self.url).database or ""
            engine = create_async_engine(
                self.url, async_creator=lambda: sqlite_inline.connect(path), echo=self._echo
            )
            _sqlite_tuning(engine, begin="BEGIN IMMEDIATE")
            read_engine = create_async_engine(
                self.url, async_creator=lambda: sqlite_inline.connect(path), echo=self._echo
            )
            _sqlite_tuning(read_engine, begin="BEGIN")
            self._checkpointer = sqlite_inline.Checkpointer(path, self._write_lock)
        else:
            engine = read_engine = create_async_engine(
                self.url, echo=self._echo, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
        self._engine = engine
        self._read_engine = read_engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(read_engine, expire_on_commit=False)

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.close()
        if self._read_engine is not None and self._read_engine is not self._engine:
            await self._read_engine.dispose()
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = self._read_engine = None
        self._sessions = self._read_sessions = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries. Nothing is committed."""
        assert self._read_sessions is not None, "Database.connect() was not called"
        async with self._read_sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction: commits on success, rolls back whole on any exception."""
        assert self._sessions is not None, "Database.connect() was not called"
        # asyncio.Lock is not re-entrant: a write() nested in the same task (a hook, a callback) would
        # wait for itself for ever on SQLite, and be a second, separate transaction on PostgreSQL.
        task = asyncio.current_task()
        if task is not None and task in self._writers:
            raise RuntimeError("Database.write() inside a write() of the same task: pass its session down")
        async with contextlib.AsyncExitStack() as stack:
            if task is not None:
                self._writers.add(task)
                stack.callback(self._writers.discard, task)
            if self.is_sqlite:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._sessions())
            if self.on_events:
                session.info["on_events"] = self.on_events
            try:
                yield session
                # Work a transaction queued for its end (the event log's rows: inbox.events).
                for step in session.info.pop("before_commit", ()):
                    await step(session)
                await session.commit()
                if self._checkpointer is not None:
                    self._checkpointer.committed()
            except BaseException:
                await asyncio.shield(session.rollback())
                raise
        events = session.info.get("events")
        if events:
            for callback in self.after_commit:
                callback(events)


def _sqlite_tuning(engine: AsyncEngine, *, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite_inline opened it with pysqlite's implicit transactions off: we issue BEGIN ourselves.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight on the driver's cursor: through exec_driver_sql it cost more than the statement.
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(begin)
        cursor.close()


async def first_row_once(
    session: AsyncSession, key: tuple[Any, ...], statement: Executable, params: dict[str, Any]
) -> Row[Any] | None:
    """The first row of a Core read, read once per transaction under ``key`` (``session.info``).

    For rows a transaction asks for again and again without changing them (a broadcast gates many
    sends of one template, on one account, in one transaction).
    """
    if key in session.info:
        cached: Row[Any] | None = session.info[key]
        return cached
    conn = await session.connection()
    row = (await conn.execute(statement, params)).first()
    session.info[key] = row
    return row


def insert_returning(table: Table) -> Insert:
    """The statement ``insert_now`` runs for rows of ``table``: build it once, next to its use."""
    return insert(table).returning(*table.c)


async def insert_now(session: AsyncSession, obj: _Row, statement: Insert) -> _Row:
    """INSERT a new ORM object with one Core statement and attach it to the session as loaded.

    The ORM flush of one new row cost several times its INSERT (bench/README.md, profile). Column
    defaults apply as in a flush (the row comes back whole); afterwards ``obj`` is persistent, so
    changes to it are flushed as UPDATEs like those of any row read from the database.
    """
    mapper = class_mapper(type(obj))
    values = {
        prop.columns[0].key: value
        for prop in mapper.column_attrs
        if (value := getattr(obj, prop.key)) is not None
    }
    conn = await session.connection()  # Core, not the session's ORM execution path
    row = (await conn.execute(statement, values)).one()._mapping
    for prop in mapper.column_attrs:
        setattr(obj, prop.key, row[prop.columns[0]])
    make_transient_to_detached(obj)
    session.add(obj)
    return obj
