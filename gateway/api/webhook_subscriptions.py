"""Outgoing webhook subscriptions (admins): CRUD, the delivery log, redelivery and a test event.

The secret is shown once, in the answer to the POST that made it (or the PATCH that replaced it).
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.admin import require_admin
from gateway.api.context import container_of, path_id
from gateway.api.errors import field_error, not_found
from gateway.api.spec import ApiRoutes, Page
from gateway.outgoing_webhooks import TargetRefused, check_target
from inbox import tables as t
from inbox.queries import list_by_id
from inbox.webhooks import (
    EVENT_TYPES,
    PENDING,
    AttemptView,
    DeliveryView,
    SubscriptionView,
    new_secret,
    test_delivery,
)

api = ApiRoutes()


def _events(value: list[str]) -> list[str]:
    for i, name in enumerate(value):
        if name not in EVENT_TYPES:
            raise ValueError(f"events[{i}]: unknown event {name!r}; known: {', '.join(EVENT_TYPES)}")
    return sorted(set(value))


class SubscriptionCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))
    inbox_ids: list[int] | None = Field(default=None, max_length=500)  # None: every inbox
    secret: str | None = Field(default=None, min_length=16, max_length=255)

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[str]) -> list[str]:
        return _events(value)


class SubscriptionPatch(BaseModel):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    inbox_ids: list[int] | None = Field(default=None, max_length=500)
    secret: str | None = Field(default=None, min_length=16, max_length=255)
    rotate_secret: bool = False  # true: a new secret is made and shown in the answer
    active: bool | None = None  # true: enable again after it was disabled

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _events(value)


class SubscriptionCreated(SubscriptionView):
    secret: str  # shown here only


class SubscriptionChanged(SubscriptionView):
    secret: str | None = None  # only when it was replaced


class DeliveryQuery(BaseModel):
    status: Literal["pending", "delivered", "failed"] | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


async def _check_url(request: web.Request, url: str) -> str:
    try:
        await check_target(url, allow_private=container_of(request).settings.webhooks_allow_private)
    except TargetRefused as exc:
        raise field_error("url", str(exc)) from None
    return url


async def _check_inboxes(session: AsyncSession, account_id: int, ids: list[int] | None) -> list[int] | None:
    if ids is None:
        return None
    found = set(
        await session.scalars(
            select(t.InboxRow.id).where(t.InboxRow.account_id == account_id, t.InboxRow.id.in_(ids))
        )
    )
    for i, inbox_id in enumerate(ids):
        if inbox_id not in found:
            raise field_error(f"inbox_ids.{i}", f"inbox {inbox_id} does not exist")
    return sorted(found)


async def _subscription(session: AsyncSession, account_id: int, sub_id: int) -> t.WebhookSubscription:
    sub = await session.get(t.WebhookSubscription, sub_id)
    if sub is None or sub.account_id != account_id:
        raise not_found("webhook subscription", sub_id)
    return sub


async def _delivery(session: AsyncSession, sub: t.WebhookSubscription, delivery_id: int) -> t.WebhookDelivery:
    delivery = await session.get(t.WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != sub.id:
        raise not_found("delivery", delivery_id)
    return delivery


@api.route(
    "GET",
    "/webhook-subscriptions",
    summary="The account's outgoing webhook subscriptions (admins)",
    response=Page[SubscriptionView],
)
async def list_subscriptions(request: web.Request) -> Page[SubscriptionView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.WebhookSubscription)
            .where(t.WebhookSubscription.account_id == user.account_id)
            .order_by(t.WebhookSubscription.id)
        )
        return Page[SubscriptionView](items=[SubscriptionView.of(s) for s in rows])


@api.route(
    "POST",
    "/webhook-subscriptions",
    summary="Subscribe a URL to events; the answer holds the signing secret (shown once)",
    body=SubscriptionCreate,
    response=SubscriptionCreated,
    status=201,
)
async def post_subscription(request: web.Request, body: SubscriptionCreate) -> SubscriptionCreated:
    user = require_admin(request)
    c = container_of(request)
    url = await _check_url(request, body.url)
    async with c.db.write() as session:
        now = c.clock()
        sub = t.WebhookSubscription(
            account_id=user.account_id,
            url=url,
            events=body.events,
            inbox_ids=await _check_inboxes(session, user.account_id, body.inbox_ids),
            secret=body.secret or new_secret(),
            active=True,
            created_by=user.id,
            created_at=now,
            updated_at=now,
        )
        session.add(sub)
        await session.flush()
        return SubscriptionCreated(**SubscriptionView.of(sub).model_dump(), secret=sub.secret)


@api.route(
    "GET",
    "/webhook-subscriptions/{id}",
    summary="One webhook subscription (admins)",
    response=SubscriptionView,
)
async def get_subscription(request: web.Request) -> SubscriptionView:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        return SubscriptionView.of(await _subscription(session, user.account_id, path_id(request)))


@api.route(
    "PATCH",
    "/webhook-subscriptions/{id}",
    summary="Change a subscription: URL, events, inboxes, secret; active true enables it again",
    body=SubscriptionPatch,
    response=SubscriptionChanged,
)
async def patch_subscription(request: web.Request, body: SubscriptionPatch) -> SubscriptionChanged:
    user = require_admin(request)
    c = container_of(request)
    given = body.model_fields_set
    for name in ("url", "events", "active"):
        if name in given and getattr(body, name) is None:
            raise field_error(name, "must not be null")
    url = await _check_url(request, body.url) if body.url is not None else None
    async with c.db.write() as session:
        sub = await _subscription(session, user.account_id, path_id(request))
        now = c.clock()
        if url is not None:
            sub.url = url
        if body.events is not None:
            sub.events = body.events
        if "inbox_ids" in given:
            sub.inbox_ids = await _check_inboxes(session, user.account_id, body.inbox_ids)
        shown = None
        if body.rotate_secret or body.secret is not None:
            sub.secret = shown = body.secret or new_secret()
        if body.active is True and not sub.active:
            # Enabled again: what waited goes now, and the 24 h of retries start afresh.
            sub.active = True
            sub.disabled_reason = None
            sub.failing_since = None
            sub.retry_at = None
        elif body.active is False and sub.active:
            sub.active = False
            sub.disabled_reason = "disabled by an admin"
            sub.retry_at = None
        sub.updated_at = now
        await session.flush()
        view = SubscriptionChanged(**SubscriptionView.of(sub).model_dump(), secret=shown)
    c.webhooks.poke()
    return view


@api.route("DELETE", "/webhook-subscriptions/{id}", summary="Delete a subscription and its delivery log")
async def delete_subscription(request: web.Request) -> None:
    user = require_admin(request)
    async with container_of(request).db.write() as session:
        sub = await _subscription(session, user.account_id, path_id(request))
        await session.delete(sub)


@api.route(
    "GET",
    "/webhook-subscriptions/{id}/deliveries",
    summary="The delivery log, newest first: status, attempts, the last answer's code and body excerpt",
    query=DeliveryQuery,
    response=Page[DeliveryView],
)
async def list_deliveries(request: web.Request, query: DeliveryQuery) -> Page[DeliveryView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        sub = await _subscription(session, user.account_id, path_id(request))
        stmt = select(t.WebhookDelivery).where(t.WebhookDelivery.subscription_id == sub.id)
        if query.status is not None:
            stmt = stmt.where(t.WebhookDelivery.status == query.status)
        rows, cursor = await list_by_id(
            session, stmt, t.WebhookDelivery.id, query.limit, query.cursor, newest_first=True
        )
        return Page[DeliveryView](items=[DeliveryView.of(d) for d in rows], next_cursor=cursor)


@api.route(
    "GET",
    "/webhook-subscriptions/{id}/deliveries/{delivery_id}",
    summary="One delivery with its payload and every attempt",
    response=DeliveryView,
)
async def get_delivery(request: web.Request) -> DeliveryView:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        sub = await _subscription(session, user.account_id, path_id(request))
        delivery = await _delivery(session, sub, path_id(request, "delivery_id"))
        attempts = await session.scalars(
            select(t.WebhookAttempt)
            .where(t.WebhookAttempt.delivery_id == delivery.id)
            .order_by(t.WebhookAttempt.id)
        )
        view = DeliveryView.of(delivery)
        view.payload = delivery.payload
        view.attempt_log = [AttemptView.of(a) for a in attempts]
        return view


@api.route(
    "POST",
    "/webhook-subscriptions/{id}/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery again (same X-Switchboard-Delivery id), with a fresh 24 h of retries",
    response=DeliveryView,
    status=202,
    body_required=False,
)
async def redeliver(request: web.Request) -> DeliveryView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        sub = await _subscription(session, user.account_id, path_id(request))
        delivery = await _delivery(session, sub, path_id(request, "delivery_id"))
        now = c.clock()
        delivery.status = PENDING
        delivery.next_attempt_at = now
        delivery.first_attempt_at = None
        delivery.delivered_at = None
        sub.retry_at = None  # the line is looked at again now
        await session.flush()
        view = DeliveryView.of(delivery)
    c.webhooks.poke()
    return view


@api.route(
    "POST",
    "/webhook-subscriptions/{id}/test",
    summary="Send a webhook.test event now (tried once; see its delivery for the answer)",
    response=DeliveryView,
    status=202,
    body_required=False,
)
async def send_test(request: web.Request) -> DeliveryView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        sub = await _subscription(session, user.account_id, path_id(request))
        delivery = test_delivery(sub, c.clock())
        session.add(delivery)
        await session.flush()
        view = DeliveryView.of(delivery)
    c.webhooks.poke()
    return view
