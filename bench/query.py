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

from bench.common import start_gateway, summary_ms

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
        auth = {"Authorization": f"Bearer {gw.token}"}
        async with aiohttp.ClientSession(headers=auth) as http:

            async def timed(path: str) -> float:
                t = time.perf_counter()
                async with http.get(gw.base_url + "/api/v1" + path) as resp:
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
            for _ in range(min(requests, 100)):
                if not cursor:
                    break
                t = time.perf_counter()
                async with http.get(
                    f"{gw.base_url}/api/v1/conversations?inbox_id=1&status=open&limit=50&cursor={cursor}"
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
