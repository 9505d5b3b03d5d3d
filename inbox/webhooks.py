"""Outgoing webhooks: subscriptions, the deliveries written with their events, signatures and retries.

A delivery is a row written inside the transaction of its event (``DeliveryHook``, a
``Database.on_events`` hook), so a committed event always has its deliveries and a rolled-back one has
none. The sender (gateway/outgoing_webhooks.py) sends each subscription's deliveries one at a time in
event order: a delivery waiting for a retry holds back the ones behind it, a refused one (a 4xx other
than 429) does not. Network errors, timeouts, 5xx and 429 are retried with exponential back-off and
jitter (``Retry-After`` honoured) for ``retry_for`` (24 h); then the delivery fails and the
subscription is disabled. A receiver verifies ``X-Switchboard-Signature`` with ``verify_signature``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, cast

from pydantic import BaseModel
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.caches import Caches

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"

TEST_EVENT: Final = "webhook.test"
# What a subscription may ask for. Events of the log that are not here (typing, read markers, presence)
# are too chatty and too short-lived to be worth a call.
EVENT_TYPES: Final[tuple[str, ...]] = (
    "message.created",
    "message.updated",
    "conversation.created",
    "conversation.updated",
    "conversation.status_changed",
    "conversation.assigned",
    "conversation.handoff",
    "contact.created",
    "contact.updated",
    "contact.tag_added",
    "contact.tag_removed",
    "quota.updated",
    "ticket.created",
    "ticket.updated",
    "broadcast.updated",
    "contact.merged",
    "csat.rated",
    "automation.run_finished",
    "automation.step_refused",
)
# Derived from a ``conversation.updated`` whose "changes" name the field.
_DERIVED: Final = {"status": "conversation.status_changed", "assignee_id": "conversation.assigned"}

SIGNATURE_HEADER: Final = "X-Switchboard-Signature"
DELIVERY_HEADER: Final = "X-Switchboard-Delivery"
EVENT_HEADER: Final = "X-Switchboard-Event"
RESPONSE_EXCERPT: Final = 1024  # characters of the receiver's answer kept per attempt
MAX_BACKOFF: Final = timedelta(hours=1)
FIRST_BACKOFF_SECONDS: Final = 10.0

_SUBSCRIPTIONS = cast(Table, t.WebhookSubscription.__table__)
_DELIVERIES = cast(Table, t.WebhookDelivery.__table__)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def new_uid() -> str:
    """The ``X-Switchboard-Delivery`` id: unique, for the receiver's idempotency."""
    return "wh_" + secrets.token_hex(16)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>." + body)>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver runs: the header's MAC matches the raw body (in constant time) and is recent.

    ``now`` is the receiver's clock (``time.time()``); a header older or newer than ``tolerance``
    seconds is refused, so a captured request cannot be replayed later.
    """
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).rsplit("v1=", 1)[1]
    # Every v1 is compared (a secret being rotated may sign twice); compare_digest takes constant time.
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_payload(event: t.Event, type_: str | None = None) -> dict[str, Any]:
    """What a receiver gets: the event as the live stream shows it (its data are the API's views)."""
    return {
        "event_id": event.id,
        "type": type_ or event.type,
        "account_id": event.account_id,
        "inbox_id": event.inbox_id,
        "conversation_id": event.conversation_id,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }


def _types_of(event: t.Event) -> list[str]:
    """The webhook event types one logged event stands for (a change of status is also an update)."""
    types = [event.type]
    if event.type == "conversation.updated":
        changed = {c.get("field") for c in event.payload.get("changes") or () if isinstance(c, dict)}
        types += [derived for field, derived in _DERIVED.items() if field in changed]
    return types


class DeliveryHook:
    """``Database.on_events``: one delivery row per matching active subscription, in the event's write.

    ``has_deliveries(events)`` tells an after-commit callback whether that commit wrote any, so the
    sender looks right after it (and only then).
    """

    def __init__(self, caches: Caches | None = None) -> None:
        self._caches = caches  # subscriptions read once per process, until a commit changes them
        # The event rows whose transaction wrote deliveries; a rolled-back write's rows just go away.
        self._marked: weakref.WeakSet[t.Event] = weakref.WeakSet()

    async def __call__(self, session: AsyncSession, events: Sequence[t.Event]) -> None:
        rows: list[dict[str, Any]] = []
        for event in events:
            subscriptions = await _active_subscriptions(session, event.account_id, self._caches)
            if not subscriptions:
                continue
            for type_ in _types_of(event):
                for sub in subscriptions:
                    if type_ not in sub.events:
                        continue
                    # An event of no inbox (quota, contacts) goes to every subscription that wants it.
                    if sub.inbox_ids is not None and event.inbox_id not in (None, *sub.inbox_ids):
                        continue
                    rows.append(_delivery_row(sub.id, event.account_id, event, type_))
        if rows:
            await session.execute(insert(_DELIVERIES), rows)
            self._marked.add(events[-1])

    def has_deliveries(self, events: Sequence[t.Event]) -> bool:
        return bool(events) and events[-1] in self._marked


@dataclass(frozen=True)
class _Sub:
    id: int
    events: frozenset[str]
    inbox_ids: frozenset[int] | None


async def _active_subscriptions(
    session: AsyncSession, account_id: int, caches: Caches | None = None
) -> tuple[_Sub, ...]:
    key = ("webhook_subscriptions", account_id)  # read once per transaction (or process, with caches)

    async def load() -> tuple[_Sub, ...]:
        cached: tuple[_Sub, ...] | None = session.info.get(key)
        if cached is None:
            result = await session.execute(
                select(_SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.events, _SUBSCRIPTIONS.c.inbox_ids).where(
                    _SUBSCRIPTIONS.c.account_id == account_id, _SUBSCRIPTIONS.c.active.is_(True)
                )
            )
            cached = tuple(
                _Sub(
                    row.id, frozenset(row.events), None if row.inbox_ids is None else frozenset(row.inbox_ids)
                )
                for row in result
            )
            session.info[key] = cached
        return cached

    if caches is None:
        return await load()
    return await caches.get(session, key, (_SUBSCRIPTIONS.name,), load)


def _delivery_row(subscription_id: int, account_id: int, event: t.Event, type_: str) -> dict[str, Any]:
    return {
        "uid": new_uid(),
        "subscription_id": subscription_id,
        "account_id": account_id,
        "event_id": event.id,
        "event_type": type_,
        "payload": event_payload(event, type_),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": event.created_at,
        "created_at": event.created_at,
    }


def test_delivery(subscription: t.WebhookSubscription, now: datetime) -> t.WebhookDelivery:
    """A ``webhook.test`` delivery ("send test event"): it has no event and does not wait in line."""
    payload = {
        "event_id": None,
        "type": TEST_EVENT,
        "account_id": subscription.account_id,
        "inbox_id": None,
        "conversation_id": None,
        "created_at": now.isoformat(),
        "data": {"subscription_id": subscription.id, "message": "This is a test event from Switchboard."},
    }
    return t.WebhookDelivery(
        uid=new_uid(),
        subscription_id=subscription.id,
        account_id=subscription.account_id,
        event_id=None,
        event_type=TEST_EVENT,
        payload=payload,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


# -- what an answer means -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: ``delivered``; ``retry`` (after ``retry_after`` when the receiver said);
    or ``failed`` for good (``disable``: the receiver said the endpoint is gone, 410)."""

    kind: str  # DELIVERED, "retry", FAILED
    retry_after: timedelta | None = None
    disable: bool = False


def outcome_of(status: int | None, retry_after: str | None, now: datetime) -> Outcome:
    """``status`` None: no answer (network error, timeout)."""
    if status is not None and 200 <= status < 300:
        return Outcome(DELIVERED)
    if status is None or status >= 500 or status == 429:
        return Outcome("retry", parse_retry_after(retry_after, now))
    return Outcome(FAILED, disable=status == 410)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(timedelta(0), when - now)


def backoff(attempts: int, retry_after: timedelta | None, rng: random.Random | None = None) -> timedelta:
    """The wait before the next try: 10 s doubling up to 1 h, with jitter (half to all of it, so many
    subscriptions failing together spread out); the receiver's ``Retry-After`` when it gave one."""
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF)
    ceiling = min(FIRST_BACKOFF_SECONDS * 2 ** max(0, attempts - 1), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=ceiling * (rng or random).uniform(0.5, 1.0))


class SubscriptionView(BaseModel):
    id: int
    url: str
    events: list[str]
    inbox_ids: list[int] | None
    active: bool
    disabled_reason: str | None
    failing_since: datetime | None
    retry_at: datetime | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: t.WebhookSubscription) -> SubscriptionView:
        return cls(
            id=s.id,
            url=s.url,
            events=list(s.events),
            inbox_ids=None if s.inbox_ids is None else list(s.inbox_ids),
            active=s.active,
            disabled_reason=s.disabled_reason,
            failing_since=s.failing_since,
            retry_at=s.retry_at,
            created_by=s.created_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class AttemptView(BaseModel):
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    response: str | None
    error: str | None

    @classmethod
    def of(cls, a: t.WebhookAttempt) -> AttemptView:
        return cls(
            attempted_at=a.attempted_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            response=a.response,
            error=a.error,
        )


class DeliveryView(BaseModel):
    id: int
    uid: str
    subscription_id: int
    event_id: int | None
    event_type: str
    status: str
    attempts: int
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] | None = None  # with one delivery, not in lists
    attempt_log: list[AttemptView] | None = None

    @classmethod
    def of(cls, d: t.WebhookDelivery) -> DeliveryView:
        return cls(
            id=d.id,
            uid=d.uid,
            subscription_id=d.subscription_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            first_attempt_at=d.first_attempt_at,
            last_attempt_at=d.last_attempt_at,
            next_attempt_at=d.next_attempt_at,
            last_status_code=d.last_status_code,
            last_response=d.last_response,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )
