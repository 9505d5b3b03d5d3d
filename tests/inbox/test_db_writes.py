"""``Database.write()``: it refuses to nest in one task instead of deadlocking on its own SQLite lock;
on SQLite (statements on the loop's thread) a write that finds the file locked by someone else waits
for them without failing and without stalling the loop; a failed write leaves nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from inbox import tables as t
from inbox.db import Database, sqlite_url
from inbox.schema import migrate


async def _db(tmp_path: Path) -> Database:
    db = Database(sqlite_url(tmp_path))
    db.connect()
    await migrate(db)
    return db


def _account(name: str) -> t.Account:
    return t.Account(name=name, created_at=datetime.now(UTC))


async def _account_names(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(t.Account.name).order_by(t.Account.id)))


async def test_a_write_nested_in_the_same_task_fails_loudly_and_rolls_back(tmp_path: Path):
    db = await _db(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="inside a write"):
            async with db.write() as session:
                session.add(_account("Outer"))
                await session.flush()
                async with db.write():  # e.g. a hook that opens its own transaction
                    pass
        assert await _account_names(db) == []  # the outer transaction rolled back whole

        async with db.write() as session:  # the lock was released: writing goes on
            session.add(_account("After"))
        assert await _account_names(db) == ["After"]
    finally:
        await db.close()


async def test_writes_from_different_tasks_queue_instead_of_failing(tmp_path: Path):
    db = await _db(tmp_path)
    try:

        async def add(name: str) -> None:
            async with db.write() as session:
                session.add(_account(name))

        async with db.write() as session:  # holds the lock while the other tasks queue for it
            session.add(_account("First"))
            others = [asyncio.create_task(add(f"Queued {n}")) for n in range(3)]
        await asyncio.gather(*others)
        assert await _account_names(db) == ["First", "Queued 0", "Queued 1", "Queued 2"]
    finally:
        await db.close()


async def test_a_write_waits_for_another_writer_while_the_loop_keeps_serving(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.connect()
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE notes (body TEXT)"))
        # Another process (here: another connection) holds the write lock.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO notes VALUES ('theirs')")

        async def write_mine() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO notes VALUES ('mine')"))

        writer = asyncio.create_task(write_mine())
        for _ in range(3):  # let the writer reach its BEGIN and find the lock taken
            await asyncio.sleep(0)
        # The loop still serves: a read completes (WAL readers don't wait for the writer) ...
        async with db.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 0
        assert not writer.done()  # ... while the write is still waiting, not failed

        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writer, 30)
        async with db.read() as session:
            rows = (await session.execute(text("SELECT body FROM notes ORDER BY rowid"))).scalars()
            assert list(rows) == ["theirs", "mine"]
    finally:
        await db.close()


async def test_a_failed_write_leaves_nothing_and_the_next_one_works(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    db.connect()
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE notes (body TEXT NOT NULL)"))
        try:
            async with db.write() as session:
                await session.execute(text("INSERT INTO notes VALUES ('kept?')"))
                await session.execute(text("INSERT INTO notes VALUES (NULL)"))
        except Exception as error:
            assert "NOT NULL" in str(error)
        else:
            raise AssertionError("the NULL insert should have failed")
        async with db.write() as session:
            await session.execute(text("INSERT INTO notes VALUES ('next')"))
        async with db.read() as session:
            rows = (await session.execute(text("SELECT body FROM notes"))).scalars()
            assert list(rows) == ["next"]
    finally:
        await db.close()
