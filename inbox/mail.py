"""System mail (quota alerts): a durable outbox table and the sender that drains it.

Mail is written as a row in the same transaction as the change it reports, so a committed alert always
has its mail. ``MailQueue.deliver_due`` claims rows with a lease (one sender per row, also across
processes), hands them to a ``Mailer`` and marks them sent; a failure keeps the row pending with a
back-off, so nothing is dropped. Only a crash between the relay's "250" and the commit that marks the
row sent can send one mail twice (SMTP has no idempotent submit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.db import Clock, Database

_LOGGER = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"


class Mailer(Protocol):
    """Sends one plain-text mail; raises on failure (the queue retries)."""

    async def send(self, to: Sequence[str], subject: str, text: str) -> None: ...


def queue_mail(
    session: AsyncSession,
    *,
    account_id: int | None,
    to: Sequence[str],
    subject: str,
    body: str,
    now: datetime,
) -> t.OutgoingMail:
    """Add a mail to the outbox inside the caller's transaction."""
    row = t.OutgoingMail(
        account_id=account_id,
        recipients=list(to),
        subject=subject,
        body=body,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def mail_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600.0, 30.0 * 2 ** (attempts - 1)))


class MailQueue:
    """Drains ``outgoing_mail``. ``poke()`` after a commit that queued mail; a timer retries the rest."""

    def __init__(
        self,
        db: Database,
        mailer: Mailer | None,
        clock: Clock,
        *,
        lease: timedelta = timedelta(minutes=5),
        rescan_seconds: float = 30.0,
    ) -> None:
        self._db = db
        self.mailer = mailer
        self._clock = clock
        self._lease = lease
        self._rescan = rescan_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.mailer is None:
            _LOGGER.warning("SWITCHBOARD_SMTP_URL is not set: system mail (quota alerts) waits in the outbox")
        self._wake.set()  # mail left pending before a restart goes out now
        self._task = asyncio.create_task(self._run(), name="mail-queue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives just as
                # the wait ends (CPython gh-86296), and stop() then waited for this loop for ever.
                async with asyncio.timeout(self._rescan):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:  # keep the sender alive; the rows stay pending
                _LOGGER.exception("mail delivery pass failed")

    async def deliver_due(self) -> int:
        """Send every pending mail whose time has come; returns how many went out."""
        if self.mailer is None:
            return 0
        now = self._clock()
        async with self._db.read() as session:
            ids = list(
                await session.scalars(
                    select(t.OutgoingMail.id)
                    .where(
                        t.OutgoingMail.status == PENDING,
                        (t.OutgoingMail.next_attempt_at.is_(None)) | (t.OutgoingMail.next_attempt_at <= now),
                    )
                    .order_by(t.OutgoingMail.id)
                    .limit(100)
                )
            )
        sent = 0
        for mail_id in ids:
            sent += await self.deliver(mail_id)
        return sent

    async def deliver(self, mail_id: int) -> int:
        mailer = self.mailer
        if mailer is None:
            return 0
        now = self._clock()
        async with self._db.write() as session:
            claimed = await session.execute(
                update(t.OutgoingMail)
                .where(
                    t.OutgoingMail.id == mail_id,
                    t.OutgoingMail.status == PENDING,
                    (t.OutgoingMail.lease_until.is_(None)) | (t.OutgoingMail.lease_until < now),
                )
                .values(lease_until=now + self._lease)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return 0
            row = await session.get(t.OutgoingMail, mail_id)
            assert row is not None
            to, subject, body = list(row.recipients), row.subject, row.body
        try:
            await mailer.send(to, subject, body)
        except Exception as exc:
            await self._failed(mail_id, f"{type(exc).__name__}: {exc}")
            return 0
        async with self._db.write() as session:
            row = await session.get(t.OutgoingMail, mail_id)
            assert row is not None
            row.status = SENT
            row.attempts += 1
            row.sent_at = self._clock()
            row.lease_until = None
            row.last_error = None
        return 1

    async def _failed(self, mail_id: int, error: str) -> None:
        now = self._clock()
        async with self._db.write() as session:
            row = await session.get(t.OutgoingMail, mail_id)
            assert row is not None
            row.attempts += 1
            row.last_error = error[:2000]
            row.lease_until = None
            row.next_attempt_at = now + mail_backoff(row.attempts)
        _LOGGER.warning("system mail %s not sent (attempt %s): %s", mail_id, row.attempts, error)
