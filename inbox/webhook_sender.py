"""Sends the pending webhook deliveries: one job per subscription, deliveries in event order.

``WebhookSender.run(subscription_id)`` is the job (``WEBHOOK_JOB``). It claims the subscription with a
lease (one sender per subscription, also across processes and for duplicate jobs), sends what is due
in order and records every attempt. A delivery to retry sets the subscription's ``retry_at``: nothing
behind it goes before it. The scheduler (``start``; gateways only) enqueues a job for every
subscription with something due: after a commit that wrote deliveries (``poke``), when a retry comes
due, and every ``rescan_seconds`` for a job lost with its worker (its lease runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.access import ADMIN_ROLES
from inbox.db import Clock, Database
from inbox.events import CommitHorizon
from inbox.i18n import account_language, translator
from inbox.jobs import JobQueue
from inbox.mail import queue_mail
from inbox.webhooks import (
    DELIVERED,
    DELIVERY_HEADER,
    EVENT_HEADER,
    FAILED,
    PENDING,
    RESPONSE_EXCERPT,
    SIGNATURE_HEADER,
    backoff,
    body_of,
    outcome_of,
    signature,
)

_LOGGER = logging.getLogger(__name__)

WEBHOOK_JOB = "webhooks.send"
_REQUEUE_GAP = 2.0  # seconds: a subscription just enqueued is not enqueued again by the next poke
_HORIZON_WAIT = (0.002, 0.2, 5.0)  # first, longest step, total: waiting for earlier events to commit


@dataclass(frozen=True)
class Answer:
    """What the receiver said: its status (None when nobody answered: ``error`` says why)."""

    status: int | None
    retry_after: str | None = None
    body: str | None = None
    error: str | None = None


class Poster(Protocol):
    """Makes one POST and never raises: a failure is an ``Answer`` with an ``error``."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer: ...


Notify = Callable[[AsyncSession, t.WebhookSubscription, datetime], Awaitable[None]]


class WebhookSender:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        poster: Poster,
        clock: Clock,
        *,
        retry_for: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(minutes=2),
        rescan_seconds: float = 30.0,
        mail_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self.poster = poster
        self._clock = clock
        self._retry_for = retry_for
        self._lease = lease
        self._rescan = rescan_seconds
        self._mail_queued = mail_queued
        self._horizon = None if db.is_sqlite else CommitHorizon()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._enqueued: dict[int, float] = {}  # subscription id -> loop time of its last enqueue

    # -- the scheduler (gateways) -----------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._wake.set()  # what was pending before a restart goes out now
        self._task = asyncio.create_task(self._run(), name="webhook-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True  # see MailQueue.stop: a lost cancel must not hang shutdown
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Something may be due now (deliveries committed, a subscription enabled, a redelivery)."""
        self._wake.set()

    async def _run(self) -> None:
        wait = 0.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            try:
                wait = await self.schedule_due()
            except Exception:  # keep the scheduler alive; the rows stay pending
                _LOGGER.exception("webhook scheduling pass failed")
                wait = self._rescan

    async def schedule_due(self) -> float:
        """Enqueue a job for each subscription with a due delivery; seconds until the next look."""
        now = self._clock()
        due = (
            select(t.WebhookDelivery.subscription_id)
            .join(t.WebhookSubscription, t.WebhookSubscription.id == t.WebhookDelivery.subscription_id)
            .where(
                t.WebhookDelivery.status == PENDING,
                or_(t.WebhookSubscription.lease_until.is_(None), t.WebhookSubscription.lease_until < now),
                or_(
                    t.WebhookDelivery.event_id.is_(None),  # test events do not wait in line
                    t.WebhookSubscription.active.is_(True)
                    & or_(t.WebhookSubscription.retry_at.is_(None), t.WebhookSubscription.retry_at <= now),
                ),
            )
            .distinct()
        )
        later = select(
            func.min(t.WebhookSubscription.retry_at), func.min(t.WebhookSubscription.lease_until)
        ).where(
            t.WebhookSubscription.active.is_(True),
            or_(t.WebhookSubscription.retry_at > now, t.WebhookSubscription.lease_until > now),
        )
        async with self._db.read() as session:
            ids = list(await session.scalars(due))
            retry_at, lease_until = (await session.execute(later)).one()
        wait = self._rescan
        loop_now = asyncio.get_running_loop().time()
        for sub_id in ids:
            last = self._enqueued.get(sub_id)
            if last is not None and loop_now - last < _REQUEUE_GAP:
                wait = min(wait, _REQUEUE_GAP - (loop_now - last))  # look again once the gap is over
                continue
            self._enqueued[sub_id] = loop_now
            await self._jobs.enqueue(WEBHOOK_JOB, sub_id)
        for when in (retry_at, lease_until):
            if when is not None and when > now:
                wait = min(wait, (when - now).total_seconds())
        return max(wait, 0.0)

    # -- the job ----------------------------------------------------------------------------------

    async def run(self, subscription_id: int) -> None:
        """Send what is due for one subscription, in order, while holding its lease."""
        self._enqueued.pop(subscription_id, None)
        while await self._claim(subscription_id):
            try:
                await self._drain(subscription_id)
            finally:
                await self._release(subscription_id)
            # A delivery committed while the lease was held may have been passed over by the
            # scheduler (it saw the lease): look once more now that it is free.
            if not await self._has_due(subscription_id):
                return

    async def _claim(self, subscription_id: int) -> bool:
        now = self._clock()
        async with self._db.write() as session:
            claimed = await session.execute(
                update(t.WebhookSubscription)
                .where(
                    t.WebhookSubscription.id == subscription_id,
                    or_(t.WebhookSubscription.lease_until.is_(None), t.WebhookSubscription.lease_until < now),
                )
                .values(lease_until=now + self._lease)
            )
            return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    async def _release(self, subscription_id: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                update(t.WebhookSubscription)
                .where(t.WebhookSubscription.id == subscription_id)
                .values(lease_until=None)
            )

    async def _has_due(self, subscription_id: int) -> bool:
        async with self._db.read() as session:
            return await self._next(session, subscription_id, self._clock()) is not None

    async def _next(
        self, session: AsyncSession, subscription_id: int, now: datetime
    ) -> t.WebhookDelivery | None:
        """The delivery to send now: a test event, else the head of the line if its time has come."""
        sub = await session.get(t.WebhookSubscription, subscription_id)
        if sub is None:
            return None
        pending = select(t.WebhookDelivery).where(
            t.WebhookDelivery.subscription_id == subscription_id, t.WebhookDelivery.status == PENDING
        )
        test = await session.scalar(pending.where(t.WebhookDelivery.event_id.is_(None)).limit(1))
        if test is not None or not sub.active:
            return test
        head = await session.scalar(
            pending.where(t.WebhookDelivery.event_id.is_not(None))
            .order_by(t.WebhookDelivery.event_id, t.WebhookDelivery.id)
            .limit(1)
        )
        if head is None or (head.next_attempt_at is not None and head.next_attempt_at > now):
            return None
        return head

    async def _settled(self, event_id: int) -> bool:
        """PostgreSQL: every event up to ``event_id`` has committed or never will (no earlier one can
        still join the line). SQLite's single writer commits in id order."""
        if self._horizon is None:
            return True
        delay, step_max, budget = _HORIZON_WAIT
        waited = 0.0
        while True:
            async with self._db.read() as session:
                await self._horizon.advance(session)
            if self._horizon.settled >= event_id or waited >= budget:
                return self._horizon.settled >= event_id
            await asyncio.sleep(delay)  # a writer holding an earlier id ends within its transaction
            waited += delay
            delay = min(delay * 2, step_max)

    async def _drain(self, subscription_id: int) -> None:
        while True:
            now = self._clock()
            async with self._db.read() as session:
                delivery = await self._next(session, subscription_id, now)
                sub = await session.get(t.WebhookSubscription, subscription_id)
                if delivery is None or sub is None:
                    return
                url, secret = sub.url, sub.secret
                delivery_id, uid, event_type = delivery.id, delivery.uid, delivery.event_type
                event_id, body = delivery.event_id, body_of(delivery.payload)
            if event_id is not None and not await self._settled(event_id):
                return  # the next pass (poke or rescan) finds it again
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Switchboard-Webhooks/1",
                SIGNATURE_HEADER: signature(secret, int(time.time()), body),
                DELIVERY_HEADER: uid,
                EVENT_HEADER: event_type,
            }
            started = time.monotonic()
            answer = await self.poster.post(url, body, headers)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            if not await self._record(subscription_id, delivery_id, answer, elapsed_ms):
                return

    async def _record(self, subscription_id: int, delivery_id: int, answer: Answer, elapsed_ms: int) -> bool:
        """Keep the attempt and move the delivery on. False when the line must wait (a retry, disabled)."""
        now = self._clock()
        disabled: _Disabled | None = None
        go_on = False
        async with self._db.write() as session:
            delivery = await session.get(t.WebhookDelivery, delivery_id)
            sub = await session.get(t.WebhookSubscription, subscription_id)
            assert delivery is not None and sub is not None
            excerpt = answer.body[:RESPONSE_EXCERPT] if answer.body is not None else None
            session.add(
                t.WebhookAttempt(
                    delivery_id=delivery_id,
                    attempted_at=now,
                    duration_ms=elapsed_ms,
                    status_code=answer.status,
                    response=excerpt,
                    error=answer.error,
                )
            )
            delivery.attempts += 1
            first = delivery.first_attempt_at = delivery.first_attempt_at or now
            delivery.last_attempt_at = now
            delivery.last_status_code = answer.status
            delivery.last_response = excerpt
            delivery.last_error = answer.error
            sub.lease_until = now + self._lease  # still working on it
            outcome = outcome_of(answer.status, answer.retry_after, now)
            is_test = delivery.event_id is None
            if outcome.kind == DELIVERED:
                delivery.status = DELIVERED
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                if not is_test:
                    sub.failing_since = None
                    sub.retry_at = None
                go_on = True
            elif outcome.kind == FAILED or is_test:  # a test event is tried once: its answer is the point
                delivery.status = FAILED
                delivery.next_attempt_at = None
                if outcome.disable and not is_test:
                    disabled = _Disabled(gone=answer.status)
                go_on = disabled is None
            elif now - first >= self._retry_for:
                delivery.status = FAILED
                delivery.next_attempt_at = None
                delivery.last_error = (answer.error or f"HTTP {answer.status}") + "; gave up retrying"
                disabled = _Disabled(failing_hours=self._retry_for.total_seconds() / 3600)
            else:
                retry_at = now + backoff(delivery.attempts, outcome.retry_after)
                delivery.next_attempt_at = retry_at
                sub.retry_at = retry_at
                sub.failing_since = sub.failing_since or now
            if disabled is not None:
                await self._disable(session, sub, now, disabled)
        if disabled is not None:
            self._mail_queued()
        return go_on

    async def _disable(
        self, session: AsyncSession, sub: t.WebhookSubscription, now: datetime, why: _Disabled
    ) -> bool:
        """Stop the subscription and mail the account's admins (in the account's language)."""
        sub.active = False
        sub.disabled_reason = why.reason()
        sub.retry_at = None
        sub.updated_at = now
        _LOGGER.warning("webhook subscription %s disabled: %s", sub.id, sub.disabled_reason)
        admins = list(
            await session.scalars(
                select(t.User.email).where(t.User.account_id == sub.account_id, t.User.role.in_(ADMIN_ROLES))
            )
        )
        if not admins:
            return False
        tr = translator(await account_language(session, sub.account_id))
        if why.gone is not None:
            reason = tr.gettext("the endpoint answered {status} (gone)", status=why.gone)
        else:
            reason = tr.gettext("every attempt failed for {hours} hours", hours=tr.number(why.failing_hours))
        queue_mail(
            session,
            account_id=sub.account_id,
            to=admins,
            subject=tr.gettext("Webhook disabled: {url}", url=sub.url),
            body=tr.gettext(
                "Switchboard stopped calling {url} (webhook subscription {id}): {reason}.\n\n"
                "New events are not recorded for it until it is enabled again; the deliveries that were "
                "waiting stay in its delivery log. Fix the endpoint, then enable the subscription "
                "(PATCH /api/v1/webhook-subscriptions/{id} with active true).",
                url=sub.url,
                id=sub.id,
                reason=reason,
            ),
            now=now,
        )
        return True


@dataclass(frozen=True)
class _Disabled:
    gone: int | None = None  # the status code the receiver answered (410)
    failing_hours: float = 0.0

    def reason(self) -> str:
        if self.gone is not None:
            return f"the endpoint answered {self.gone} (gone)"
        return f"every attempt failed for {self.failing_hours:g} hours"
