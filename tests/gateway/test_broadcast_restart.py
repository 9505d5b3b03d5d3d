"""A broadcast to 5,000 contacts survives its gateway being killed (SIGKILL) mid-way: after a restart it
goes on, and every recipient ends up with exactly one message and an outcome (issue 16, "done when")."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from inbox import tables as t
from inbox.attributes import set_attributes
from inbox.contacts import resolve_contact
from inbox.db import Database, sqlite_url
from inbox.tags import add_tag
from tests.gateway.test_quota_processes import Server, serve

CONTACTS = 5000


async def seed(db: Database) -> dict[int, str]:
    """5,000 contacts with a loopback address, a sales count and tags; returns those the audience picks."""
    chosen: dict[int, str] = {}
    async with db.write() as session:
        now = datetime.now(UTC)
        for k in range(CONTACTS):
            contact = await resolve_contact(session, 1, "loopback", f"+1555300{k:04d}", f"Affiliate {k}", now)
            await set_attributes(
                session, contact, {"sales_count": k % 10, "badges": ["gold"] if k % 3 else []}
            )
            await add_tag(session, contact, "affiliate" if k % 5 else "lead", source="manual", now=now)
            if k % 5 and k % 10 >= 2:
                chosen[contact.id] = f"Affiliate {k}"
    return chosen


async def events_until(
    http: aiohttp.ClientSession, server: Server, after: int, done: Any
) -> tuple[dict[str, Any], int]:
    """Read the live stream from ``after`` until ``done(event)``; returns that event and its id."""
    async with http.ws_connect(
        f"{server.url}/api/v1/stream?after={after}", headers={"Authorization": f"Bearer {server.token}"}
    ) as ws:
        async for msg in ws:
            event = json.loads(msg.data)
            if "id" in event and done(event):
                return event, int(event["id"])
    raise AssertionError("the stream ended first")


async def test_a_broadcast_killed_mid_way_resumes_and_reaches_everyone_exactly_once(
    tmp_path: Path, database_url: str | None, smtp_sink
):
    url = database_url or sqlite_url(tmp_path.resolve())
    async with aiohttp.ClientSession() as http:
        async with serve(tmp_path, database_url, smtp_sink.port) as first:
            db = Database(url)
            db.connect()
            try:
                chosen = await seed(db)
            finally:
                await db.close()
            excluded = sorted(chosen)[:10]
            audience = {
                "conditions": [
                    {"tags": {"any": ["affiliate"]}},
                    {"attribute": "sales_count", "op": "gte", "value": 2},
                ],
                "exclude_contact_ids": excluded,
            }
            expected = set(chosen) - set(excluded)
            code, preview = await first.api(
                http, "POST", "/audiences/preview", {"filter": audience, "channel_id": 1}
            )
            assert code == 200, preview
            assert preview["count"] == len(expected) and preview["refused"] == {}

            code, broadcast = await first.api(
                http,
                "POST",
                "/broadcasts",
                {
                    "channel_id": 1,
                    "title": "Launch week",
                    "audience": audience,
                    "text": "Hi {{name}}, launch week starts now",
                    "allow_replies": False,
                },
            )
            assert code == 201, broadcast

            def mid_way(event: dict[str, Any]) -> bool:
                b = event["data"].get("broadcast") if event["type"] == "broadcast.updated" else None
                return b is not None and b["id"] == broadcast["id"] and b["accepted"] >= 500

            seen, last_id = await asyncio.wait_for(events_until(http, first, 0, mid_way), 120)
            first.proc.send_signal(signal.SIGKILL)
            await first.proc.wait()
            assert seen["data"]["broadcast"]["accepted"] < len(expected)

        async with serve(tmp_path, database_url, smtp_sink.port) as second:

            def finished(event: dict[str, Any]) -> bool:
                b = event["data"].get("broadcast") if event["type"] == "broadcast.updated" else None
                return b is not None and b["id"] == broadcast["id"] and b["status"] == "done"

            await asyncio.wait_for(events_until(http, second, last_id, finished), 300)
            code, view = await second.api(http, "GET", f"/broadcasts/{broadcast['id']}")
            assert code == 200 and view["total"] == len(expected), view
            assert view["queued"] == len(expected) and view["failed"] == 0

            outcomes: dict[int, str] = {}
            after: int | None = None
            while True:
                query = f"?limit=500{'' if after is None else f'&after={after}'}"
                code, page = await second.api(http, "GET", f"/broadcasts/{broadcast['id']}/recipients{query}")
                assert code == 200, page
                for r in page["items"]:
                    assert r["contact_id"] not in outcomes
                    outcomes[r["contact_id"]] = r["outcome"]
                after = page["next_after"]
                if after is None:
                    break
            assert set(outcomes) == expected
            assert set(outcomes.values()) == {"queued"}

    db = Database(url)
    db.connect()
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(t.Conversation.contact_id, func.count(), func.min(t.Message.text))
                .join(t.Message, t.Message.conversation_id == t.Conversation.id)
                .where(t.Message.kind == "outgoing")
                .group_by(t.Conversation.contact_id)
            )
            per_contact = {int(c): (int(n), text) for c, n, text in rows}
            metas = list(
                await session.scalars(
                    select(t.Conversation.meta).where(t.Conversation.contact_id.in_(expected))
                )
            )
    finally:
        await db.close()
    assert set(per_contact) == expected  # nobody outside the audience, nobody excluded
    assert {n for n, _ in per_contact.values()} == {1}  # nobody twice
    assert all(text == f"Hi {chosen[c]}, launch week starts now" for c, (_, text) in per_contact.items())
    # allow_replies false: each recipient's conversation answers with the channel's auto-answer.
    assert len(metas) == len(expected) and all(m.get("replies_disabled") for m in metas)
