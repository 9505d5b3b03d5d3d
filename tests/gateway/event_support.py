"""Helpers for the contact-event tests: event bodies, posting them, a contact's tags."""

from __future__ import annotations

from itertools import count
from typing import Any

from tests.harness import Gateway

_ids = count(1)
COURSE = {"id": "C-42", "name": "Sourdough course", "kind": "course"}


def event(type_: str, contact: dict[str, Any], product: dict[str, Any] | None = COURSE, **data: Any):
    body: dict[str, Any] = {
        "id": f"evt-{next(_ids)}",
        "type": type_,
        "occurred_at": "2026-03-10T11:00:00+00:00",
        "contact": contact,
        "data": data,
    }
    if product is not None:
        body["product"] = product
    return body


async def post(gw: Gateway, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    return await gw.api("POST", "/events", json_body=body, token=token)


async def tags_of(gw: Gateway, contact_id: int) -> dict[str, str]:
    status, contact = await gw.api("GET", f"/contacts/{contact_id}")
    assert status == 200, contact
    return {x["tag"]: x["source"] for x in contact["tags"]}
