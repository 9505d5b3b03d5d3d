"""Your agent profile: what visitors see of you (display name, title, meeting link, avatar).

The avatar is an upload (``POST /uploads``) whose bytes are an image, at most ``AVATAR_MAX_BYTES``;
what is kept is that image made square, ``AVATAR_SIZE`` pixels, re-encoded without its metadata.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from gateway.api.context import container_of, user_of
from gateway.api.errors import ApiError, field_error
from gateway.api.spec import ApiRoutes
from inbox import tables as t
from inbox.avatars import NotAnImage, resized_avatar
from inbox.events import record_event

api = ApiRoutes()

AVATAR_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
AVATAR_MAX_BYTES = 1024 * 1024


class ProfileBody(BaseModel):
    """Fields left out keep their value; ``null`` clears one."""

    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    title: str | None = Field(default=None, max_length=100)
    meeting_url: HttpUrl | None = None
    avatar_upload_id: int | None = None


class ProfileView(BaseModel):
    user_id: int
    name: str
    display_name: str | None
    title: str | None
    meeting_url: str | None
    has_avatar: bool
    updated_at: datetime | None


def profile_view(user: t.User, row: t.AgentProfile | None) -> ProfileView:
    return ProfileView(
        user_id=user.id,
        name=user.name,
        display_name=row.display_name if row else None,
        title=row.title if row else None,
        meeting_url=row.meeting_url if row else None,
        has_avatar=bool(row and row.avatar_key),
        updated_at=row.updated_at if row else None,
    )


@api.route("GET", "/users/me/profile", summary="Your agent profile", response=ProfileView)
async def get_profile(request: web.Request) -> ProfileView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        return profile_view(user, await session.get(t.AgentProfile, user.id))


@api.route(
    "PUT",
    "/users/me/profile",
    summary="Change your agent profile (avatar: an image upload's id)",
    body=ProfileBody,
    response=ProfileView,
)
async def put_profile(request: web.Request, body: ProfileBody) -> ProfileView:
    c = container_of(request)
    user = user_of(request)
    given = body.model_fields_set
    avatar_key = (
        await _avatar_key(request, body.avatar_upload_id) if body.avatar_upload_id is not None else None
    )
    async with c.db.write() as session:
        row = await session.get(t.AgentProfile, user.id)
        if row is None:
            row = t.AgentProfile(user_id=user.id, updated_at=c.clock())
            session.add(row)
        if "display_name" in given:
            row.display_name = body.display_name
        if "title" in given:
            row.title = body.title or None
        if "meeting_url" in given:
            row.meeting_url = str(body.meeting_url) if body.meeting_url else None
        if "avatar_upload_id" in given:
            row.avatar_key = avatar_key
        row.updated_at = c.clock()
        # Widgets (in every process) drop the card they keep of this agent.
        await record_event(
            session, "user.profile", account_id=user.account_id, now=c.clock(), payload={"user_id": user.id}
        )
        return profile_view(user, row)


async def _avatar_key(request: web.Request, upload_id: int) -> str:
    """The media key of the resized avatar made from one of your uploads (422 naming the field)."""
    c = container_of(request)
    user = user_of(request)
    async with c.db.read() as session:
        upload = await session.get(t.Upload, upload_id)
    if upload is None or upload.user_id != user.id:
        raise field_error("avatar_upload_id", "no such upload of yours")
    if upload.content_type not in AVATAR_TYPES:
        raise field_error("avatar_upload_id", "the avatar must be a PNG, JPEG, GIF or WebP image")
    if upload.size > AVATAR_MAX_BYTES:
        raise field_error("avatar_upload_id", f"the avatar may be at most {AVATAR_MAX_BYTES} bytes")
    try:
        resized = await asyncio.to_thread(resized_avatar, await c.media.get(upload.media_key))
    except NotAnImage as exc:
        raise field_error("avatar_upload_id", str(exc)) from exc
    return await c.media.put(resized)


@api.route("GET", "/users/me/avatar", summary="Your avatar as visitors see it (a square PNG)")
async def get_avatar(request: web.Request) -> web.Response:
    c = container_of(request)
    user = user_of(request)
    async with c.db.read() as session:
        row = await session.get(t.AgentProfile, user.id)
    if row is None or not row.avatar_key:
        raise ApiError(404, "not_found", "you have no avatar")
    try:
        data = await c.media.get(row.avatar_key)
    except (OSError, ValueError) as exc:
        raise ApiError(404, "not_found", "your avatar is no longer stored") from exc
    return web.Response(
        body=data,
        headers={
            "Content-Type": "image/png",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-cache",
        },
    )
