"""Audience preview over many contacts (issue 16): ``POST /api/v1/audiences/preview``, over HTTP.

Contacts with a loopback address, indexed attributes (``sales_count`` number, ``product`` text), a list
attribute (``badges``) and tags are written straight into the gateway's SQLite file after its own
migrations, then the gateway is started on it and asked, one request at a time. The same-run baseline
is the preview of the empty filter (every contact: the count alone, through the same endpoint).
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import summary_ms
from bench.deployment import Deployment, deploy

PRODUCTS = ["course-a", "course-b", "ebook", "mentoring", "community"]
BADGES = ["gold", "silver", "bronze", "early", "top"]

FILTERS: dict[str, dict[str, Any]] = {
    "baseline_all_contacts": {"conditions": []},
    "tag": {"conditions": [{"tags": {"any": ["buyer"]}}]},
    "attribute_range": {"conditions": [{"attribute": "sales_count", "op": "between", "value": [10, 20]}]},
    "combined_with_exclusions": {
        "conditions": [
            {"tags": {"any": ["affiliate"], "none": ["refunded"]}},
            {"attribute": "product", "op": "eq", "value": "ebook"},
            {"attribute": "badges", "type": "list", "op": "contains", "value": "gold"},
        ],
        "exclude_contact_ids": list(range(2, 502)),
        "exclude": {"conditions": [{"attribute": "sales_count", "op": "lt", "value": 3}]},
    },
}


def seed(db_file: Path, contacts: int) -> None:
    """Bulk-load ``contacts`` contacts with identities, attributes, list items and tags."""
    con = sqlite3.connect(db_file, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")
    rng = random.Random(5)
    at = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    first = con.execute("SELECT COALESCE(MAX(id), 0) FROM contacts").fetchone()[0] + 1
    con.execute("BEGIN")
    batch = 20_000
    for start in range(first, first + contacts, batch):
        ids = range(start, min(start + batch, first + contacts))
        rows_c: list[tuple[Any, ...]] = []
        rows_i: list[tuple[Any, ...]] = []
        rows_a: list[tuple[Any, ...]] = []
        rows_items: list[tuple[Any, ...]] = []
        rows_t: list[tuple[Any, ...]] = []
        for cid in ids:
            phone = f"+1556{cid:07d}"
            sales = rng.randint(0, 50)
            product = rng.choice(PRODUCTS)
            badges = rng.sample(BADGES, rng.randint(0, 2))
            rows_c.append((cid, 1, f"Affiliate {cid}", phone, "{}", "[]", at))
            rows_i.append((1, "loopback", phone, cid))
            rows_a.append((cid, "sales_count", 1, str(sales), float(sales)))
            rows_a.append((cid, "product", 1, product, None))
            rows_items.extend((cid, "badges", b, 1) for b in badges)
            tags = ["affiliate"] if cid % 4 else ["lead"]
            if cid % 7 == 0:
                tags.append("buyer")
            if cid % 50 == 0:
                tags.append("refunded")
            rows_t.extend((cid, tag, 1, "manual", at) for tag in tags)
        con.executemany(
            "INSERT INTO contacts (id, account_id, name, phone, attributes, labels, created_at) VALUES (?,?,?,?,?,?,?)",
            rows_c,
        )
        con.executemany(
            "INSERT INTO contact_identities (account_id, kind, address, contact_id) VALUES (?,?,?,?)", rows_i
        )
        con.executemany(
            "INSERT INTO contact_attributes (contact_id, key, account_id, text_value, number_value) VALUES (?,?,?,?,?)",
            rows_a,
        )
        con.executemany(
            "INSERT INTO contact_attribute_items (contact_id, key, item, account_id) VALUES (?,?,?,?)",
            rows_items,
        )
        con.executemany(
            "INSERT INTO contact_tags (contact_id, tag, account_id, source, created_at) VALUES (?,?,?,?,?)",
            rows_t,
        )
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


async def run(
    contacts: int = 1_000_000, requests: int = 30, env: dict[str, str] | None = None
) -> dict[str, Any]:
    gw = await deploy("embedded", env)  # creates and migrates the database, seeds the demo
    t0 = time.monotonic()
    gw.stop()
    seed(gw.data_dir / "switchboard.sqlite3", contacts)
    seeded_s = round(time.monotonic() - t0, 1)
    gw = await deploy("embedded", env, gw.data_dir)
    out: dict[str, Any] = {"contacts": contacts, "seed_s": seeded_s}
    try:
        out.update(await measure(gw, requests))
        out.update(gw.usage())
    finally:
        gw.stop()
    out["target"] = "preview p99 well under 1 s"
    return out


async def measure(gw: Deployment, requests: int) -> dict[str, Any]:
    """``requests`` sequential previews per filter (with the loopback channel's refusals), p50/p99 and
    the gateway's CPU time per request."""
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {gw.token}"}) as http:

        async def preview(audience: dict[str, Any]) -> tuple[float, dict[str, Any]]:
            t = time.perf_counter()
            body = {"filter": audience, "channel_id": 1, "limit": 50}
            async with http.post(gw.url(0) + "/api/v1/audiences/preview", json=body) as resp:
                assert resp.status == 200, await resp.text()
                answer = await resp.json()
            return time.perf_counter() - t, answer

        for audience in FILTERS.values():  # warm the page cache
            await preview(audience)
        for name, audience in FILTERS.items():
            mark = gw.cpu_now()["gateways_workers"]
            samples = []
            count = 0
            for _ in range(requests):
                took, answer = await preview(audience)
                samples.append(took)
                count = answer["count"]
            cpu_ms = (gw.cpu_now()["gateways_workers"] - mark) * 1000 / requests
            out[name] = {
                **summary_ms(samples),
                "matched": count,
                "gateway_cpu_ms_per_request": round(cpu_ms, 1),
            }
    return out
