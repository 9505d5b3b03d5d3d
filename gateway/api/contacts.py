"""Contacts: search, read, edit; their tags (by hand) and the account's tags with counts; merges."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import container_of, path_id, user_of
from gateway.api.csvfile import csv_response
from gateway.api.errors import ApiError, field_error, forbidden, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.attributes import AttributeFilterError, attribute_condition, set_attributes
from inbox.contact_import import ImportFileError, import_contacts
from inbox.contact_limit import is_over, last_contact_inside
from inbox.contact_merge import MergeError, duplicates_of, merge_contacts, merges_into, plan_merge
from inbox.contacts import identities_of
from inbox.model import ChannelKind
from inbox.queries import list_by_id
from inbox.tags import TagError, add_tag, normalize_tag, remove_tag, tag_counts, tag_filter, tags_of
from inbox.views import ContactView, TagView

api = ApiRoutes()


MAX_EXPORT = 50_000


class ContactQuery(BaseModel):
    q: str | None = Field(default=None, max_length=200)
    tag: str | None = Field(default=None, min_length=1, max_length=200, description="has this tag")
    channel: ChannelKind | None = Field(default=None, description="has an identity on this channel kind")
    attribute: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="`key` (has the attribute) or `key=value` (equals it)",
    )
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    format: Literal["json", "csv"] = Field(default="json", description="csv: every match (the filters hold)")


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
    summary="Search contacts by name, email, phone or address; filter by tag, channel, attribute; CSV",
    query=ContactQuery,
    response=Page[ContactView],
)
async def list_contacts(request: web.Request, query: ContactQuery) -> Page[ContactView] | web.Response:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        inbox_ids = await visible_inbox_ids(session, user)
        stmt = select(t.Contact).where(t.Contact.account_id == user.account_id, _visible(user, inbox_ids))
        for condition in _filters(query):
            stmt = stmt.where(condition)
        if query.format == "csv":
            rows = list(await session.scalars(stmt.order_by(t.Contact.id).limit(MAX_EXPORT)))
            return await _export(session, rows)
        rows, cursor = await list_by_id(session, stmt, t.Contact.id, query.limit, query.cursor)
        return Page[ContactView](items=[await contact_view(session, c) for c in rows], next_cursor=cursor)


def _filters(query: ContactQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.q:
        pattern = "%" + query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
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
    if query.tag:
        try:
            conditions.append(tag_filter(any_of=[normalize_tag(query.tag)]))
        except TagError as exc:
            raise field_error("tag", str(exc)) from None
    if query.channel:
        conditions.append(
            exists().where(
                t.ContactIdentity.contact_id == t.Contact.id, t.ContactIdentity.kind == query.channel.value
            )
        )
    if query.attribute:
        key, sep, value = query.attribute.partition("=")
        try:
            conditions.append(
                attribute_condition(key.strip(), "eq", value)
                if sep
                else attribute_condition(key.strip(), "exists")
            )
        except AttributeFilterError as exc:
            raise field_error("attribute", str(exc)) from None
    return conditions


async def _export(session: AsyncSession, contacts: list[t.Contact]) -> web.Response:
    """Contacts as CSV: fields, identities and tags, then one column per attribute any of them has."""
    ids = [c.id for c in contacts]
    identities: dict[int, list[str]] = {}
    tags: dict[int, list[str]] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        for i in await session.scalars(
            select(t.ContactIdentity)
            .where(t.ContactIdentity.contact_id.in_(part))
            .order_by(t.ContactIdentity.id)
        ):
            identities.setdefault(i.contact_id, []).append(f"{i.kind}:{i.address}")
        for x in await session.scalars(
            select(t.ContactTag).where(t.ContactTag.contact_id.in_(part)).order_by(t.ContactTag.tag)
        ):
            tags.setdefault(x.contact_id, []).append(x.tag)
    keys = sorted({k for c in contacts for k in (c.attributes or {})})
    columns = [
        "id",
        "name",
        "email",
        "phone",
        "identities",
        "tags",
        "created_at",
        *(f"attributes.{k}" for k in keys),
    ]

    def cell(value: Any) -> Any:
        return value if value is None or isinstance(value, str | int | float) else json.dumps(value)

    rows = (
        [
            c.id,
            c.name,
            c.email,
            c.phone,
            "; ".join(identities.get(c.id, [])),
            "; ".join(tags.get(c.id, [])),
            c.created_at.isoformat(),
            *(cell((c.attributes or {}).get(k)) for k in keys),
        ]
        for c in contacts
    )
    return csv_response(columns, rows, "switchboard-contacts.csv")


class ImportBody(BaseModel):
    csv: str = Field(
        min_length=1, max_length=5_000_000, description="the file: a header line, then one contact a line"
    )
    columns: dict[str, str] | None = Field(
        default=None,
        description="column header -> name | email | phone | tags | attributes.<key> | ignore "
        "(default: by header name, other columns become attributes)",
    )
    default_region: str | None = Field(
        default=None, min_length=2, max_length=2, description="ISO country for phones without +country code"
    )


class ImportRowErrorView(BaseModel):
    line: int
    field: str | None
    message: str


class ImportResultView(BaseModel):
    created: int
    updated: int
    errors: list[ImportRowErrorView] = Field(description="rows not imported (or imported in part), by line")


@api.route(
    "POST",
    "/contacts/import",
    summary="Import contacts from CSV: bad rows reported by line, the rest imported (admins)",
    body=ImportBody,
    response=ImportResultView,
)
async def post_import(request: web.Request, body: ImportBody) -> ImportResultView:
    user = user_of(request)
    if not is_admin(user):
        raise forbidden("only admins import contacts")
    c = container_of(request)
    async with c.db.write() as session:
        try:
            result = await import_contacts(
                session,
                user.account_id,
                body.csv,
                mapping=body.columns,
                default_region=body.default_region.upper() if body.default_region else None,
                now=c.clock(),
            )
        except ImportFileError as exc:
            raise field_error(exc.field, str(exc)) from None
    return ImportResultView(
        created=result.created,
        updated=result.updated,
        errors=[ImportRowErrorView(line=e.line, field=e.field, message=e.message) for e in result.errors],
    )


async def contact_view(session: AsyncSession, contact: t.Contact) -> ContactView:
    """A contact with its identities, tags and whether it is past the plan's contact limit."""
    last_inside = await last_contact_inside(session, contact.account_id)
    return ContactView.of(
        contact,
        await identities_of(session, contact.id),
        await tags_of(session, contact.id),
        over_limit=is_over(contact.id, last_inside),
    )


@api.route("GET", "/contacts/{id}", summary="One contact with its identities and tags", response=ContactView)
async def get_contact(request: web.Request) -> ContactView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        return await contact_view(session, contact)


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
            try:
                await set_attributes(session, contact, body.attributes)
            except AttributeFilterError as exc:
                raise field_error("attributes", str(exc)) from None
        if body.labels is not None:
            contact.labels = sorted({x.strip().lower() for x in body.labels if x.strip()})
        await session.flush()
        return await contact_view(session, contact)


# -- tags ------------------------------------------------------------------------------------------


class TagBody(BaseModel):
    tag: str = Field(min_length=1, max_length=200)


@api.route(
    "GET", "/contacts/{id}/tags", summary="A contact's tags, automatic and manual", response=Page[TagView]
)
async def list_contact_tags(request: web.Request) -> Page[TagView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        return Page[TagView](items=[TagView.of(x) for x in await tags_of(session, contact.id)])


@api.route(
    "POST",
    "/contacts/{id}/tags",
    summary="Put a tag on a contact by hand (nothing changes if it has it)",
    body=TagBody,
    response=Page[TagView],
)
async def add_contact_tag(request: web.Request, body: TagBody) -> Page[TagView]:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        contact = await visible_contact(session, user, path_id(request))
        try:
            await add_tag(session, contact, body.tag, source="manual", now=c.clock())
        except TagError as exc:
            raise field_error("tag", str(exc)) from None
        return Page[TagView](items=[TagView.of(x) for x in await tags_of(session, contact.id)])


@api.route(
    "DELETE",
    "/contacts/{id}/tags/{tag}",
    summary="Take a manual tag off a contact (automatic tags belong to their rules: 422)",
    response=Page[TagView],
)
async def remove_contact_tag(request: web.Request) -> Page[TagView]:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        contact = await visible_contact(session, user, path_id(request))
        try:
            await remove_tag(session, contact, request.match_info["tag"], source="manual", now=c.clock())
        except TagError as exc:
            raise field_error("tag", str(exc)) from None
        return Page[TagView](items=[TagView.of(x) for x in await tags_of(session, contact.id)])


class TagCount(BaseModel):
    tag: str
    source: str  # auto | manual
    contacts: int


@api.route(
    "GET",
    "/tags",
    summary="The account's tags, automatic and manual, with contact counts (admins)",
    response=Page[TagCount],
)
async def list_tags(request: web.Request) -> Page[TagCount]:
    user = user_of(request)
    if not is_admin(user):
        raise forbidden("only admins and super admins see the account's tags")
    async with container_of(request).db.read() as session:
        counts = await tag_counts(session, user.account_id)
        return Page[TagCount](items=[TagCount(tag=tag, source=src, contacts=n) for tag, src, n in counts])


# -- merges ----------------------------------------------------------------------------------------


class MergeBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from", ge=1, le=2**62, description="the contact that goes away")


class MergeConflict(BaseModel):
    field: str  # name, email, phone, attributes.<key>, consent.<channel id>
    kept: Any
    dropped: Any
    source: str = Field(description="whose value was kept: into | from")


class MergePreview(BaseModel):
    """What ``POST /contacts/{id}/merge`` would do: the values that change, conflicts, rows that move."""

    into_id: int
    from_id: int
    newer: str = Field(description="the contact whose values win a conflict (later activity): into | from")
    changes: dict[str, Any]
    conflicts: list[MergeConflict]
    moves: dict[str, int]
    into: ContactView
    other: ContactView


class MergeView(BaseModel):
    id: int
    into_contact_id: int
    from_contact_id: int
    user_id: int | None
    conflicts: list[MergeConflict]
    snapshot: dict[str, Any] = Field(description="the merged-away contact as it was")
    created_at: datetime

    @classmethod
    def of(cls, m: t.ContactMerge) -> MergeView:
        return cls(
            id=m.id,
            into_contact_id=m.into_contact_id,
            from_contact_id=m.from_contact_id,
            user_id=m.user_id,
            conflicts=[_conflict(c) for c in m.conflicts or []],
            snapshot=dict(m.snapshot or {}),
            created_at=m.created_at,
        )


class MergeResult(BaseModel):
    contact: ContactView
    merge: MergeView


def _conflict(c: dict[str, Any]) -> MergeConflict:
    return MergeConflict(field=c["field"], kept=c["kept"], dropped=c["dropped"], source=c["from"])


async def _pair(
    session: AsyncSession, user: t.User, into_id: int, from_id: int
) -> tuple[t.Contact, t.Contact]:
    into = await visible_contact(session, user, into_id)
    if from_id == into_id:
        raise field_error("from", "a contact cannot be merged into itself")
    try:
        other = await visible_contact(session, user, from_id)
    except ApiError:
        raise field_error("from", f"contact {from_id} does not exist") from None
    return into, other


@api.route(
    "GET",
    "/contacts/{id}/duplicates",
    summary="Contacts sharing a normalized email or phone number with this one (merge suggestions)",
    response=Page[ContactView],
)
async def list_duplicates(request: web.Request) -> Page[ContactView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        inbox_ids = await visible_inbox_ids(session, user)
        found = []
        for other in await duplicates_of(session, contact):
            visible = await session.scalar(
                select(t.Contact.id).where(t.Contact.id == other.id, _visible(user, inbox_ids))
            )
            if visible is not None:
                found.append(await contact_view(session, other))
        return Page[ContactView](items=found)


@api.route(
    "GET",
    "/contacts/{id}/merge",
    summary="Preview a merge of another contact into this one (nothing changes)",
    query=MergeBody,
    response=MergePreview,
)
async def preview_merge(request: web.Request, query: MergeBody) -> MergePreview:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        into, other = await _pair(session, user, path_id(request), query.from_)
        plan = await plan_merge(session, into, other)
        return MergePreview(
            into_id=plan.into_id,
            from_id=plan.from_id,
            newer=plan.newer,
            changes={**plan.scalars, **{f"attributes.{k}": v for k, v in plan.attributes.items()}},
            conflicts=[_conflict(c) for c in plan.conflicts],
            moves=plan.moves,
            into=await contact_view(session, into),
            other=await contact_view(session, other),
        )


@api.route(
    "POST",
    "/contacts/{id}/merge",
    summary="Merge another contact into this one: identities, conversations, consent, tags, attributes move",
    body=MergeBody,
    response=MergeResult,
)
async def post_merge(request: web.Request, body: MergeBody) -> MergeResult:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        into, other = await _pair(session, user, path_id(request), body.from_)
        try:
            audit = await merge_contacts(session, into, other, user_id=user.id, now=c.clock())
        except MergeError as exc:
            raise field_error("from", str(exc)) from None
        return MergeResult(contact=await contact_view(session, into), merge=MergeView.of(audit))


@api.route(
    "GET",
    "/contacts/{id}/merges",
    summary="The audit of the merges into a contact, with each merged-away contact as it was",
    response=Page[MergeView],
)
async def list_merges(request: web.Request) -> Page[MergeView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        return Page[MergeView](items=[MergeView.of(m) for m in await merges_into(session, contact.id)])
