"""Contact events from integrations: stored once, the contact captured, tags applied by rules.

``ingest`` runs in the caller's transaction: a replayed event id changes nothing; an unknown contact
is created and marked ``auto_captured``; the product is created on first sight with its kind; the
standard rules (inbox.products) and the account's active segmentations (inbox.segmentations) add or
remove tags; ``contact.event`` is recorded for automations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.attributes import AttributeFilterError, indexed_number, set_attributes
from inbox.conditions import Condition, holds
from inbox.contacts import attach_identity, contact_by_identity, resolve_contact
from inbox.events import record_event
from inbox.identities import InvalidAddress, normalize_email, normalize_phone
from inbox.model import ChannelKind
from inbox.products import STANDARD_RULES, ProductKind, event_type_problem, product_tag
from inbox.tags import add_tag, remove_tag, tags_of

CONTACT_EVENT = "contact.event"
EXTERNAL_KIND = "external"  # the identity kind of an integration's own contact id


class EventError(ValueError):
    """An event that cannot be stored: ``field`` names the part of the body at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class EventContact(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _someone(self) -> EventContact:
        if not (self.email or self.phone or self.external_id):
            raise ValueError("give the contact's email, phone or external_id")
        return self


class EventProduct(BaseModel):
    id: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    kind: ProductKind | None = None


class EventIn(BaseModel):
    """What an integration posts (POST /events)."""

    id: str = Field(min_length=1, max_length=200)  # the integration's event id: a replay changes nothing
    type: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime
    contact: EventContact
    product: EventProduct | None = None
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Ingested:
    event: t.ContactEvent
    product: t.Product | None
    duplicate: bool
    contact_created: bool


async def ingest(
    session: AsyncSession, account_id: int, body: EventIn, *, source_id: int | None, now: datetime
) -> Ingested:
    """Store one event and apply its rules; raises EventError naming the field at fault."""
    known = await session.scalar(
        select(t.ContactEvent).where(
            t.ContactEvent.account_id == account_id, t.ContactEvent.external_id == body.id
        )
    )
    if known is not None:
        product = await session.get(t.Product, known.product_id) if known.product_id else None
        return Ingested(known, product, duplicate=True, contact_created=False)
    product = await _product(session, account_id, body)
    problem = event_type_problem(body.type, ProductKind(product.kind) if product else None)
    if problem is not None:
        raise EventError("type", problem)
    contact, created = await _contact(session, account_id, body.contact, now)
    if body.contact.attributes:
        try:
            await set_attributes(session, contact, body.contact.attributes)
        except AttributeFilterError as exc:
            raise EventError("contact.attributes", str(exc)) from None
    row = t.ContactEvent(
        account_id=account_id,
        external_id=body.id,
        contact_id=contact.id,
        product_id=product.id if product else None,
        source_id=source_id,
        type=body.type,
        data=body.data,
        effects=[],
        occurred_at=body.occurred_at,
        received_at=now,
    )
    session.add(row)
    await session.flush()
    row.effects = await _apply_rules(session, contact, row, product, now)
    await record_event(
        session,
        CONTACT_EVENT,
        account_id=account_id,
        now=now,
        payload={
            "contact_id": contact.id,
            "event_id": row.id,
            "type": row.type,
            "product_id": row.product_id,
            "contact_created": created,
        },
    )
    return Ingested(row, product, duplicate=False, contact_created=created)


async def _product(session: AsyncSession, account_id: int, body: EventIn) -> t.Product | None:
    if body.product is None:
        return None
    external_id = body.product.id.strip()
    product = await session.scalar(
        select(t.Product).where(t.Product.account_id == account_id, t.Product.external_id == external_id)
    )
    if product is None:
        if body.product.kind is None:
            raise EventError("product.kind", f"product {external_id!r} is new: give its kind")
        product = t.Product(
            account_id=account_id,
            external_id=external_id,
            name=body.product.name or external_id,
            kind=body.product.kind.value,
            created_at=body.occurred_at,
        )
        session.add(product)
        await session.flush()
    elif body.product.kind is not None and body.product.kind.value != product.kind:
        raise EventError("product.kind", f"product {external_id!r} is a {product.kind}")
    elif body.product.name and body.product.name != product.name:
        product.name = body.product.name
    return product


async def _contact(
    session: AsyncSession, account_id: int, who: EventContact, now: datetime
) -> tuple[t.Contact, bool]:
    """The contact behind the first address that is known, else a new one marked auto-captured."""
    addresses: list[tuple[str, str]] = []
    try:
        if who.email:
            addresses.append((ChannelKind.EMAIL.value, normalize_email(who.email)))
        if who.phone:
            addresses.append((ChannelKind.WHATSAPP.value, normalize_phone(who.phone)))
    except InvalidAddress as exc:
        raise EventError("contact.email" if "email" in str(exc) else "contact.phone", str(exc)) from None
    if who.external_id:
        addresses.append((EXTERNAL_KIND, who.external_id.strip()))
    contact = None
    for kind, address in addresses:
        contact = await contact_by_identity(session, account_id, kind, address)
        if contact is not None:
            break
    created = contact is None
    if contact is None:
        kind, address = addresses[0]
        contact = await resolve_contact(session, account_id, kind, address, who.name, now)
        contact.auto_captured = True
    elif who.name and not contact.name:
        contact.name = who.name
    for kind, address in addresses:
        if await attach_identity(session, contact, kind, address):
            if kind == ChannelKind.EMAIL and not contact.email:
                contact.email = address
            if kind == ChannelKind.WHATSAPP and not contact.phone:
                contact.phone = address
    return contact, created


async def _apply_rules(
    session: AsyncSession, contact: t.Contact, event: t.ContactEvent, product: t.Product | None, now: datetime
) -> list[dict[str, Any]]:
    """The standard rules for the product, then the account's active segmentations, in id order."""
    effects: list[dict[str, Any]] = []
    if product is not None:
        for rule in STANDARD_RULES:
            if rule.event_type != event.type:
                continue
            if rule.when_complete and (indexed_number(event.data.get("percent")) or 0) < 100:
                continue
            tag = product_tag(product.external_id, rule.suffix)
            change = add_tag if rule.action == "add_tag" else remove_tag
            if await change(session, contact, tag, source="auto", now=now):
                effects.append({"tag": tag, "action": rule.action, "rule": "standard"})
    segmentations = await session.scalars(
        select(t.Segmentation)
        .where(
            t.Segmentation.account_id == event.account_id,
            t.Segmentation.event_type == event.type,
            t.Segmentation.active.is_(True),
        )
        .order_by(t.Segmentation.id)
    )
    current: set[str] | None = None
    for seg in segmentations:
        if seg.product_id is not None and seg.product_id != event.product_id:
            continue
        if current is None:
            current = {x.tag for x in await tags_of(session, contact.id)}
        condition = Condition.model_validate(seg.condition or {})
        if not holds(condition, data=event.data, attributes=contact.attributes, tags=current):
            continue
        if seg.action == "add_tag":
            changed = await add_tag(session, contact, seg.tag, source="manual", now=now)
            current.add(seg.tag)
        else:
            changed = await remove_tag(session, contact, seg.tag, source="manual", now=now)
            current.discard(seg.tag)
        if changed:
            effects.append({"tag": seg.tag, "action": seg.action, "rule": seg.id})
    return effects
