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

from bench.common import cpu_seconds, start_gateway, summary_ms

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


async def run(
    conversations: int = 200_000,
    per_conversation: int = 10,
    requests: int = 300,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    gw = await start_gateway(env=env)  # creates and migrates the database, seeds the demo
    gw.stop()
    t0 = time.monotonic()
    seed(gw.data_dir / "switchboard.sqlite3", conversations, per_conversation)
    seeded_s = round(time.monotonic() - t0, 1)
    gw = await start_gateway(gw.data_dir, env=env)
    out: dict[str, Any] = {
        "conversations": conversations,
        "messages": conversations * per_conversation,
        "seed_s": seeded_s,
    }
    try:
        out.update(
            await measure(gw.base_url, gw.token, conversations, per_conversation, requests, gw.popen.pid)
        )
        out.update(gw.usage())
    finally:
        gw.stop()
    out["target"] = "p99 <= 30 ms"
    return out


async def measure(
    base_url: str,
    token: str | None,
    conversations: int,
    per_conversation: int,
    requests: int,
    pid: int | None = None,
) -> dict[str, Any]:
    """Sequential requests (one at a time: latency, not throughput), ``requests`` samples per figure.

    With the gateway's ``pid``, each figure also gets the gateway's CPU time per request, which the
    other processes on a shared machine disturb less than the wall-clock percentiles.
    """
    rng = random.Random(11)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:

        async def get(path: str) -> tuple[float, dict[str, Any]]:
            t = time.perf_counter()
            async with http.get(base_url + "/api/v1" + path) as resp:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            return time.perf_counter() - t, body

        for i in range(20):  # warm the page cache and the gateway's statement caches
            await get(f"/conversations?inbox_id=1&status={['open', 'pending'][i % 2]}&limit=50")
        cpu: dict[str, float] = {}
        mark = cpu_seconds(pid) if pid else 0.0

        def took_cpu(name: str, n: int) -> None:
            nonlocal mark
            if pid and n:
                now = cpu_seconds(pid)
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
