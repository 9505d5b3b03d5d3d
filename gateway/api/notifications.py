"""Your notifications and what you want to be notified of, and how (in the page, by email).

New in-app notices also arrive on your stream as ``{"type": "notification", "notification": {...}}``
frames (gateway/notify.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import CONTAINER, container_of, user_of
from gateway.api.spec import ApiRoutes
from gateway.notify import MailTimer, NotificationPush, notification_view
from gateway.stream import STREAM_HUB
from inbox import tables as t
from inbox.notifications import preferences

api = ApiRoutes()


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_app: bool | None = None
    email: bool | None = None


class Preferences(BaseModel):
    """Per kind: ``in_app`` (stream, bell, browser notification) and ``email`` (batched)."""

    model_config = ConfigDict(extra="forbid")
    new_conversation: Channels | None = None
    assigned: Channels | None = None
    new_message: Channels | None = None
    mention: Channels | None = None
    handoff: Channels | None = None
    ticket_assigned: Channels | None = None
    quota_tier: Channels | None = None


class PreferencesBody(BaseModel):
    preferences: Preferences


class PreferencesView(BaseModel):
    preferences: dict[str, dict[str, bool]]


class NotificationQuery(BaseModel):
    unread: bool = False
    limit: int = Field(default=20, ge=1, le=100)


class NotificationItem(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    conversation_id: int | None
    ticket_id: int | None
    read: bool
    created_at: str


class NotificationList(BaseModel):
    items: list[NotificationItem]
    unread_count: int


class ReadBody(BaseModel):
    ids: list[int] = Field(default_factory=list, max_length=500)
    all: bool = False

    @model_validator(mode="after")
    def _one(self) -> ReadBody:
        if not self.ids and not self.all:
            raise ValueError("give ids, or all: true")
        return self


class UnreadCount(BaseModel):
    unread_count: int


@api.route(
    "GET",
    "/users/me/notification-preferences",
    summary="What you are notified of, and how (in_app, email), per kind",
    response=PreferencesView,
)
async def get_preferences(request: web.Request) -> PreferencesView:
    async with container_of(request).db.read() as session:
        row = await session.get(t.NotificationPreference, user_of(request).id)
        return PreferencesView(preferences=preferences(row.prefs if row else None))


@api.route(
    "PUT",
    "/users/me/notification-preferences",
    summary="Change what you are notified of; kinds and switches left out keep their value",
    body=PreferencesBody,
    response=PreferencesView,
)
async def put_preferences(request: web.Request, body: PreferencesBody) -> PreferencesView:
    c = container_of(request)
    user = user_of(request)
    given = body.preferences.model_dump(exclude_none=True)
    async with c.db.write() as session:
        row = await session.get(t.NotificationPreference, user.id)
        merged = preferences(row.prefs if row else None)
        for kind, switches in given.items():
            merged[kind].update(switches)
        if row is None:
            session.add(t.NotificationPreference(user_id=user.id, prefs=merged, updated_at=c.clock()))
        else:
            row.prefs, row.updated_at = merged, c.clock()
        return PreferencesView(preferences=merged)


async def _unread(session: AsyncSession, user_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(t.Notification)
            .where(t.Notification.user_id == user_id, t.Notification.in_app, t.Notification.read_at.is_(None))
        )
        or 0
    )


@api.route(
    "GET",
    "/notifications",
    summary="Your in-app notifications, newest first",
    query=NotificationQuery,
    response=NotificationList,
)
async def list_notifications(request: web.Request, query: NotificationQuery) -> NotificationList:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        stmt = select(t.Notification).where(t.Notification.user_id == user.id, t.Notification.in_app)
        if query.unread:
            stmt = stmt.where(t.Notification.read_at.is_(None))
        rows = await session.scalars(stmt.order_by(t.Notification.id.desc()).limit(query.limit))
        return NotificationList(
            items=[NotificationItem.model_validate(notification_view(r)) for r in rows],
            unread_count=await _unread(session, user.id),
        )


@api.route(
    "POST",
    "/notifications/read",
    summary="Mark notifications read (ids, or all)",
    body=ReadBody,
    response=UnreadCount,
)
async def mark_read(request: web.Request, body: ReadBody) -> UnreadCount:
    c = container_of(request)
    user = user_of(request)
    async with c.db.write() as session:
        stmt = update(t.Notification).where(
            t.Notification.user_id == user.id, t.Notification.read_at.is_(None)
        )
        if not body.all:
            stmt = stmt.where(t.Notification.id.in_(body.ids))
        await session.execute(stmt.values(read_at=c.clock()))
        return UnreadCount(unread_count=await _unread(session, user.id))


def add_runtime(app: web.Application) -> None:
    """Start the in-app push and the batched-mail timer with the app (after the stream's hub)."""
    c = app[CONTAINER]

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        push = NotificationPush(c.db, c.bus, app[STREAM_HUB])
        timer = MailTimer(c.db, c.notifier, c.mail, c.clock)
        await push.start()
        timer.start()
        yield
        await timer.stop()
        await push.stop()

    app.cleanup_ctx.append(lifecycle)
