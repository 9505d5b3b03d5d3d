"""Contact attributes: ``Contact.attributes`` is the record, ``contact_attributes`` its index for filters.

Change attributes only through ``set_attributes`` so both stay equal. ``attribute_condition`` is the
one way to select contacts by an attribute (segments, audiences, automation conditions in SQL).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t

AttributeOp = Literal[
    "eq", "ne", "contains", "gt", "gte", "lt", "lte", "between", "in", "exists", "not_exists"
]
ATTRIBUTE_OPS: tuple[str, ...] = (
    "eq",
    "ne",
    "contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
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
    # List values (``badges: ["gold", "early"]``) are indexed item by item, for ``list_contains``.
    await session.execute(
        delete(t.ContactAttributeItem).where(
            t.ContactAttributeItem.contact_id == contact.id, t.ContactAttributeItem.key.in_(list(changes))
        )
    )
    items = [
        {"contact_id": contact.id, "key": key, "item": item, "account_id": contact.account_id}
        for key, value in changes.items()
        if isinstance(value, list)
        for item in sorted({x for x in (indexed_text(v) for v in value) if x is not None})
    ]
    if items:
        await session.execute(insert(t.ContactAttributeItem), items)


def attribute_condition(
    key: str, op: AttributeOp, value: Any = None, *, account_id: int | None = None
) -> ColumnElement[bool]:
    """A condition on ``t.Contact`` rows: the attribute ``key`` compared with ``value`` by ``op``.

    Numeric operators (gt, gte, lt, lte, between [low, high]) compare numbers; eq/ne/in compare the
    indexed text (so ``eq 10`` matches 10 and "10"); ``ne`` also matches contacts without the key;
    ``contains`` is a case-insensitive substring test. With ``account_id`` the test is an IN over the
    account's (account_id, key, value) indexes, much faster when the select spans many contacts.
    """
    check_key(key)
    a = t.ContactAttribute

    def holds(*where: ColumnElement[bool]) -> ColumnElement[bool]:
        return _holding(a, a.key == key, *where, account_id=account_id)

    if op == "exists":
        return holds()
    if op == "not_exists":
        return ~holds()
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
        return holds(compare)
    if op == "between":
        low, high = (
            (indexed_number(v) for v in value)
            if isinstance(value, list) and len(value) == 2
            else (None, None)
        )
        if low is None or high is None:
            raise AttributeFilterError("between needs [low, high], two numbers")
        return holds(a.number_value.between(low, high))
    if op == "in":
        if not isinstance(value, list) or not value:
            raise AttributeFilterError("in needs a non-empty list")
        texts = [x for x in (indexed_text(v) for v in value) if x is not None]
        return holds(a.text_value.in_(texts))
    text = indexed_text(value)
    if text is None:
        raise AttributeFilterError(f"{op} needs a text, a number or a boolean")
    if op == "eq":
        return holds(a.text_value == text)
    if op == "ne":
        return ~holds(a.text_value == text)
    if op == "contains":
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return holds(func.lower(a.text_value).like(pattern, escape="\\"))
    raise AttributeFilterError(f"unknown operator {op!r}; use one of {', '.join(ATTRIBUTE_OPS)}")


def list_contains(key: str, value: Any, *, account_id: int | None = None) -> ColumnElement[bool]:
    """A condition on ``t.Contact`` rows: the list attribute ``key`` holds ``value`` (compared as text)."""
    check_key(key)
    text = indexed_text(value)
    if text is None:
        raise AttributeFilterError("contains on a list needs a text, a number or a boolean")
    i = t.ContactAttributeItem
    return _holding(i, i.key == key, i.item == text, account_id=account_id)


def _holding(
    table: type[t.ContactAttribute] | type[t.ContactAttributeItem],
    *where: ColumnElement[bool],
    account_id: int | None,
) -> ColumnElement[bool]:
    """Contacts with a row of ``table`` matching ``where``: a correlated EXISTS on the contact's key, or
    with ``account_id`` an IN over the account's index (the planner reads the matching rows once)."""
    if account_id is None:
        return exists().where(table.contact_id == t.Contact.id, *where)
    return t.Contact.id.in_(select(table.contact_id).where(table.account_id == account_id, *where))
