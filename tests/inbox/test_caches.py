"""``Caches``: read once, dropped by the commits that change the rows (ORM or Core), never by a rolled
back write; a transaction sees its own changes; a value read across a commit is not kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.caches import Caches
from inbox.db import Database, sqlite_url
from inbox.schema import migrate


class Names:
    """Account names through the cache, counting the reads that reached the database."""

    def __init__(self, caches: Caches) -> None:
        self.caches = caches
        self.loads = 0
        self.pause: asyncio.Event | None = None  # a load that waits here after reading
        self.has_read = asyncio.Event()

    async def of(self, session: AsyncSession, account_id: int) -> str | None:
        async def load() -> str | None:
            self.loads += 1
            name = await session.scalar(select(t.Account.name).where(t.Account.id == account_id))
            self.has_read.set()
            if self.pause is not None:
                await self.pause.wait()
            return name

        return await self.caches.get(session, ("account_name", account_id), ("accounts",), load)


async def _store(tmp_path: Path, database_url: str | None) -> tuple[Database, int]:
    db = Database(database_url or sqlite_url(tmp_path))
    db.connect()
    await migrate(db)
    async with db.write() as session:
        account = t.Account(name="Acme", created_at=datetime.now(UTC))
        session.add(account)
        await session.flush()
        return db, account.id


async def test_read_once_then_dropped_by_a_committed_change_not_by_a_rolled_back_one(
    tmp_path: Path, database_url: str | None
):
    db, account_id = await _store(tmp_path, database_url)
    caches = Caches()
    caches.attach(db)
    names = Names(caches)
    try:
        for _ in range(3):
            async with db.read() as session:
                assert await names.of(session, account_id) == "Acme"
        assert names.loads == 1

        with pytest.raises(RuntimeError):
            async with db.write() as session:
                account = await session.get(t.Account, account_id)
                assert account is not None
                account.name = "Draft"
                await session.flush()
                assert await names.of(session, account_id) == "Draft"  # its own, uncommitted row
                raise RuntimeError("changed our mind")
        async with db.read() as session:
            assert await names.of(session, account_id) == "Acme"

        async with db.write() as session:  # an ORM change
            account = await session.get(t.Account, account_id)
            assert account is not None
            account.name = "Acme Ltd"
        async with db.read() as session:
            assert await names.of(session, account_id) == "Acme Ltd"

        async with db.write() as session:  # a Core statement
            await session.execute(update(t.Account).where(t.Account.id == account_id).values(name="Acme Inc"))
        async with db.read() as session:
            assert await names.of(session, account_id) == "Acme Inc"
            assert await names.of(session, account_id) == "Acme Inc"
        assert names.loads == 4  # once, its own row, after each of the two commits: the rollback kept it
    finally:
        caches.detach()
        await db.close()


async def test_a_value_read_before_a_commit_is_returned_but_not_kept(
    tmp_path: Path, database_url: str | None
):
    db, account_id = await _store(tmp_path, database_url)
    caches = Caches()
    caches.attach(db)
    names = Names(caches)
    try:
        names.pause = asyncio.Event()

        async def read() -> str | None:
            async with db.read() as session:
                return await names.of(session, account_id)

        slow = asyncio.create_task(read())
        await names.has_read.wait()  # the read has its row and waits on the pause
        async with db.write() as session:
            account = await session.get(t.Account, account_id)
            assert account is not None
            account.name = "Renamed"
        names.pause.set()
        assert await slow == "Acme"  # what it read, from before the commit
        names.pause = None
        async with db.read() as session:
            assert await names.of(session, account_id) == "Renamed"
    finally:
        caches.detach()
        await db.close()


async def test_writes_to_other_tables_keep_the_cache(tmp_path: Path):
    db, account_id = await _store(tmp_path, None)
    caches = Caches()
    caches.attach(db)
    names = Names(caches)
    try:
        async with db.read() as session:
            await names.of(session, account_id)
        drops = caches.drops
        async with db.write() as session:
            session.add(t.Setting(key="k", value={"v": 1}))
        async with db.read() as session:
            assert await names.of(session, account_id) == "Acme"
        assert (names.loads, caches.drops) == (1, drops)

        async def never() -> None:
            raise AssertionError("not read")

        with pytest.raises(ValueError, match="not watched"):
            async with db.read() as session:
                await caches.get(session, "x", ("messages",), never)
    finally:
        caches.detach()
        await db.close()
