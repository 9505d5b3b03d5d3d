"""Custom segmentations (admins): on an event, if a condition holds, add or remove a tag."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import select

from gateway.api.admin import require_admin
from gateway.api.context import container_of, path_id
from gateway.api.errors import field_error, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.contact_events import EventError
from inbox.segmentations import SegmentationFields, save

api = ApiRoutes()


class SegmentationView(BaseModel):
    id: int
    name: str
    product_id: int | None
    event_type: str
    condition: dict[str, Any]
    action: str
    tag: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: t.Segmentation) -> SegmentationView:
        return cls(
            id=s.id,
            name=s.name,
            product_id=s.product_id,
            event_type=s.event_type,
            condition=dict(s.condition or {}),
            action=s.action,
            tag=s.tag,
            active=s.active,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


@api.route(
    "POST",
    "/segmentations",
    summary="Create a segmentation; its event type must suit the product's kind (admins)",
    body=SegmentationFields,
    response=SegmentationView,
    status=201,
)
async def create_segmentation(request: web.Request, body: SegmentationFields) -> SegmentationView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        try:
            row = await save(session, t.Segmentation(), user.account_id, body, c.clock())
        except EventError as exc:
            raise field_error(exc.field, exc.problem) from None
        return SegmentationView.of(row)


@api.route(
    "GET", "/segmentations", summary="The account's segmentations (admins)", response=Page[SegmentationView]
)
async def list_segmentations(request: web.Request) -> Page[SegmentationView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.Segmentation)
            .where(t.Segmentation.account_id == user.account_id)
            .order_by(t.Segmentation.id)
        )
        return Page[SegmentationView](items=[SegmentationView.of(r) for r in rows])


@api.route(
    "PUT",
    "/segmentations/{id}",
    summary="Replace a segmentation (e.g. activate it: it applies to events from then on) (admins)",
    body=SegmentationFields,
    response=SegmentationView,
)
async def put_segmentation(request: web.Request, body: SegmentationFields) -> SegmentationView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        row = await session.get(t.Segmentation, path_id(request))
        if row is None or row.account_id != user.account_id:
            raise not_found("segmentation", request.match_info["id"])
        try:
            await save(session, row, user.account_id, body, c.clock())
        except EventError as exc:
            raise field_error(exc.field, exc.problem) from None
        return SegmentationView.of(row)


@api.route(
    "DELETE", "/segmentations/{id}", summary="Delete a segmentation; tags it gave stay (admins)", status=204
)
async def delete_segmentation(request: web.Request) -> None:
    user = require_admin(request)
    async with container_of(request).db.write() as session:
        row = await session.get(t.Segmentation, path_id(request))
        if row is None or row.account_id != user.account_id:
            raise not_found("segmentation", request.match_info["id"])
        await session.delete(row)
