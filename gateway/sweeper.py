"""Finds sends whose job was lost and enqueues them again (scale-out only).

A job can vanish with its worker (SIGKILL mid-send, a crashed host) or never reach Redis (a gateway
dying between its commit and the enqueue). The message row is still ``queued``: either its dispatch
lease ran out, or it was never claimed and is overdue by more than ``grace``. Enqueuing it again is
safe — ``Outbox.dispatch`` claims with a lease, so a second job for the same message does nothing.
Runs in one worker of the cluster at a time (a lease, gateway/leases.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import and_, func, or_, select

from inbox import tables as t
from inbox.db import Clock, Database
from inbox.jobs import JobQueue
from inbox.model import MessageKind, MessageStatus
from inbox.outbox import DISPATCH_JOB

_LOGGER = logging.getLogger(__name__)


async def sweep_lost_sends(
    db: Database, jobs: JobQueue, clock: Clock, grace: timedelta, limit: int = 1000
) -> int:
    """Enqueue dispatch for every queued message that nobody is working on. Returns the count."""
    now = clock()
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(t.Message.id)
                .where(
                    t.Message.status == MessageStatus.QUEUED,
                    t.Message.kind == MessageKind.OUTGOING,
                    or_(
                        and_(t.Message.lease_until.is_not(None), t.Message.lease_until < now),
                        and_(
                            t.Message.lease_until.is_(None),
                            func.coalesce(t.Message.next_attempt_at, t.Message.created_at) < now - grace,
                        ),
                    ),
                )
                .order_by(t.Message.id)
                .limit(limit)
            )
        )
    for message_id in ids:
        await jobs.enqueue(DISPATCH_JOB, message_id)
    if ids:
        _LOGGER.warning("re-enqueued %d sends whose job was lost: %s", len(ids), ids[:20])
    return len(ids)


async def sweep_forever(
    db: Database, jobs: JobQueue, clock: Clock, grace: timedelta, interval: float
) -> None:
    while True:
        try:
            await sweep_lost_sends(db, jobs, clock, grace)
        except Exception:  # the database may be briefly away; try again next round
            _LOGGER.exception("sweep for lost sends failed")
        await asyncio.sleep(interval)
