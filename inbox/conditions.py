"""Conditions over an event's data, a contact's attributes and tags (segmentations, automation steps).

``{"match": "all" | "any", "rules": [{"field": "data.value", "op": "gte", "value": 100}, ...]}``.
A field is ``data.<name>`` (the event's data), ``contact.<key>`` (an attribute) or ``tag`` (with
``eq``: the contact has the tag, ``ne``: it has not). The operators compare like
``inbox.attributes.attribute_condition`` does in SQL, so a rule means the same in both places.
No rules: always true.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from inbox.attributes import AttributeOp, indexed_number, indexed_text
from inbox.tags import normalize_tag

Source = Literal["data", "contact", "tag"]


class Rule(BaseModel):
    field: str = Field(min_length=1, max_length=120)
    op: AttributeOp
    value: Any = None


class Condition(BaseModel):
    match: Literal["all", "any"] = "all"
    rules: list[Rule] = Field(default_factory=list, max_length=20)


def split_field(name: str) -> tuple[Source, str] | None:
    """``data.value`` → ("data", "value"); ``tag`` → ("tag", ""); anything else None."""
    if name == "tag":
        return "tag", ""
    head, dot, rest = name.partition(".")
    if dot and rest and head in ("data", "contact"):
        return head, rest  # type: ignore[return-value]
    return None


def rule_problem(rule: Rule) -> str | None:
    """What is wrong with a rule regardless of the event type (its field's form, its value's type)."""
    if split_field(rule.field) is None:
        return f"field {rule.field!r} must be data.<name>, contact.<attribute> or tag"
    if rule.field == "tag" and rule.op not in ("eq", "ne"):
        return "a tag rule uses eq (has the tag) or ne (has not)"
    if rule.op in ("gt", "gte", "lt", "lte") and indexed_number(rule.value) is None:
        return f"{rule.op} needs a number"
    if rule.op == "in" and not (isinstance(rule.value, list) and rule.value):
        return "in needs a non-empty list"
    if rule.op in ("eq", "ne", "contains") and indexed_text(rule.value) is None:
        return f"{rule.op} needs a text, a number or a boolean"
    return None


def _compare(op: str, actual: Any, expected: Any, present: bool) -> bool:
    if op == "exists":
        return present
    if op == "not_exists":
        return not present
    if op == "ne":
        return not present or indexed_text(actual) != indexed_text(expected)
    if not present:
        return False
    if op == "eq":
        return indexed_text(actual) is not None and indexed_text(actual) == indexed_text(expected)
    if op == "contains":
        have, want = indexed_text(actual), indexed_text(expected)
        return have is not None and want is not None and want.lower() in have.lower()
    if op == "in":
        return indexed_text(actual) in {indexed_text(v) for v in expected or []}
    have_n, want_n = indexed_number(actual), indexed_number(expected)
    if have_n is None or want_n is None:
        return False
    return {
        "gt": have_n > want_n,
        "gte": have_n >= want_n,
        "lt": have_n < want_n,
        "lte": have_n <= want_n,
    }.get(op, False)


def holds(
    condition: Condition,
    *,
    data: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Collection[str] = (),
) -> bool:
    """Whether the condition holds for this event data, these contact attributes and tags."""
    results = []
    for rule in condition.rules:
        where = split_field(rule.field)
        if where is None:
            results.append(False)
            continue
        source, name = where
        if source == "tag":
            has = normalize_tag(str(rule.value)) in tags
            results.append(has if rule.op == "eq" else not has)
            continue
        values = (data if source == "data" else attributes) or {}
        results.append(_compare(rule.op, values.get(name), rule.value, values.get(name) is not None))
    if not results:
        return True
    return all(results) if condition.match == "all" else any(results)
