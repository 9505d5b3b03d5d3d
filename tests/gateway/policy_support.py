"""Helpers for the policy tests: channel flags, seeded usage, sends over the REST API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from inbox import tables as t
from inbox.windows import period_of
from tests.harness import Gateway

LOOPBACK = 1  # the demo inbox's loopback channel (tests/harness.py)
FLAGS_OFF = {"service_window": False, "metered": False, "consent": False}


async def configure_channel(gw: Gateway, channel_id: int = LOOPBACK, **config: Any) -> None:
    """Set channel config keys (service_window, metered, consent, keyword lists, texts)."""
    async with gw.container.db.write() as session:
        channel = await session.get(t.Channel, channel_id)
        assert channel is not None
        channel.config = {**(channel.config or {}), **config}  # a new dict: JSON columns track assignment


async def seed_usage(gw: Gateway, used: int, *, packs: int | None = None) -> None:
    """Pretend ``used`` conversations were already counted this period (no alerts for them)."""
    now = gw.clock()
    period = period_of(now)
    async with gw.container.db.write() as session:
        row = await session.get(t.QuotaUsage, (1, period))
        if row is None:
            row = t.QuotaUsage(account_id=1, period=period, used=0, packs=0, updated_at=now)
            session.add(row)
        row.used = used
        if packs is not None:
            row.packs = packs


async def send_to(gw: Gateway, to: str, text: str | None = "Hello!", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"channel_id": extra.pop("channel_id", LOOPBACK), "to": to, **extra}
    if text is not None:
        body["text"] = text
    status, message = await gw.api("POST", "/messages", json_body=body, token=extra.pop("token", None))
    assert status == 201, message
    return message


async def reply(gw: Gateway, conversation_id: int, text: str = "Thanks for writing!") -> dict[str, Any]:
    status, message = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": text}
    )
    assert status == 201, message
    return message


async def quota(gw: Gateway) -> dict[str, Any]:
    status, body = await gw.api("GET", "/quota")
    assert status == 200, body
    return body


async def outgoing_in(gw: Gateway, conversation_id: int) -> list[dict[str, Any]]:
    status, page = await gw.api("GET", f"/conversations/{conversation_id}/messages?limit=200")
    assert status == 200
    return [m for m in page["items"] if m["kind"] == "outgoing"]


async def count_rows(gw: Gateway, table: Any) -> int:
    async with gw.container.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)
