"""The system-mail sender stops when asked, also when mail was queued in the same instant."""

from __future__ import annotations

import asyncio
from pathlib import Path

from inbox.db import Database, utcnow
from inbox.mail import MailQueue
from inbox.schema import migrate


async def test_stop_right_after_a_poke_ends_the_sender(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    db.connect()
    await migrate(db)
    queue = MailQueue(db, None, utcnow, rescan_seconds=3600)
    try:
        await queue.start()
        for _ in range(20):  # loop turns (no time passes): the sender ran its start-up pass and waits
            await asyncio.sleep(0)
        # A commit queued mail (poke) and shutdown began in the same loop turn. With asyncio.wait_for
        # on 3.11 the sender swallowed that cancel and waited for its next wake: stop() hung (that
        # was the hang seen in CI).
        queue.poke()
        stopping = asyncio.create_task(queue.stop())
        done, _ = await asyncio.wait({stopping}, timeout=10)
        assert stopping in done, "stop() did not end the mail sender"
    finally:
        await db.close()
