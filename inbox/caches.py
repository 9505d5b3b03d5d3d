"""Rows the hot paths read on every message but that change rarely, read once per process.

Channels' settings, templates, routing rules, assignment policies, consent keyword sets, webhook
subscriptions: each entry names the tables it was read from, and a commit that wrote any of them drops
it. Writes are seen on the database's write engine (every ``INSERT``/``UPDATE``/``DELETE`` statement,
ORM or Core, names its table), so no write site has to remember to invalidate. Other processes learn
of a commit through ``on_commit`` (the gateway publishes it on Redis and calls ``drop`` on the others).

Exactness is kept by reading around a write, never through it:

- a transaction that wrote one of an entry's tables reads its own rows, not the cache;
- every commit drops twice, when it starts (``commit``) and once its connection is back in the pool
  (the commit finished), and a load that overlapped a drop is returned but not kept. So a value read
  before a commit is never kept after it.

Counting that must be exact (quota usage, tiers, dedupe) is never cached here.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from inbox.db import Database

T = TypeVar("T")

# Entries kept per process; the least recently used go first (a template or a channel per entry).
MAX_ENTRIES = 20_000
# The tables entries may be read from. Only commits that write one of these drop anything or are
# published to other processes: the hot paths' own writes (messages, events...) cost nothing here.
CACHED_TABLES = frozenset(
    {
        "accounts",
        "agent_profiles",
        "assignment_policies",
        "bot_flows",
        "channels",
        "inbox_members",
        "inboxes",
        "message_templates",
        "notification_preferences",
        "routing_rules",
        "team_members",
        "teams",
        "users",
        "webhook_subscriptions",
    }
)
_DIRTY = "caches.dirty"  # tables the connection's transaction wrote
_COMMITTED = "caches.committed"  # tables a committed transaction wrote, dropped again at check-in


class Caches:
    """A process's cache of rarely changing rows, dropped by the commits that change them."""

    def __init__(self, tables: frozenset[str] = CACHED_TABLES, max_entries: int = MAX_ENTRIES) -> None:
        self.tables = tables
        self._max = max_entries
        self._entries: OrderedDict[Hashable, tuple[frozenset[str], Any]] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._attached: list[tuple[Any, str, Callable[..., None]]] = []
        # Called after a local commit that wrote watched tables, with their names (publish them).
        self.on_commit: list[Callable[[frozenset[str]], None]] = []
        self.drops = 0  # how many drops reached this process (tests wait on ``wait_drops``)
        # While held (another process's changes cannot reach us: Redis down), nothing is kept.
        self._held = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- reading ------------------------------------------------------------------------------------

    async def get(
        self,
        session: AsyncSession,
        key: Hashable,
        tables: Iterable[str],
        load: Callable[[], Awaitable[T]],
    ) -> T:
        """The value under ``key``, else ``load()`` (read from ``tables``) kept for the next caller.

        ``load`` reads in ``session``; the value must not be changed by callers (share frozen data).
        """
        names = frozenset(tables)
        if not names <= self.tables:
            raise ValueError(f"not watched for changes: {sorted(names - self.tables)}")
        conn = await session.connection()
        dirty: set[str] | None = conn.sync_connection.info.get(_DIRTY) if conn.sync_connection else None
        if dirty and not dirty.isdisjoint(names):
            return await load()  # this transaction changed them: its own rows, uncommitted
        if self._held:
            return await load()
        found = self._entries.get(key)
        if found is not None and found[0] == names:
            self._entries.move_to_end(key)
            value: T = found[1]
            return value
        before = self._generations(names)
        value = await load()
        if self._generations(names) == before:
            self._entries[key] = (names, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def _generations(self, names: frozenset[str]) -> tuple[int, ...]:
        return tuple(self._generation.get(n, 0) for n in sorted(names))

    # -- dropping -----------------------------------------------------------------------------------

    def drop(self, tables: Iterable[str] | None = None) -> None:
        """Forget every entry read from any of ``tables`` (None: everything)."""
        if tables is None:
            names = frozenset(n for deps, _ in self._entries.values() for n in deps) | set(self._generation)
            self._entries.clear()
        else:
            names = frozenset(tables)
            for key in [k for k, (deps, _) in self._entries.items() if not deps.isdisjoint(names)]:
                del self._entries[key]
        for name in names:
            self._generation[name] = self._generation.get(name, 0) + 1
        self.drops += 1
        for waiter in [w for w in self._waiters if w[0] <= self.drops]:
            self._waiters.remove(waiter)
            if not waiter[1].done():
                waiter[1].set_result(None)

    def hold(self) -> None:
        """Stop keeping values (and forget them) until ``release``: changes elsewhere may be missed."""
        self._held = True
        self.drop()

    def release(self) -> None:
        """Keep values again (another process's changes reach ``drop`` from now on)."""
        self.drop()
        self._held = False

    async def wait_drops(self, count: int) -> None:
        """Until ``drops`` reaches ``count`` (a test waits for another process's change to arrive)."""
        if self.drops >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await future

    # -- watching the write engine ------------------------------------------------------------------

    def attach(self, db: Database) -> None:
        """Watch ``db``'s write engine (after ``db.connect()``): its commits drop what they wrote."""
        self.detach()
        engine = db.engine.sync_engine
        for name, fn in (
            ("after_execute", self._on_execute),
            ("commit", self._on_commit),
            ("rollback", self._on_rollback),
            ("checkin", self._on_checkin),
        ):
            event.listen(engine, name, fn)
            self._attached.append((engine, name, fn))
        self.drop()  # whatever was read before (a restart) may have changed meanwhile

    def detach(self) -> None:
        for target, name, fn in self._attached:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)
        self._attached.clear()

    def _on_execute(self, conn: Connection, clause: Any, *_args: Any) -> None:
        if isinstance(clause, UpdateBase):
            table = getattr(clause, "table", None)
            name = getattr(table, "name", None)
            if name in self.tables:
                conn.info.setdefault(_DIRTY, set()).add(name)

    def _on_commit(self, conn: Connection) -> None:
        dirty: set[str] | None = conn.info.pop(_DIRTY, None)
        if dirty:
            conn.info.setdefault(_COMMITTED, set()).update(dirty)
            self.drop(dirty)

    def _on_rollback(self, conn: Connection) -> None:
        # A connection invalidated mid-statement (a cancelled query) cannot reach ``info``: it raises
        # PendingRollbackError inside SQLAlchemy's own rollback. Nothing of it committed, and a stale
        # dirty set only drops entries that would have stayed.
        if conn.invalidated:
            return
        conn.info.pop(_DIRTY, None)

    def _on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        committed: set[str] | None = record.info.pop(_COMMITTED, None)
        if committed:
            self.drop(committed)  # the commit has finished: a load that overlapped it is not kept
            names = frozenset(committed)
            for callback in self.on_commit:
                callback(names)
