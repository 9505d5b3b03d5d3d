"""Contact events in (integration token or signed webhook), their history, products, event sources.

``POST /events`` takes a bearer token of an integration user (or an admin); ``POST
/webhooks/events/{source_id}`` takes the same body signed with the source's secret
(``X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>``). A replayed event id answers
200 with the stored event and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.api.admin import require_admin
from gateway.api.contacts import visible_contact
from gateway.api.context import container_of, path_id, user_of
from gateway.api.errors import ApiError, field_error, forbidden, not_found
from gateway.api.spec import ApiRoutes, Page, parse_body
from inbox import tables as t
from inbox.contact_events import EventError, EventIn, ingest
from inbox.model import Role
from inbox.products import KIND_EVENTS, ProductKind, product_tag, rules_for
from inbox.queries import list_by_id

api = ApiRoutes()

SIGNATURE_HEADER = "X-Switchboard-Signature"
EVENT_ROLES = frozenset({Role.INTEGRATION, Role.ADMIN, Role.SUPER_ADMIN})


class ProductView(BaseModel):
    id: int
    external_id: str
    name: str
    kind: str

    @classmethod
    def of(cls, p: t.Product) -> ProductView:
        return cls(id=p.id, external_id=p.external_id, name=p.name, kind=p.kind)


class ContactEventView(BaseModel):
    id: int
    external_id: str
    type: str
    contact_id: int
    product: ProductView | None
    data: dict[str, Any]
    effects: list[dict[str, Any]]  # the tags it added or removed: {tag, action, rule}
    occurred_at: datetime
    received_at: datetime

    @classmethod
    def of(cls, e: t.ContactEvent, product: t.Product | None) -> ContactEventView:
        return cls(
            id=e.id,
            external_id=e.external_id,
            type=e.type,
            contact_id=e.contact_id,
            product=ProductView.of(product) if product else None,
            data=dict(e.data or {}),
            effects=list(e.effects or []),
            occurred_at=e.occurred_at,
            received_at=e.received_at,
        )


class EventResult(BaseModel):
    event: ContactEventView
    duplicate: bool  # the id was seen before: nothing changed
    contact_created: bool  # the contact was new: captured automatically (AUTO)


async def _ingest(
    request: web.Request, account_id: int, body: EventIn, source_id: int | None
) -> web.Response:
    c = container_of(request)
    for attempt in (1, 2):
        try:
            async with c.db.write() as session:
                done = await ingest(session, account_id, body, source_id=source_id, now=c.clock())
                result = EventResult(
                    event=ContactEventView.of(done.event, done.product),
                    duplicate=done.duplicate,
                    contact_created=done.contact_created,
                )
            break
        except EventError as exc:
            raise field_error(exc.field, exc.problem) from None
        except IntegrityError:
            # PostgreSQL: the same event id (or a new product, contact) stored by a concurrent post.
            if attempt == 2:
                raise
    return web.json_response(text=result.model_dump_json(), status=200 if result.duplicate else 201)


@api.route(
    "POST",
    "/events",
    summary="Record a contact event (integration users and admins); a replayed id changes nothing",
    body=EventIn,
    response=EventResult,
    status=201,
)
async def post_event(request: web.Request, body: EventIn) -> web.Response:
    user = user_of(request)
    if user.role not in EVENT_ROLES:
        raise forbidden("only integration users and admins may post events")
    return await _ingest(request, user.account_id, body, None)


async def signed_event(request: web.Request) -> web.StreamResponse:
    """``POST /webhooks/events/{source_id}``: the body of POST /events, signed with the source's secret."""
    raw_id = request.match_info["source_id"]
    if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
        raise ApiError(404, "not_found", f"no event source {raw_id!r}")
    async with container_of(request).db.read() as session:
        source = await session.get(t.EventSource, int(raw_id))
    raw = await request.read()
    given = request.headers.get(SIGNATURE_HEADER, "").removeprefix("sha256=")
    if source is None:
        raise ApiError(404, "not_found", f"no event source {raw_id}")
    expected = hmac.new(source.secret.encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the body")
    body = await parse_body(request, EventIn)
    return await _ingest(request, source.account_id, body, source.id)


def add_routes(app: web.Application) -> None:
    """Before the channel webhooks (``/webhooks/{kind}/{channel_id}`` would take it otherwise)."""
    app.router.add_post("/webhooks/events/{source_id}", signed_event)


# -- history -----------------------------------------------------------------------------------------


class HistoryQuery(BaseModel):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


async def _page(session: Any, stmt: Any, query: HistoryQuery) -> Page[ContactEventView]:
    rows, cursor = await list_by_id(session, stmt, t.ContactEvent.id, query.limit, query.cursor)
    products: dict[int, t.Product | None] = {}
    for row in rows:
        if row.product_id is not None and row.product_id not in products:
            products[row.product_id] = await session.get(t.Product, row.product_id)
    return Page[ContactEventView](
        items=[ContactEventView.of(r, products.get(r.product_id) if r.product_id else None) for r in rows],
        next_cursor=cursor,
    )


@api.route(
    "GET",
    "/contacts/{id}/events",
    summary="A contact's events, oldest first",
    query=HistoryQuery,
    response=Page[ContactEventView],
)
async def contact_events(request: web.Request, query: HistoryQuery) -> Page[ContactEventView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        stmt = select(t.ContactEvent).where(t.ContactEvent.contact_id == contact.id)
        return await _page(session, stmt, query)


# -- products ----------------------------------------------------------------------------------------


class TagRuleView(BaseModel):
    event_type: str
    action: str
    tag: str


class ProductDetail(ProductView):
    event_types: list[str]
    automatic_tags: list[TagRuleView]  # the standard rules: cannot be edited or removed


async def _product(request: web.Request, user: t.User) -> t.Product:
    async with container_of(request).db.read() as session:
        product = await session.get(t.Product, path_id(request))
    if product is None or product.account_id != user.account_id:
        raise not_found("product", request.match_info["id"])
    return product


@api.route(
    "GET", "/products", summary="The products events were posted for (admins)", response=Page[ProductView]
)
async def list_products(request: web.Request) -> Page[ProductView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.Product).where(t.Product.account_id == user.account_id).order_by(t.Product.id)
        )
        return Page[ProductView](items=[ProductView.of(p) for p in rows])


@api.route(
    "GET",
    "/products/{id}",
    summary="A product with its event types and automatic tags (admins)",
    response=ProductDetail,
)
async def get_product(request: web.Request) -> ProductDetail:
    product = await _product(request, require_admin(request))
    kind = ProductKind(product.kind)
    return ProductDetail(
        **ProductView.of(product).model_dump(),
        event_types=list(KIND_EVENTS[kind]),
        automatic_tags=[
            TagRuleView(
                event_type=r.event_type, action=r.action, tag=product_tag(product.external_id, r.suffix)
            )
            for r in rules_for(kind)
        ],
    )


@api.route(
    "GET",
    "/products/{id}/events",
    summary="A product's events, oldest first (admins)",
    query=HistoryQuery,
    response=Page[ContactEventView],
)
async def product_events(request: web.Request, query: HistoryQuery) -> Page[ContactEventView]:
    product = await _product(request, require_admin(request))
    async with container_of(request).db.read() as session:
        stmt = select(t.ContactEvent).where(t.ContactEvent.product_id == product.id)
        return await _page(session, stmt, query)


# -- event sources -------------------------------------------------------------------------------------


class SourceBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class SourceView(BaseModel):
    id: int
    name: str
    webhook_path: str
    created_at: datetime
    secret: str | None = None  # only in the answer to POST


@api.route(
    "POST",
    "/event-sources",
    summary="A signed webhook for an integration's events; the answer holds its secret once (admins)",
    body=SourceBody,
    response=SourceView,
    status=201,
)
async def create_source(request: web.Request, body: SourceBody) -> SourceView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        row = t.EventSource(
            account_id=user.account_id, name=body.name, secret=secrets.token_hex(32), created_at=c.clock()
        )
        session.add(row)
        await session.flush()
        return SourceView(
            id=row.id,
            name=row.name,
            webhook_path=f"/webhooks/events/{row.id}",
            created_at=row.created_at,
            secret=row.secret,
        )


@api.route(
    "GET",
    "/event-sources",
    summary="The account's event sources, without secrets (admins)",
    response=Page[SourceView],
)
async def list_sources(request: web.Request) -> Page[SourceView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.EventSource)
            .where(t.EventSource.account_id == user.account_id)
            .order_by(t.EventSource.id)
        )
        return Page[SourceView](
            items=[
                SourceView(
                    id=r.id, name=r.name, webhook_path=f"/webhooks/events/{r.id}", created_at=r.created_at
                )
                for r in rows
            ]
        )
