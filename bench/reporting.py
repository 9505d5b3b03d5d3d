"""Reports on a big account: every ``GET /reports/*`` over 90 days, over HTTP, one request at a time.

The inbox query bench's data (``query.seed``: conversations with 10 messages each over 90 days, in
SQLite, or generated inside PostgreSQL) plus the report facts live writing gives such a history, made
by the database in a few ``INSERT … SELECT``: per conversation ``opened``, one ``incoming`` or
``outgoing`` (an agent's) per message, a ``first_response`` and ``next_response`` per reply (random
0 to 60 min, half of it in business hours), ``resolved`` for the resolved ones; one in five met a bot
flow (half of those resolved by it, half handed off), one in ten has the label ``vip``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench import query
from bench.common import summary_ms
from bench.deployment import Deployment, deploy

FLOW = """
name: Triage
start: welcome
states:
  welcome: {say: Hi!, end: true, resolve: true}
"""

# What differs between the two stores in the statements below.
DIALECTS = {
    "sqlite": {
        "day": "date(c.created_at, '+' || j.n || ' minutes')",
        "at": "datetime(c.created_at, '+' || j.n || ' minutes')",
        "random": "abs(random() % {n})",
        "false": "0",
    },
    "postgresql": {
        "day": "(c.created_at + j.n * interval '1 minute')::date",
        "at": "c.created_at + j.n * interval '1 minute'",
        "random": "floor(random() * {n})::int",
        "false": "false",
    },
}
COLUMNS = (
    "account_id, kind, day, at, conversation_id, message_id, inbox_id, channel_kind, team_id, agent_id,"
    " flow_id, origin, seconds, business_seconds, void"
)


def statements(dialect: str, per_conversation: int, flow_id: int, after: int) -> list[str]:
    """The facts (and the labels) of the conversations seeded after id ``after``, derived by the database."""
    d = DIALECTS[dialect]
    steps = (
        f"WITH RECURSIVE j(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM j WHERE n < {per_conversation - 1})"
    )
    agent = "1 + c.id % 2"
    wait, whole = d["random"].format(n=3600), d["random"].format(n=86400)
    base = f"FROM conversations c, j WHERE c.id > {after}"  # the demo's have their live facts
    return [
        f"""{steps} INSERT INTO report_facts ({COLUMNS})
        SELECT 1, CASE WHEN j.n % 2 = 0 THEN 'incoming' ELSE 'outgoing' END, {d["day"]}, {d["at"]}, c.id,
               NULL, c.inbox_id, 'whatsapp', 1, CASE WHEN j.n % 2 = 0 THEN NULL ELSE {agent} END, NULL,
               CASE WHEN j.n % 2 = 0 THEN 'contact' ELSE 'agent' END, NULL, NULL, {d["false"]} {base}""",
        f"""{steps} INSERT INTO report_facts ({COLUMNS})
        SELECT 1, kind, day, at, id, NULL, inbox_id, 'whatsapp', 1, agent, NULL, NULL, s, s / 2, {d["false"]}
        FROM (SELECT CASE WHEN j.n = 1 THEN 'first_response' ELSE 'next_response' END AS kind,
                     {d["day"]} AS day, {d["at"]} AS at, c.id, c.inbox_id, {agent} AS agent, {wait} AS s
              {base} AND j.n % 2 = 1) r""",
        f"""{steps} INSERT INTO report_facts ({COLUMNS})
        SELECT 1, kind, {d["day"]}, {d["at"]}, c.id, NULL, c.inbox_id, 'whatsapp', 1, {agent},
               CASE WHEN kind = 'opened' OR kind = 'resolved' THEN NULL ELSE {flow_id} END, NULL,
               CASE WHEN kind = 'resolved' THEN {whole} END, CASE WHEN kind = 'resolved' THEN {whole} / 3 END,
               {d["false"]}
        FROM conversations c, j,
             (SELECT 'opened' AS kind UNION ALL SELECT 'resolved' UNION ALL SELECT 'bot_run'
              UNION ALL SELECT 'bot_resolved' UNION ALL SELECT 'handoff') k
        WHERE c.id > {after} AND j.n = 0 AND (
            kind = 'opened' OR (kind = 'resolved' AND c.status = 'resolved')
            OR (kind = 'bot_run' AND c.id % 5 = 0) OR (kind = 'bot_resolved' AND c.id % 10 = 5)
            OR (kind = 'handoff' AND c.id % 10 = 0))""",
        "INSERT INTO conversation_labels (conversation_id, label) SELECT id, 'vip' FROM conversations"
        f" WHERE id > {after} AND id % 10 = 0",
    ]


def seed_sqlite(db_file: Path, per_conversation: int, flow_id: int, after: int) -> None:
    con = sqlite3.connect(db_file, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    for sql in statements("sqlite", per_conversation, flow_id, after):
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


async def seed_postgres(database_url: str, per_conversation: int, flow_id: int, after: int) -> None:
    import asyncpg  # type: ignore[import-untyped]  # no stubs; the gateway reaches it through SQLAlchemy

    con = await asyncpg.connect(database_url)
    try:
        async with con.transaction():
            for sql in statements("postgresql", per_conversation, flow_id, after):
                await con.execute(sql)
        await con.execute("ANALYZE")
    finally:
        await con.close()


async def create_flow(gw: Deployment) -> int:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {gw.token}"}) as http,
        http.post(
            gw.base_url + "/api/v1/bots", json={"name": "Triage", "kind": "flow", "source": FLOW}
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["id"])


async def run(
    conversations: int = 200_000,
    per_conversation: int = 10,
    requests: int = 100,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
) -> dict[str, Any]:
    gw = await deploy(mode, env)  # creates and migrates the database, seeds the demo
    flow_id = await create_flow(gw)
    after = int((await gw.rows("SELECT COALESCE(MAX(id), 0) FROM conversations"))[0][0])
    t0 = time.monotonic()
    if gw.database_url is None:
        gw.stop()
        db_file = gw.data_dir / "switchboard.sqlite3"
        query.seed(db_file, conversations, per_conversation)
        seed_sqlite(db_file, per_conversation, flow_id, after)
        gw = await deploy(mode, env, gw.data_dir)
    else:
        await query.seed_postgres(gw.database_url, conversations, per_conversation)
        await seed_postgres(gw.database_url, per_conversation, flow_id, after)
    out: dict[str, Any] = {
        "mode": mode,
        "conversations": conversations,
        "messages": conversations * per_conversation,
        "seed_s": round(time.monotonic() - t0, 1),
    }
    try:
        facts = await gw.rows("SELECT count(*) FROM report_facts")
        out["facts"] = int(facts[0][0])
        out.update(await measure(gw, requests))
        out.update(gw.usage())
    finally:
        gw.stop()
    out["target"] = "p99 <= 200 ms"
    return out


REQUESTS = {
    "summary": "summary",
    "agents": "agents",
    "teams": "teams",
    "inboxes": "inboxes",
    "bots": "bots",
    "timeseries": "timeseries",
    "timeseries_week": "timeseries?group_by=week",
    "summary_label": "summary?label=vip",
    "summary_business_hours": "summary?business_hours=true",
}


async def measure(gw: Deployment, requests: int) -> dict[str, Any]:
    """Each report over the last 90 days, ``requests`` times, one at a time (latency, not throughput),
    round robin over the gateways; with the gateways' CPU per request beside the wall-clock figures."""
    out: dict[str, Any] = {}
    sent = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {gw.token}"}) as http:

        async def get(path: str) -> float:
            nonlocal sent
            sent += 1
            joiner = "&" if "?" in path else "?"
            t = time.perf_counter()
            async with http.get(f"{gw.url(sent)}/api/v1/reports/{path}{joiner}{period}") as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()
            return time.perf_counter() - t

        async with http.get(gw.base_url + "/api/v1/reports/summary") as resp:
            to = (await resp.json())["to"]  # today in the account's time zone
        period = f"to={to}&from={_days_before(to, 89)}"
        for name, path in REQUESTS.items():
            for _ in range(3):  # warm the page cache and the statement caches
                await get(path)
            before = gw.cpu_now()
            took = [await get(path) for _ in range(requests)]
            out[name] = summary_ms(took)
            out[name]["gateway_cpu_ms_per_request"] = gw.cpu_ms_per(before, requests)["gateways_workers"]
    return out


def _days_before(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


if __name__ == "__main__":
    print(asyncio.run(run(20_000, 10, 20)))
