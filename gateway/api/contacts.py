"""Contacts: search, read, edit."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import container_of, path_id, user_of
from gateway.api.errors import not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.contacts import identities_of
from inbox.queries import list_by_id
from inbox.views import ContactView

api = ApiRoutes()


class ContactQuery(BaseModel):
    q: str | None = Field(default=None, max_length=200)
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


def _visible(user: t.User, inbox_ids: set[int]) -> Any:
    """Admins see every contact; agents those with a conversation in one of their inboxes."""
    if is_admin(user):
        return t.Contact.account_id == user.account_id
    return exists().where(t.Conversation.contact_id == t.Contact.id, t.Conversation.inbox_id.in_(inbox_ids))


async def visible_contact(session: AsyncSession, user: t.User, contact_id: int) -> t.Contact:
    inbox_ids = await visible_inbox_ids(session, user)
    contact = await session.scalar(
        select(t.Contact).where(
            t.Contact.id == contact_id, t.Contact.account_id == user.account_id, _visible(user, inbox_ids)
        )
    )
    if contact is None:
        raise not_found("contact", contact_id)
    return contact


@api.route(
    "GET",
    "/contacts",
    summary="Search contacts by name, email, phone or address",
    query=ContactQuery,
    response=Page[ContactView],
)
async def list_contacts(request: web.Request, query: ContactQuery) -> Page[ContactView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        inbox_ids = await visible_inbox_ids(session, user)
        stmt = select(t.Contact).where(t.Contact.account_id == user.account_id, _visible(user, inbox_ids))
        if query.q:
            pattern = (
                "%" + query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            stmt = stmt.where(
                or_(
                    func.lower(t.Contact.name).like(pattern, escape="\\"),
                    func.lower(t.Contact.email).like(pattern, escape="\\"),
                    t.Contact.phone.like(pattern, escape="\\"),
                    exists().where(
                        t.ContactIdentity.contact_id == t.Contact.id,
                        func.lower(t.ContactIdentity.address).like(pattern, escape="\\"),
                    ),
                )
            )
        rows, cursor = await list_by_id(session, stmt, t.Contact.id, query.limit, query.cursor)
        return Page[ContactView](
            items=[ContactView.of(c, await identities_of(session, c.id)) for c in rows], next_cursor=cursor
        )


@api.route("GET", "/contacts/{id}", summary="One contact with its identities", response=ContactView)
async def get_contact(request: web.Request) -> ContactView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        return ContactView.of(contact, await identities_of(session, contact.id))


class ContactPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = None
    labels: list[str] | None = Field(default=None, max_length=50)


@api.route(
    "PATCH",
    "/contacts/{id}",
    summary="Change a contact's name, attributes, labels",
    body=ContactPatch,
    response=ContactView,
)
async def patch_contact(request: web.Request, body: ContactPatch) -> ContactView:
    user = user_of(request)
    async with container_of(request).db.write() as session:
        contact = await visible_contact(session, user, path_id(request))
        if body.name is not None:
            contact.name = body.name
        if body.attributes is not None:
            contact.attributes = {**(contact.attributes or {}), **body.attributes}
        if body.labels is not None:
            contact.labels = sorted({x.strip().lower() for x in body.labels if x.strip()})
        await session.flush()
        return ContactView.of(contact, await identities_of(session, contact.id))
