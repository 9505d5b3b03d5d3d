"""The event log's rows are written at commit: in the order recorded, handed to the after-commit
callbacks with their ids, never for a rolled-back transaction; on PostgreSQL a transaction waiting for a
row lock cannot deadlock with its event ids, and event writers never wait for each other while readers
still get every id in order (docs/event-order.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from inbox import tables as t
from inbox.db import Database, sqlite_url
from inbox.events import EventBus, record_event
from inbox.schema import migrate


async def _db(url: str) -> Database:
    db = Database(url)
    db.connect()
    await migrate(db)
    return db


async def _new_account(db: Database, name: str) -> int:
    async with db.write() as session:
        account = t.Account(name=name, created_at=datetime.now(UTC))
        session.add(account)
        await session.flush()
        return account.id


async def _log(db: Database) -> list[tuple[int, str, str]]:
    async with db.read() as session:
        rows = await session.execute(select(t.Event.id, t.Event.type, t.Event.payload).order_by(t.Event.id))
        return [(id_, type_, payload["n"]) for id_, type_, payload in rows]


@pytest.fixture
async def db(database_url: str | None, tmp_path: Path):
    database = await _db(database_url or sqlite_url(tmp_path))
    yield database
    await database.close()


async def test_events_are_written_in_the_order_recorded_and_handed_over_with_their_ids(db: Database):
    account_id = await _new_account(db, "a")
    handed: list[list[tuple[int, str]]] = []
    db.after_commit.append(lambda rows: handed.append([(r.id, r.type) for r in rows]))
    now = datetime.now(UTC)

    async with db.write() as session:
        for n in ("first", "second", "third"):
            await record_event(session, f"test.{n}", account_id=account_id, payload={"n": n}, now=now)
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await record_event(session, "test.lost", account_id=account_id, payload={"n": "lost"}, now=now)
            raise RuntimeError("roll back")
    async with db.write() as session:
        await record_event(session, "test.fourth", account_id=account_id, payload={"n": "fourth"}, now=now)

    log = await _log(db)
    assert [n for _, _, n in log] == ["first", "second", "third", "fourth"]
    assert handed == [[(id_, type_) for id_, type_, _ in log[:3]], [(log[3][0], log[3][1])]]


async def test_on_events_hooks_write_in_the_events_transaction_and_roll_back_with_it(db: Database):
    account_id = await _new_account(db, "before")
    seen: list[list[tuple[int, str]]] = []

    async def rename(session, events) -> None:  # a hook's rows commit (or not) with the events
        seen.append([(e.id, e.type) for e in events])
        account = await session.get(t.Account, account_id)
        account.name = f"after {events[-1].type}"

    db.on_events.append(rename)
    now = datetime.now(UTC)
    async with db.write() as session:
        await record_event(session, "test.kept", account_id=account_id, payload={"n": "kept"}, now=now)
    db.on_events.append(_refuse)
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await record_event(session, "test.lost", account_id=account_id, payload={"n": "lost"}, now=now)

    log = await _log(db)
    assert [n for _, _, n in log] == ["kept"]
    assert seen[0] == [(log[0][0], "test.kept")] and len(seen) == 2
    async with db.read() as session:
        assert await session.scalar(select(t.Account.name).where(t.Account.id == account_id)) == (
            "after test.kept"
        )


async def _refuse(session, events) -> None:
    raise RuntimeError("a hook that fails rolls the whole transaction back")


async def test_a_row_lock_held_by_another_transaction_does_not_deadlock_the_events(pg_url: str):
    """T2 holds the account row; T1, which recorded an event and changed that row, commits and has to
    wait for it. T2 then records an event and commits. Nothing about the events may make T2 wait for
    T1 (PostgreSQL would abort one of them as a deadlock), and T1's event ids are taken after its
    UPDATE got the row: so they follow T2's."""
    db = await _db(pg_url)
    try:
        account_id = await _new_account(db, "before")
        now = datetime.now(UTC)
        t2_holds_row, t2_may_commit = asyncio.Event(), asyncio.Event()

        async def t1() -> None:
            await t2_holds_row.wait()
            async with db.write() as session:
                await record_event(session, "test.t1", account_id=account_id, payload={"n": "t1"}, now=now)
                account = await session.get(t.Account, account_id)
                assert account is not None
                account.name = "renamed by t1"  # flushed at commit: waits for T2's row lock

        async def t2() -> None:
            async with db.write() as session:
                await session.execute(select(t.Account).where(t.Account.id == account_id).with_for_update())
                t2_holds_row.set()
                await t2_may_commit.wait()
                await record_event(session, "test.t2", account_id=account_id, payload={"n": "t2"}, now=now)

        async def t1_waits_for_a_lock() -> None:
            # Condition wait: PostgreSQL shows T1's UPDATE queued behind T2's row lock.
            async with db.read() as session:
                while not await session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                    await session.rollback()  # a fresh snapshot of pg_locks each time

        async with asyncio.timeout(60):
            first, second = asyncio.create_task(t1()), asyncio.create_task(t2())
            await t2_holds_row.wait()
            await t1_waits_for_a_lock()
            t2_may_commit.set()
            await asyncio.gather(first, second)

        assert [n for _, _, n in await _log(db)] == ["t2", "t1"]  # commit order
        async with db.read() as session:
            assert await session.scalar(select(t.Account.name).where(t.Account.id == account_id)) == (
                "renamed by t1"
            )
    finally:
        await db.close()


async def test_concurrent_event_writers_do_not_wait_and_a_reader_never_skips_a_late_commit(pg_url: str):
    """B starts writing first (its transaction id is the older one); A then takes event id 1 and stays
    open; B takes id 2 and commits without waiting for A. Until A commits no reader gets 2 (a reader
    that did would never see 1, and B's older transaction id does not make 2 safe to read); after it,
    every reader gets 1 then 2."""
    db = await _db(pg_url)
    bus = EventBus(db)
    try:
        account_id = await _new_account(db, "a")
        db.after_commit.append(bus.committed_here)
        await bus.start()
        sub = bus.subscribe(account_id)
        now = datetime.now(UTC)
        b_has_written, a_holds_its_id, a_may_commit = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def pause_a(session, events) -> None:  # runs right after A's event row is inserted
            if events[0].type == "test.a":
                a_holds_its_id.set()
                await a_may_commit.wait()

        db.on_events.append(pause_a)

        async def a() -> None:
            async with db.write() as session:
                await record_event(session, "test.a", account_id=account_id, payload={"n": "a"}, now=now)

        async def b() -> None:
            async with db.write() as session:
                account = await session.get(t.Account, account_id)
                assert account is not None
                account.name = "renamed by b"
                await session.flush()  # B's transaction id is taken here, before A's
                b_has_written.set()
                await a_holds_its_id.wait()
                await record_event(session, "test.b", account_id=account_id, payload={"n": "b"}, now=now)

        async with asyncio.timeout(60):
            b_task = asyncio.create_task(b())
            await b_has_written.wait()
            a_task = asyncio.create_task(a())
            await b_task  # with a cluster-wide event lock B would wait for A for ever
            assert [n for _, _, n in await _log(db)] == ["b"]  # committed, with the higher id
            assert await bus.backlog(account_id, 0) == []
            assert sub.queue.empty()

            a_may_commit.set()
            await a_task
            log = await _log(db)
            assert [n for _, _, n in log] == ["a", "b"]
            assert [e.id for e in await bus.backlog(account_id, 0)] == [log[0][0], log[1][0]]
            assert [(await sub.queue.get()).id, (await sub.queue.get()).id] == [log[0][0], log[1][0]]
    finally:
        await bus.stop()
        await db.close()
