"""Audiences: saved filters over the account's contacts, and the preview of a send to one.

Admins only: an audience spans every contact of the account, not only those of one's inboxes.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import channel_in_body
from gateway.api.errors import field_error, forbidden, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import is_admin
from inbox.audiences import AudienceError, AudienceFilter, preview
from inbox.queries import list_by_id

api = ApiRoutes()


class AudienceBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    filter: AudienceFilter


class AudiencePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    filter: AudienceFilter | None = None


class AudienceView(BaseModel):
    id: int
    name: str
    filter: AudienceFilter
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: t.Audience) -> AudienceView:
        return cls(
            id=row.id,
            name=row.name,
            filter=AudienceFilter.model_validate(row.filter),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class PreviewBody(BaseModel):
    """A saved audience (``audience_id``) or an inline ``filter``; with ``channel_id``, the refusals too."""

    audience_id: int | None = None
    filter: AudienceFilter | None = None
    channel_id: int | None = None
    with_template: bool = False  # a template goes outside the service window; free text does not
    limit: int = Field(default=50, ge=1, le=200)
    after: int | None = Field(default=None, description="the last contact id of the previous page")

    @model_validator(mode="after")
    def _one(self) -> PreviewBody:
        if (self.audience_id is None) == (self.filter is None):
            raise ValueError("give audience_id or filter")
        return self


class PreviewContact(BaseModel):
    id: int
    name: str | None
    email: str | None
    phone: str | None


class PreviewView(BaseModel):
    count: int
    contacts: list[PreviewContact]
    next_after: int | None
    refused: dict[str, int] = Field(
        description="reason code → recipients the gate would refuse; no_address too"
    )
    sendable: int | None


def _admin(user: t.User) -> None:
    if not is_admin(user):
        raise forbidden("audiences span every contact of the account: admins only")


async def saved_audience(session: AsyncSession, user: t.User, audience_id: int) -> t.Audience:
    row = await session.get(t.Audience, audience_id)
    if row is None or row.account_id != user.account_id:
        raise not_found("audience", audience_id)
    return row


async def audience_in_body(session: AsyncSession, user: t.User, audience_id: int) -> AudienceFilter:
    """The saved audience named by a body's ``audience_id``: 422 naming the field when unknown."""
    row = await session.get(t.Audience, audience_id)
    if row is None or row.account_id != user.account_id:
        raise field_error("audience_id", f"audience {audience_id} does not exist")
    return AudienceFilter.model_validate(row.filter)


@api.route(
    "POST",
    "/audiences",
    summary="Save an audience (a filter over contacts)",
    body=AudienceBody,
    response=AudienceView,
    status=201,
)
async def post_audience(request: web.Request, body: AudienceBody) -> AudienceView:
    user = user_of(request)
    _admin(user)
    c = container_of(request)
    async with c.db.write() as session:
        now = c.clock()
        row = t.Audience(
            account_id=user.account_id,
            name=body.name,
            filter=body.filter.model_dump(mode="json"),
            created_by=user.id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        return AudienceView.of(row)


class AudienceQuery(BaseModel):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


@api.route("GET", "/audiences", summary="Saved audiences", query=AudienceQuery, response=Page[AudienceView])
async def list_audiences(request: web.Request, query: AudienceQuery) -> Page[AudienceView]:
    user = user_of(request)
    _admin(user)
    async with container_of(request).db.read() as session:
        stmt = select(t.Audience).where(t.Audience.account_id == user.account_id)
        rows, cursor = await list_by_id(session, stmt, t.Audience.id, query.limit, query.cursor)
        return Page[AudienceView](items=[AudienceView.of(r) for r in rows], next_cursor=cursor)


@api.route("GET", "/audiences/{id}", summary="One saved audience", response=AudienceView)
async def get_audience(request: web.Request) -> AudienceView:
    user = user_of(request)
    _admin(user)
    async with container_of(request).db.read() as session:
        return AudienceView.of(await saved_audience(session, user, path_id(request)))


@api.route(
    "PATCH",
    "/audiences/{id}",
    summary="Rename an audience or change its filter",
    body=AudiencePatch,
    response=AudienceView,
)
async def patch_audience(request: web.Request, body: AudiencePatch) -> AudienceView:
    user = user_of(request)
    _admin(user)
    c = container_of(request)
    async with c.db.write() as session:
        row = await saved_audience(session, user, path_id(request))
        if body.name is not None:
            row.name = body.name
        if body.filter is not None:
            row.filter = body.filter.model_dump(mode="json")
        row.updated_at = c.clock()
        await session.flush()
        return AudienceView.of(row)


@api.route(
    "DELETE", "/audiences/{id}", summary="Delete a saved audience (broadcasts keep their copy)", status=204
)
async def delete_audience(request: web.Request) -> None:
    user = user_of(request)
    _admin(user)
    async with container_of(request).db.write() as session:
        await session.delete(await saved_audience(session, user, path_id(request)))


@api.route(
    "POST",
    "/audiences/preview",
    summary="Count an audience, list a page of it, and how many a send on a channel would be refused and why",
    body=PreviewBody,
    response=PreviewView,
)
async def preview_audience(request: web.Request, body: PreviewBody) -> PreviewView:
    user = user_of(request)
    _admin(user)
    c = container_of(request)
    async with c.db.read() as session:
        audience = body.filter or await audience_in_body(session, user, body.audience_id or 0)
        channel = (
            await channel_in_body(session, user, body.channel_id) if body.channel_id is not None else None
        )
        try:
            result = await preview(
                session,
                user.account_id,
                audience,
                c.clock(),
                channel=channel,
                with_template=body.with_template,
                limit=body.limit,
                after=body.after,
            )
        except AudienceError as exc:
            raise field_error("filter", str(exc)) from None
    return PreviewView(
        count=result.count,
        contacts=[
            PreviewContact(id=x.id, name=x.name, email=x.email, phone=x.phone) for x in result.contacts
        ],
        next_after=result.next_cursor,
        refused=result.refused,
        sendable=result.sendable,
    )
