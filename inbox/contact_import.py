"""Importing contacts from a CSV file: columns mapped to fields, attributes and tags.

Each row is matched to an existing contact by its normalized email or phone number (an identity or
the contact's own field), else a new contact is created with an email and a WhatsApp identity, so the
person's next message joins it. A bad row (an address that does not parse, an email and a phone of two
different contacts, a wrong number of cells) is reported with its line and skipped; the rest import.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.attributes import AttributeFilterError, check_key, set_attributes
from inbox.identities import InvalidAddress, normalize_email, normalize_phone
from inbox.tags import TagError, add_tag

FIELDS = ("name", "email", "phone", "tags")
IGNORE = "ignore"
ATTRIBUTE_PREFIX = "attributes."
MAX_ROWS = 20_000


class ImportFileError(ValueError):
    """A file that cannot be imported at all (no header, an unknown mapping target)."""

    def __init__(self, message: str, field: str = "csv") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class RowError:
    line: int
    field: str | None
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)


def default_mapping(headers: list[str]) -> dict[str, str]:
    """name/email/phone/tags columns by their (case-insensitive) header; every other column an attribute
    named by its header lower-cased, spaces as ``_`` ("Plan Type" -> ``attributes.plan_type``)."""
    mapping: dict[str, str] = {}
    for header in headers:
        key = header.strip().lower()
        mapping[header] = key if key in FIELDS else ATTRIBUTE_PREFIX + "_".join(key.split())
    return mapping


def _check_mapping(mapping: dict[str, str], headers: list[str]) -> None:
    for column, target in mapping.items():
        if column not in headers:
            raise ImportFileError(f"the file has no column {column!r}", "columns")
        if target in FIELDS or target == IGNORE:
            continue
        if not target.startswith(ATTRIBUTE_PREFIX):
            raise ImportFileError(
                f"column {column!r} maps to {target!r}: use name, email, phone, tags, "
                f"{ATTRIBUTE_PREFIX}<key> or {IGNORE}",
                "columns",
            )
        try:
            check_key(target[len(ATTRIBUTE_PREFIX) :])
        except AttributeFilterError as exc:
            raise ImportFileError(f"column {column!r}: {exc}", "columns") from None


async def _by_address(session: AsyncSession, account_id: int, kind: str, address: str) -> t.Contact | None:
    column = t.Contact.email if kind == "email" else t.Contact.phone
    identity = select(t.ContactIdentity.contact_id).where(
        t.ContactIdentity.account_id == account_id,
        t.ContactIdentity.kind == kind,
        t.ContactIdentity.address == address,
    )
    own = func.lower(column) == address if kind == "email" else column == address
    contact: t.Contact | None = await session.scalar(
        select(t.Contact)
        .where(t.Contact.account_id == account_id, or_(t.Contact.id.in_(identity), own))
        .order_by(t.Contact.id)
        .limit(1)
    )
    return contact


async def _ensure_identity(session: AsyncSession, contact: t.Contact, kind: str, address: str) -> None:
    taken = await session.scalar(
        select(t.ContactIdentity.id).where(
            t.ContactIdentity.account_id == contact.account_id,
            t.ContactIdentity.kind == kind,
            t.ContactIdentity.address == address,
        )
    )
    if taken is None:
        session.add(
            t.ContactIdentity(
                account_id=contact.account_id, kind=kind, address=address, contact_id=contact.id
            )
        )


async def import_contacts(
    session: AsyncSession,
    account_id: int,
    text: str,
    *,
    mapping: dict[str, str] | None,
    default_region: str | None,
    now: datetime,
) -> ImportResult:
    """Import the CSV ``text`` (a header line, then one contact per line) into the account."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        headers = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty: expected a header line") from None
    except csv.Error as exc:
        raise ImportFileError(f"line 1: {exc}") from None
    if not any(h.strip() for h in headers):
        raise ImportFileError("the first line must name the columns")
    mapping = dict(mapping) if mapping is not None else default_mapping(headers)
    _check_mapping(mapping, headers)
    result = ImportResult()
    line = reader.line_num + 1
    rows = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append(RowError(line, None, str(exc)))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        rows += 1
        if rows > MAX_ROWS:
            result.errors.append(
                RowError(start, None, f"more than {MAX_ROWS} rows: the rest is not imported")
            )
            break
        if len(cells) != len(headers):
            result.errors.append(
                RowError(start, None, f"{len(cells)} cells where the header names {len(headers)} columns")
            )
            continue
        await _import_row(
            session,
            account_id,
            start,
            dict(zip(headers, cells, strict=True)),
            mapping,
            default_region,
            now,
            result,
        )
    return result


async def _import_row(
    session: AsyncSession,
    account_id: int,
    line: int,
    row: dict[str, str],
    mapping: dict[str, str],
    default_region: str | None,
    now: datetime,
    result: ImportResult,
) -> None:
    values: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for column, target in mapping.items():
        cell = row.get(column, "").strip()
        if not cell or target == IGNORE:
            continue
        if target.startswith(ATTRIBUTE_PREFIX):
            attributes[target[len(ATTRIBUTE_PREFIX) :]] = cell
        else:
            values[target] = cell
    try:
        email = normalize_email(values["email"]) if "email" in values else None
    except InvalidAddress as exc:
        result.errors.append(RowError(line, "email", str(exc)))
        return
    try:
        phone = normalize_phone(values["phone"], default_region) if "phone" in values else None
    except InvalidAddress as exc:
        result.errors.append(RowError(line, "phone", str(exc)))
        return
    if email is None and phone is None:
        result.errors.append(RowError(line, None, "a row needs an email or a phone number"))
        return
    tags = [x.strip() for x in values.get("tags", "").replace(",", ";").split(";") if x.strip()]
    by_email = await _by_address(session, account_id, "email", email) if email else None
    by_phone = await _by_address(session, account_id, "whatsapp", phone) if phone else None
    if by_email is not None and by_phone is not None and by_email.id != by_phone.id:
        result.errors.append(
            RowError(
                line,
                "phone",
                f"the email is contact {by_email.id}'s, the phone contact {by_phone.id}'s: merge them first",
            )
        )
        return
    contact = by_email or by_phone
    if contact is None:
        contact = t.Contact(
            account_id=account_id,
            name=values.get("name"),
            email=email,
            phone=phone,
            attributes={},
            labels=[],
            created_at=now,
        )
        session.add(contact)
        await session.flush()
        result.created += 1
    else:
        if values.get("name") and not contact.name:
            contact.name = values["name"]
        contact.email = contact.email or email
        contact.phone = contact.phone or phone
        result.updated += 1
    if email:
        await _ensure_identity(session, contact, "email", email)
    if phone:
        await _ensure_identity(session, contact, "whatsapp", phone)
    if attributes:
        await set_attributes(session, contact, attributes)
    for tag in tags:
        try:
            await add_tag(session, contact, tag, source="manual", now=now)
        except TagError as exc:
            result.errors.append(RowError(line, "tags", f"{exc} (the rest of the row is imported)"))
    await session.flush()
