"""Notifications at run time: the timer that mails notices held back by the batching window, and the
push of new in-app notices to their user's stream sockets.

The notices themselves are written by ``inbox.notifications.Notifier`` inside the write of the events
they come from; here a bus listener reads the new rows once per burst (any process may have written
them) and writes each to the sockets of its user only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from sqlalchemy import func, select

from gateway.stream import StreamHub
from inbox import tables as t
from inbox.db import Clock, Database
from inbox.events import EventBus, LiveEvent
from inbox.mail import MailQueue
from inbox.notifications import Notifier

_LOGGER = logging.getLogger(__name__)

# The events a notice can come from (inbox.notifications.Notifier).
TRIGGERS = frozenset(
    {
        "conversation.created",
        "conversation.updated",
        "conversation.handoff",
        "message.created",
        "ticket.created",
        "ticket.updated",
        "quota.updated",
    }
)


def notification_view(row: t.Notification) -> dict[str, object]:
    return {
        "id": row.id,
        "kind": row.kind,
        "title": row.title,
        "body": row.body,
        "conversation_id": row.conversation_id,
        "ticket_id": row.ticket_id,
        "read": row.read_at is not None,
        "created_at": row.created_at.isoformat(),
    }


class MailTimer:
    """Every ``interval`` seconds: mail the notices whose batching window has passed."""

    def __init__(
        self, db: Database, notifier: Notifier, mail: MailQueue, clock: Clock, interval: float = 30
    ) -> None:
        self._db, self._notifier, self._mail, self._clock = db, notifier, mail, clock
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-mail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if await self._notifier.flush_due(self._db, self._clock()):
                    self._mail.poke()
            except Exception:  # keep the timer; the notices stay pending
                if _stopping():
                    raise
                _LOGGER.exception("notification mail pass failed")


def _stopping() -> bool:
    """This task was asked to stop: a cancel interrupted a database call and surfaced as another
    exception (a session's rollback on a connection the cancel invalidated)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class NotificationPush:
    """Bus listener: after events that may have made notices, send the new in-app ones to their users."""

    def __init__(self, db: Database, bus: EventBus, hub: StreamHub) -> None:
        self._db, self._bus, self._hub = db, bus, hub
        self._last = 0
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self._db.read() as session:
            self._last = (await session.scalar(select(func.max(t.Notification.id)))) or 0
        self._bus.listen(self._on_event)
        self._task = asyncio.create_task(self._run(), name="notification-push")

    async def stop(self) -> None:
        self._bus.unlisten(self._on_event)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_event(self, event: LiveEvent) -> None:
        if event.type in TRIGGERS:
            self._dirty.set()

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()  # events during the read below set it again: read once more
            try:
                await self._push()
            except Exception:
                if _stopping():
                    raise  # a cancel that a driver turned into another error: still a stop
                _LOGGER.exception("notification push failed")

    async def _push(self) -> None:
        while True:
            async with self._db.read() as session:
                rows = list(
                    await session.scalars(
                        select(t.Notification)
                        .where(t.Notification.id > self._last)
                        .order_by(t.Notification.id)
                        .limit(500)
                    )
                )
            for row in rows:
                self._last = row.id
                if row.in_app:
                    frame = json.dumps({"type": "notification", "notification": notification_view(row)})
                    self._hub.send_to_user(row.account_id, row.user_id, frame)
            if len(rows) < 500:
                return
