"""``Database.write()`` refuses to nest in one task instead of deadlocking on its own SQLite lock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

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
