"""Custom segmentations: a producer's rule "on this event, if this holds, add or remove this tag".

Checked before they are saved: the event type must happen to the product's kind (or be custom), a
``data.`` field must be one the event type carries, and the tag must not be an automatic one. An
active segmentation applies to events ingested after it (inbox.contact_events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.conditions import Condition, rule_problem, split_field
from inbox.contact_events import EventError
from inbox.products import EVENT_FIELDS, ProductKind, event_type_problem, field_problem, is_custom
from inbox.tags import AUTO_PREFIX, TagError, normalize_tag


class SegmentationFields(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    product_id: int | None = None  # Product.id; None: this event type of any product
    event_type: str = Field(min_length=1, max_length=64)
    condition: Condition = Field(default_factory=Condition)
    action: Literal["add_tag", "remove_tag"]
    tag: str = Field(min_length=1, max_length=200)
    active: bool = True


async def check(session: AsyncSession, account_id: int, fields: SegmentationFields) -> str:
    """The normalized tag if the segmentation can be saved; raises EventError naming the field."""
    kind: ProductKind | None = None
    if fields.product_id is not None:
        product = await session.get(t.Product, fields.product_id)
        if product is None or product.account_id != account_id:
            raise EventError("product_id", f"product {fields.product_id} does not exist")
        kind = ProductKind(product.kind)
        problem = event_type_problem(fields.event_type, kind)
    elif is_custom(fields.event_type) or fields.event_type in EVENT_FIELDS:
        problem = None
    else:
        problem = event_type_problem(fields.event_type, None)
    if problem is not None:
        raise EventError("event_type", problem)
    for n, rule in enumerate(fields.condition.rules):
        where = f"condition.rules[{n}]"
        problem = rule_problem(rule)
        if problem is None:
            source, name = split_field(rule.field) or ("", "")
            if source == "data":
                problem = field_problem(fields.event_type, name)
        if problem is not None:
            raise EventError(where, problem)
    try:
        tag = normalize_tag(fields.tag)
    except TagError as exc:
        raise EventError("tag", str(exc)) from None
    if tag.startswith(AUTO_PREFIX):
        raise EventError("tag", f"tags starting with {AUTO_PREFIX!r} are automatic: pick another tag")
    return tag


async def save(
    session: AsyncSession, row: t.Segmentation, account_id: int, fields: SegmentationFields, now: datetime
) -> t.Segmentation:
    """Check ``fields`` and write them onto ``row`` (a new or an existing segmentation)."""
    tag = await check(session, account_id, fields)
    row.account_id = account_id
    row.name = fields.name.strip()
    row.product_id = fields.product_id
    row.event_type = fields.event_type
    row.condition = fields.condition.model_dump(mode="json")
    row.action = fields.action
    row.tag = tag
    row.active = fields.active
    row.updated_at = now
    if row.id is None:
        row.created_at = now
        session.add(row)
    await session.flush()
    return row
