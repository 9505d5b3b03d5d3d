"""Inbox queries on a big inbox: list by inbox + status (50 per page) and search, over HTTP.

Embedded: the data is written straight into the gateway's SQLite file (after its own migrations), then
the gateway is started on it and queried. Scale-out: the same shape of data is generated inside
PostgreSQL (``INSERT … SELECT`` over ``generate_series``) while the gateways run, and the requests go
round robin over both gateways.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import summary_ms
from bench.deployment import deploy

WORDS = [
    "order",
    "invoice",
    "parcel",
    "refund",
    "delivery",
    "account",
    "password",
    "billing",
    "address",
    "late",
    "broken",
    "thanks",
]


def seed(db_file: Path, conversations: int, per_conversation: int) -> None:
    con = sqlite3.connect(db_file)
    con.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(7)
    statuses = ["open", "open", "pending", "resolved", "resolved", "snoozed"]
    batch = 20_000
    contact_id = con.execute("SELECT COALESCE(MAX(id), 0) FROM contacts").fetchone()[0]
    conv_id = con.execute("SELECT COALESCE(MAX(id), 0) FROM conversations").fetchone()[0]
    for start in range(0, conversations, batch):
        n = min(batch, conversations - start)
        contacts, convs, msgs = [], [], []
        for _ in range(n):
            contact_id += 1
            conv_id += 1
            at = (now - timedelta(seconds=rng.randint(0, 90 * 86400))).isoformat(sep=" ")
            phone = f"+1555{contact_id:07d}"
            contacts.append((contact_id, 1, f"Contact {contact_id}", phone, "{}", "[]", at))
            convs.append(
                (conv_id, 1, 1, 1, contact_id, phone, phone, rng.choice(statuses), "none", at, at, at, "{}")
            )
            for j in range(per_conversation):
                text = " ".join(rng.choice(WORDS) for _ in range(8)) + f" #{conv_id}-{j}"
                msgs.append((1, conv_id, 1, "incoming", "contact", text, "text", "[]", "received", at, at))
        con.executemany(
            "INSERT INTO contacts (id, account_id, name, phone, attributes, labels, created_at) VALUES (?,?,?,?,?,?,?)",
            contacts,
        )
        con.executemany(
            "INSERT INTO conversations (id, account_id, inbox_id, channel_id, contact_id, thread_key, recipient,"
            " status, priority, last_inbound_at, last_activity_at, created_at, meta)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            convs,
        )
        con.executemany(
            "INSERT INTO messages (account_id, conversation_id, channel_id, kind, origin, text, content_type,"
            " attachments, status, created_at, updated_at, attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,0)",
            msgs,
        )
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()


async def seed_postgres(database_url: str, conversations: int, per_conversation: int) -> None:
    """The same data as ``seed`` (statuses, 90 days of activity, 8 random words a message), generated
    by PostgreSQL itself; the ids' sequences are moved past it so the gateway's inserts still work."""
    import asyncpg  # type: ignore[import-untyped]  # no stubs; the gateway reaches it through SQLAlchemy

    words = "ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "]"
    text = " || ' ' || ".join([f"({words})[1 + floor(random() * {len(WORDS)})::int]"] * 8)
    statuses = "ARRAY['open','open','pending','resolved','resolved','snoozed']"
    con = await asyncpg.connect(database_url)
    try:
        cbase = await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM contacts")
        vbase = await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM conversations")
        async with con.transaction():
            await con.execute(
                f"""CREATE TEMP TABLE bench_seed ON COMMIT DROP AS
                SELECT n, {int(cbase)} + n AS contact_id, {int(vbase)} + n AS conv_id,
                       '+1555' || lpad(({int(cbase)} + n)::text, 7, '0') AS phone,
                       now() - random() * interval '90 days' AS at,
                       ({statuses})[1 + floor(random() * 6)::int] AS status
                FROM generate_series(1, {int(conversations)}) n"""
            )
            await con.execute(
                """INSERT INTO contacts (id, account_id, name, phone, attributes, labels, created_at)
                SELECT contact_id, 1, 'Contact ' || contact_id, phone, '{}', '[]', at FROM bench_seed"""
            )
            await con.execute(
                """INSERT INTO conversations (id, account_id, inbox_id, channel_id, contact_id, thread_key,
                    recipient, status, priority, last_inbound_at, last_activity_at, created_at, meta)
                SELECT conv_id, 1, 1, 1, contact_id, phone, phone, status, 'none', at, at, at, '{}'
                FROM bench_seed"""
            )
            await con.execute(
                f"""INSERT INTO messages (account_id, conversation_id, channel_id, kind, origin, text,
                    content_type, attachments, status, created_at, updated_at, attempts)
                SELECT 1, conv_id, 1, 'incoming', 'contact', {text} || ' #' || conv_id || '-' || j,
                       'text', '[]', 'received', at, at, 0
                FROM bench_seed, generate_series(0, {int(per_conversation) - 1}) j"""
            )
            for table in ("contacts", "conversations", "messages"):
                await con.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )
        await con.execute("ANALYZE")
    finally:
        await con.close()


async def run(
    conversations: int = 200_000,
    per_conversation: int = 10,
    requests: int = 300,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
) -> dict[str, Any]:
    gw = await deploy(mode, env)  # creates and migrates the database, seeds the demo
    t0 = time.monotonic()
    if gw.database_url is None:
        gw.stop()
        seed(gw.data_dir / "switchboard.sqlite3", conversations, per_conversation)
    else:
        await seed_postgres(gw.database_url, conversations, per_conversation)
    seeded_s = round(time.monotonic() - t0, 1)
    if gw.database_url is None:
        gw = await deploy(mode, env, gw.data_dir)
    out: dict[str, Any] = {
        "mode": mode,
        "conversations": conversations,
        "messages": conversations * per_conversation,
        "seed_s": seeded_s,
    }
    try:
        auth = {"Authorization": f"Bearer {gw.token}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            sent = 0

            async def timed(path: str) -> float:
                nonlocal sent
                sent += 1
                t = time.perf_counter()
                async with http.get(gw.url(sent) + "/api/v1" + path) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()
                return time.perf_counter() - t

            lists, pages = [], []
            for i in range(requests):
                lists.append(
                    await timed(f"/conversations?inbox_id=1&status={['open', 'pending'][i % 2]}&limit=50")
                )
            cursor = None
            async with http.get(gw.base_url + "/api/v1/conversations?inbox_id=1&status=open&limit=50") as r:
                cursor = (await r.json())["next_cursor"]
            for i in range(min(requests, 100)):
                if not cursor:
                    break
                t = time.perf_counter()
                async with http.get(
                    f"{gw.url(i)}/api/v1/conversations?inbox_id=1&status=open&limit=50&cursor={cursor}"
                ) as r:
                    cursor = (await r.json())["next_cursor"]
                pages.append(time.perf_counter() - t)
            searches = [
                await timed(f"/conversations?q=Contact%20{random.randint(1, conversations)}&limit=50")
                for _ in range(20)
            ]
            text_searches = [
                await timed(f"/conversations?q={random.choice(WORDS)}%20{random.choice(WORDS)}&limit=50")
                for _ in range(10)
            ]
        out["list_by_inbox_status"] = summary_ms(lists)
        out["next_pages"] = summary_ms(pages)
        out["search_contact"] = summary_ms(searches)
        out["search_text"] = summary_ms(text_searches)
        out.update(gw.usage())
    finally:
        gw.stop()
    out["target"] = "p99 <= 30 ms"
    return out


if __name__ == "__main__":
    print(asyncio.run(run(20_000, 10, 50)))
