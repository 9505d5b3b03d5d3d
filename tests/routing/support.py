"""Helpers for routing and bot tests: loopback channels standing for other kinds, agents, waiting."""

from __future__ import annotations

from typing import Any

from channels.base import LoopbackChannel
from inbox import tables as t
from tests.harness import Gateway


async def channel_of_kind(gw: Gateway, kind: str, inbox_id: int = 1) -> LoopbackChannel:
    """A loopback channel whose row says ``kind``: rules and bots see that kind; the test is the contact."""
    status, body = await gw.api(
        "POST", "/channels", json_body={"inbox_id": inbox_id, "kind": "loopback", "name": f"{kind} stand-in"}
    )
    assert status == 201, body
    adapter = await gw.container.adapters.get(body["id"])
    assert isinstance(adapter, LoopbackChannel)
    async with gw.container.db.write() as session:
        row = await session.get(t.Channel, body["id"])
        assert row is not None
        row.kind = kind
    return adapter


async def online_agent(gw: Gateway, email: str, inbox_ids: list[int] | None = None) -> tuple[int, str]:
    user_id, token = await gw.user(email, inbox_ids=inbox_ids if inbox_ids is not None else [1])
    status, me = await gw.api("PATCH", "/users/me", token=token, json_body={"availability": "online"})
    assert status == 200 and me["availability"] == "online", me
    return user_id, token


async def create(gw: Gateway, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, created = await gw.api("POST", path, json_body=body)
    assert status == 201, created
    return created


async def conversation(gw: Gateway, conversation_id: int) -> dict[str, Any]:
    status, conv = await gw.api("GET", f"/conversations/{conversation_id}")
    assert status == 200, conv
    return conv


async def all_conversations(gw: Gateway, **filters: Any) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        path = f"/conversations?limit=100&{query}" + (f"&cursor={cursor}" if cursor else "")
        status, page = await gw.api("GET", path)
        assert status == 200, page
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def texts(gw: Gateway, conversation_id: int) -> list[tuple[str, str | None]]:
    """(kind/origin, text) of every message, oldest first."""
    status, page = await gw.api("GET", f"/conversations/{conversation_id}/messages?limit=200")
    assert status == 200, page
    return [(f"{m['kind']}/{m['origin']}", m["text"]) for m in page["items"]]
