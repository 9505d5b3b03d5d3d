"""Inbox queries on a big inbox: list by inbox + status (50 per page) and search, over HTTP.

The data is written straight into the gateway's SQLite file (after its own migrations), then the
gateway is started on it and queried.
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
from bench.deployment import Deployment, deploy

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
    """Bulk-load contacts, conversations and messages in one transaction.

    The FTS insert triggers are dropped for the load and the two trigram indexes rebuilt once at the
    end (per-row trigger inserts into a trigram index are what made seeding millions slow).
    """
    con = sqlite3.connect(db_file, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")  # 256 MB for the load only
    triggers = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)",
        ("message_search_ai", "contact_search_ai"),
    ).fetchall()
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(7)
    statuses = ["open", "open", "pending", "resolved", "resolved", "snoozed"]
    batch = 10_000
    con.execute("BEGIN")
    for name, _ in triggers:
        con.execute(f"DROP TRIGGER {name}")
    contact_id = con.execute("SELECT COALESCE(MAX(id), 0) FROM contacts").fetchone()[0]
    conv_id = con.execute("SELECT COALESCE(MAX(id), 0) FROM conversations").fetchone()[0]
    for start in range(0, conversations, batch):
        n = min(batch, conversations - start)
        contacts, convs, msgs = [], [], []
        for _ in range(n):
            contact_id += 1
            conv_id += 1
            last = now - timedelta(seconds=rng.randint(0, 90 * 86400))
            first = last - timedelta(seconds=60 * per_conversation)
            phone = f"+1555{contact_id:07d}"
            at = last.isoformat(sep=" ")
            contacts.append((contact_id, 1, f"Contact {contact_id}", phone, "{}", "[]", at))
            convs.append(
                (conv_id, 1, 1, 1, contact_id, phone, phone, rng.choice(statuses), "none", at, at, at, "{}")
            )
            for j in range(per_conversation):
                text = " ".join(rng.choice(WORDS) for _ in range(8)) + f" #{conv_id}-{j}"
                sent = (first + timedelta(seconds=60 * (j + 1))).isoformat(sep=" ")
                # Contact and agent take turns; the contact has the last word.
                kind, origin, status = (
                    ("incoming", "contact", "received")
                    if (per_conversation - j) % 2
                    else ("outgoing", "agent", "delivered")
                )
                msgs.append((1, conv_id, 1, kind, origin, text, "text", "[]", status, sent, sent))
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
    con.execute("INSERT INTO message_search(message_search) VALUES ('rebuild')")
    con.execute("INSERT INTO contact_search(contact_search) VALUES ('rebuild')")
    for _, sql in triggers:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("ANALYZE")
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
        out.update(await measure(gw, conversations, per_conversation, requests))
        out.update(gw.usage())
    finally:
        gw.stop()
    out["target"] = "p99 <= 30 ms"
    return out


async def measure(gw: Deployment, conversations: int, per_conversation: int, requests: int) -> dict[str, Any]:
    """Sequential requests (one at a time: latency, not throughput), ``requests`` samples per figure,
    round robin over the deployment's gateways.

    Each figure also gets the gateways' CPU time per request, which the other processes on a shared
    machine disturb less than the wall-clock percentiles.
    """
    rng = random.Random(11)
    out: dict[str, Any] = {}
    sent = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {gw.token}"}) as http:

        async def get(path: str) -> tuple[float, dict[str, Any]]:
            nonlocal sent
            sent += 1
            t = time.perf_counter()
            async with http.get(gw.url(sent) + "/api/v1" + path) as resp:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            return time.perf_counter() - t, body

        for i in range(20):  # warm the page cache and the gateway's statement caches
            await get(f"/conversations?inbox_id=1&status={['open', 'pending'][i % 2]}&limit=50")
        cpu: dict[str, float] = {}
        mark = gw.cpu_now()["gateways_workers"]

        def took_cpu(name: str, n: int) -> None:
            nonlocal mark
            if n:
                now = gw.cpu_now()["gateways_workers"]
                cpu[name] = round((now - mark) * 1000 / n, 2)
                mark = now

        lists = [
            (await get(f"/conversations?inbox_id=1&status={['open', 'pending'][i % 2]}&limit=50"))[0]
            for i in range(requests)
        ]
        took_cpu("list_by_inbox_status", len(lists))
        pages: list[float] = []
        cursor = (await get("/conversations?inbox_id=1&status=open&limit=50"))[1]["next_cursor"]
        while cursor and len(pages) < requests:
            took, body = await get(f"/conversations?inbox_id=1&status=open&limit=50&cursor={cursor}")
            pages.append(took)
            cursor = body["next_cursor"]
        took_cpu("next_pages", len(pages) + 1)
        contact = [
            (await get(f"/conversations?q=Contact%20{rng.randint(1, conversations)}&limit=50"))[0]
            for _ in range(requests)
        ]
        took_cpu("search_contact", len(contact))
        common = [
            (await get(f"/conversations?q={rng.choice(WORDS)}%20{rng.choice(WORDS)}&limit=50"))[0]
            for _ in range(requests)
        ]
        took_cpu("search_text", len(common))
        # A term in the middle of one message ("#<conversation>-<n>" tags every seeded message).
        rare = [
            (
                await get(
                    f"/conversations?q={rng.randint(1, conversations)}-{rng.randrange(per_conversation)}"
                    "&limit=50"
                )
            )[0]
            for _ in range(requests)
        ]
        took_cpu("search_text_rare", len(rare))
    out["list_by_inbox_status"] = summary_ms(lists)
    out["next_pages"] = summary_ms(pages)
    out["search_contact"] = summary_ms(contact)
    out["search_text"] = summary_ms(common)
    out["search_text_rare"] = summary_ms(rare)
    for name, ms in cpu.items():
        out[name]["gateway_cpu_ms_per_request"] = ms
    return out


if __name__ == "__main__":
    print(asyncio.run(run(20_000, 10, 50)))
