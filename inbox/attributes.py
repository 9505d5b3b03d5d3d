"""Contact attributes: ``Contact.attributes`` is the record, ``contact_attributes`` its index for filters.

Change attributes only through ``set_attributes`` so both stay equal. ``attribute_condition`` is the
one way to select contacts by an attribute (segments, audiences, automation conditions in SQL).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, exists, func, insert
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t

AttributeOp = Literal["eq", "ne", "contains", "gt", "gte", "lt", "lte", "in", "exists", "not_exists"]
ATTRIBUTE_OPS: tuple[str, ...] = (
    "eq",
    "ne",
    "contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "exists",
    "not_exists",
)
MAX_KEY = 100
MAX_TEXT = 500


class AttributeFilterError(ValueError):
    """An attribute key or filter that cannot be used."""


def indexed_text(value: Any) -> str | None:
    """How a scalar is compared as text: booleans as ``true``/``false``; lists and objects are not."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format(value, "g") if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


def indexed_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY:
        raise AttributeFilterError(f"an attribute key has 1 to {MAX_KEY} characters")
    return key


async def set_attributes(session: AsyncSession, contact: t.Contact, changes: dict[str, Any]) -> None:
    """Merge ``changes`` into the contact's attributes (a None value removes the key) and re-index them."""
    for key in changes:
        check_key(key)
    merged = {**(contact.attributes or {}), **changes}
    contact.attributes = {k: v for k, v in merged.items() if v is not None}
    if contact.id is None:
        await session.flush()
    await session.execute(
        delete(t.ContactAttribute).where(
            t.ContactAttribute.contact_id == contact.id, t.ContactAttribute.key.in_(list(changes))
        )
    )
    rows = [
        {
            "contact_id": contact.id,
            "key": key,
            "account_id": contact.account_id,
            "text_value": indexed_text(value),
            "number_value": indexed_number(value),
        }
        for key, value in changes.items()
        if indexed_text(value) is not None
    ]
    if rows:
        await session.execute(insert(t.ContactAttribute), rows)


def attribute_condition(key: str, op: AttributeOp, value: Any = None) -> ColumnElement[bool]:
    """A condition on ``t.Contact`` rows: the attribute ``key`` compared with ``value`` by ``op``.

    Numeric operators (gt, gte, lt, lte) compare numbers; eq/ne/in compare the indexed text (so
    ``eq 10`` matches 10 and "10"); ``ne`` also matches contacts without the key; ``contains`` is a
    case-insensitive substring test.
    """
    check_key(key)
    a = t.ContactAttribute
    base = [a.contact_id == t.Contact.id, a.key == key]
    if op == "exists":
        return exists().where(*base)
    if op == "not_exists":
        return ~exists().where(*base)
    if op in ("gt", "gte", "lt", "lte"):
        number = indexed_number(value)
        if number is None:
            raise AttributeFilterError(f"{op} needs a number, not {value!r}")
        compare = {
            "gt": a.number_value > number,
            "gte": a.number_value >= number,
            "lt": a.number_value < number,
            "lte": a.number_value <= number,
        }[op]
        return exists().where(*base, compare)
    if op == "in":
        if not isinstance(value, list) or not value:
            raise AttributeFilterError("in needs a non-empty list")
        texts = [x for x in (indexed_text(v) for v in value) if x is not None]
        return exists().where(*base, a.text_value.in_(texts))
    text = indexed_text(value)
    if text is None:
        raise AttributeFilterError(f"{op} needs a text, a number or a boolean")
    if op == "eq":
        return exists().where(*base, a.text_value == text)
    if op == "ne":
        return ~exists().where(*base, a.text_value == text)
    if op == "contains":
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return exists().where(*base, func.lower(a.text_value).like(pattern, escape="\\"))
    raise AttributeFilterError(f"unknown operator {op!r}; use one of {', '.join(ATTRIBUTE_OPS)}")
