"""The embedded SQLite store runs statements on the loop's thread; a write that finds the file locked
by someone else waits for them without failing and without stalling the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from inbox.db import Database


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
