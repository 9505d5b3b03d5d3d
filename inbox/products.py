"""What products are and what can happen to their contacts: kinds, event types, data fields, standard tags.

Each product kind accepts the common purchase events plus its own (a course has content, a
subscription starts and ends). Each event type names the data fields it carries, so a segmentation's
condition can be checked before it is saved. Custom event types (``custom.<name>``) are accepted for
every kind and carry any fields. The standard rules put the automatic tags ``product:<id>:<what>`` on
the contact; nobody edits or removes them by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from inbox.tags import AUTO_PREFIX


class ProductKind(StrEnum):
    COURSE = "course"
    EBOOK = "ebook"
    SUBSCRIPTION = "subscription"
    COMMUNITY = "community"
    EVENT = "event"
    PHYSICAL = "physical"


FieldType = Literal["number", "text"]

# Fields of each standard event type's ``data`` (what a condition may test).
_MONEY: dict[str, FieldType] = {"value": "number", "currency": "text"}
EVENT_FIELDS: dict[str, dict[str, FieldType]] = {
    "purchase_approved": {**_MONEY, "payment_method": "text", "offer": "text", "installments": "number"},
    "purchase_canceled": {**_MONEY, "reason": "text"},
    "purchase_refunded": {**_MONEY, "reason": "text"},
    "cart_abandoned": {**_MONEY, "checkout_url": "text", "offer": "text"},
    "subscription_started": {**_MONEY, "plan": "text", "period": "text"},
    "subscription_canceled": {"plan": "text", "reason": "text"},
    "content_accessed": {"module": "text", "lesson": "text"},
    "content_progress": {"module": "text", "percent": "number"},
    "product_rated": {"rating": "number", "comment": "text"},
}
_PURCHASE = ("purchase_approved", "purchase_canceled", "purchase_refunded", "cart_abandoned", "product_rated")
_SUBSCRIPTION = ("subscription_started", "subscription_canceled")
_CONTENT = ("content_accessed", "content_progress")
KIND_EVENTS: dict[ProductKind, tuple[str, ...]] = {
    ProductKind.COURSE: _PURCHASE + _CONTENT,
    ProductKind.EBOOK: (*_PURCHASE, "content_accessed"),
    ProductKind.SUBSCRIPTION: _PURCHASE + _SUBSCRIPTION + _CONTENT,
    ProductKind.COMMUNITY: (*_PURCHASE, *_SUBSCRIPTION, "content_accessed"),
    ProductKind.EVENT: _PURCHASE,
    ProductKind.PHYSICAL: _PURCHASE,
}
CUSTOM_TYPE = re.compile(r"^custom\.[a-z0-9_]{1,56}$")


def is_custom(event_type: str) -> bool:
    return CUSTOM_TYPE.match(event_type) is not None


def event_type_problem(event_type: str, kind: ProductKind | None) -> str | None:
    """Why ``event_type`` cannot happen to a product of ``kind`` (None: no product), or None if it can."""
    if is_custom(event_type):
        return None
    if event_type not in EVENT_FIELDS:
        known = ", ".join(EVENT_FIELDS)
        return f"unknown event type {event_type!r}: use one of {known}, or custom.<name>"
    if kind is None:
        return f"{event_type} needs a product"
    if event_type not in KIND_EVENTS[kind]:
        allowed = ", ".join(KIND_EVENTS[kind])
        return f"{event_type} does not happen to a {kind.value} product; it has {allowed}"
    return None


def field_problem(event_type: str, name: str) -> str | None:
    """Why ``data.<name>`` cannot be tested on ``event_type`` events, or None if it can."""
    if is_custom(event_type):
        return None
    fields = EVENT_FIELDS.get(event_type, {})
    if name not in fields:
        return f"{event_type} events have no field {name!r}; they have {', '.join(fields) or 'none'}"
    return None


@dataclass(frozen=True)
class TagRule:
    """A standard rule: on ``event_type``, add or remove ``product:<id>:<suffix>``."""

    event_type: str
    action: Literal["add_tag", "remove_tag"]
    suffix: str
    # Only when data.percent reaches 100 (content_progress → completed).
    when_complete: bool = False


STANDARD_RULES: tuple[TagRule, ...] = (
    TagRule("purchase_approved", "add_tag", "buyer"),
    TagRule("purchase_approved", "remove_tag", "cart_abandoned"),
    TagRule("purchase_canceled", "add_tag", "canceled"),
    TagRule("purchase_refunded", "add_tag", "refunded"),
    TagRule("purchase_refunded", "remove_tag", "buyer"),
    TagRule("cart_abandoned", "add_tag", "cart_abandoned"),
    TagRule("subscription_started", "add_tag", "subscriber"),
    TagRule("subscription_started", "remove_tag", "subscription_canceled"),
    TagRule("subscription_canceled", "add_tag", "subscription_canceled"),
    TagRule("subscription_canceled", "remove_tag", "subscriber"),
    TagRule("content_accessed", "add_tag", "student"),
    TagRule("content_progress", "add_tag", "completed", when_complete=True),
    TagRule("product_rated", "add_tag", "rated"),
)


def product_tag(product_external_id: str, suffix: str) -> str:
    return f"{AUTO_PREFIX}{product_external_id.strip().lower()}:{suffix}"


def rules_for(kind: ProductKind) -> list[TagRule]:
    """The standard rules that can fire for a product of ``kind``."""
    return [r for r in STANDARD_RULES if r.event_type in KIND_EVENTS[kind]]
