"""aiosqlite's connection interface, run on the event loop's own thread (every SQLite connection).

Why: through aiosqlite every statement is four hand-offs to its thread (cursor, execute, fetch,
close); an inbound message runs ~17 statements, so ~70 thread wake-ups and GIL hand-backs, which cost
more CPU than the SQL itself. Inside a write transaction SQLite never waits for anyone else (WAL: the
one writer holds the write lock from ``BEGIN IMMEDIATE`` to commit, readers don't block it, and
checkpoints run elsewhere, see ``Checkpointer``), and WAL readers never wait for the writer, so each
statement is a few microseconds of C and can run inline. The price: a long query (a search over
millions of rows) holds the loop for its duration; the inbox queries are built to stop after a page.

The statement that can wait is ``BEGIN IMMEDIATE`` itself, when another *process* (a CLI command, a
second embedded process) holds the write lock. Statements run inline with no busy timeout; only one
that finds a lock taken (SQLITE_BUSY) is retried, in SQLite's busy handler, on a worker thread, so
the loop keeps serving while it waits.

SQLAlchemy's aiosqlite dialect takes this object through ``create_async_engine(async_creator=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

BUSY_TIMEOUT_MS = 30_000
_LOGGER = logging.getLogger(__name__)


class InlineCursor:
    """The subset of ``aiosqlite.Cursor`` SQLAlchemy's adapter calls."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        try:
            self._cursor.execute(sql, parameters or ())
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # also BUSY_RECOVERY etc.
                raise
            # The lock is taken (by another process): do what SQLite's busy handler does, retry the
            # statement until it gets the lock, but on a worker thread instead of on the loop.
            await asyncio.to_thread(self._execute_waiting, sql, parameters or ())
        return self

    def _execute_waiting(self, sql: str, parameters: Sequence[Any]) -> None:
        conn = self._cursor.connection
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            self._cursor.execute(sql, parameters)
        finally:
            conn.execute("PRAGMA busy_timeout=0")

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` SQLAlchemy's adapter calls, without the thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await InlineCursor(self._conn.cursor()).execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()


async def connect(path: str) -> InlineConnection:
    """Open ``path`` with pysqlite's implicit transactions off (we issue BEGIN ourselves).

    The busy timeout is 0: nothing may wait on the loop's thread (see ``InlineCursor.execute``).
    """
    # check_same_thread is off only for the BEGIN hand-off above; the connection is never used by two
    # threads at once (the pool hands it to one session, and that session awaits the BEGIN).
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA wal_autocheckpoint=0")  # Checkpointer does it off the loop
    return InlineConnection(conn)


class Checkpointer:
    """Copies the WAL back into the database file on a worker thread, every ``every`` commits.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, with an fsync:
    on the loop's thread that stalled every connection for tens of milliseconds. Connections from
    ``connect`` have it off; this checkpoints on its own connection instead, holding the writers' lock
    so that it completes (and the next write starts the WAL over instead of growing it). Writers wait
    meanwhile, as they did for the automatic one; the loop and readers don't.
    """

    def __init__(self, path: str, write_lock: asyncio.Lock, every: int = 200) -> None:
        self._path = path
        self._write_lock = write_lock
        self._every = every
        self._commits = 0
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= self._every and (self._running is None or self._running.done()):
            self._commits = 0
            self._running = asyncio.create_task(self._run(), name="sqlite-checkpoint")

    async def _run(self) -> None:
        try:
            async with self._write_lock:
                await asyncio.to_thread(self._checkpoint)
        except sqlite3.Error:  # the next one catches up; the WAL only grows meanwhile
            _LOGGER.exception("WAL checkpoint failed")

    def _checkpoint(self) -> None:
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    async def close(self) -> None:
        if self._running is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
            self._running = None
