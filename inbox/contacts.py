"""Contacts and their identities on each channel kind."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.db import insert_now, insert_returning

# Run for every inbound message: built once (see inbox/inbound.py).
_BY_IDENTITY = (
    select(t.Contact)
    .join(t.ContactIdentity, t.ContactIdentity.contact_id == t.Contact.id)
    .where(
        t.ContactIdentity.account_id == bindparam("account_id"),
        t.ContactIdentity.kind == bindparam("kind"),
        t.ContactIdentity.address == bindparam("address"),
    )
)
_INSERT_CONTACT = insert_returning(cast(Table, t.Contact.__table__))
_INSERT_IDENTITY = insert_returning(cast(Table, t.ContactIdentity.__table__))


async def resolve_contact(
    session: AsyncSession, account_id: int, kind: str, address: str, name: str | None, now: datetime
) -> t.Contact:
    """The contact behind a normalized address, created with its identity on first sight."""
    contact = await contact_by_identity(session, account_id, kind, address)
    if contact is not None:
        if name and not contact.name:
            contact.name = name
        return contact
    contact = t.Contact(
        account_id=account_id,
        name=name,
        email=address if kind == "email" else None,
        phone=address if kind == "whatsapp" else None,
        attributes={},
        labels=[],
        created_at=now,
    )
    await insert_now(session, contact, _INSERT_CONTACT)
    identity = t.ContactIdentity(account_id=account_id, kind=kind, address=address, contact_id=contact.id)
    await insert_now(session, identity, _INSERT_IDENTITY)
    return contact


async def identities_of(session: AsyncSession, contact_id: int) -> list[t.ContactIdentity]:
    rows = await session.scalars(
        select(t.ContactIdentity)
        .where(t.ContactIdentity.contact_id == contact_id)
        .order_by(t.ContactIdentity.id)
    )
    return list(rows)


async def contact_by_identity(
    session: AsyncSession, account_id: int, kind: str, address: str
) -> t.Contact | None:
    contact: t.Contact | None = await session.scalar(
        _BY_IDENTITY, {"account_id": account_id, "kind": kind, "address": address}
    )
    return contact


async def attach_identity(session: AsyncSession, contact: t.Contact, kind: str, address: str) -> bool:
    """Give the contact this (normalized) address unless someone already has it; True if it was added."""
    if await contact_by_identity(session, contact.account_id, kind, address) is not None:
        return False
    session.add(
        t.ContactIdentity(account_id=contact.account_id, kind=kind, address=address, contact_id=contact.id)
    )
    await session.flush()
    return True
