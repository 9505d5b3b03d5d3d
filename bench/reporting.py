"""Reports on a big account: every ``GET /reports/*`` over 90 days, over HTTP, one request at a time.

The inbox query bench's data (``query.seed``: conversations with 10 messages each over 90 days, in
SQLite, or generated inside PostgreSQL) plus the report facts live writing gives such a history, made
by the database in a few ``INSERT … SELECT``: per conversation ``opened``, one ``incoming`` or
``outgoing`` (an agent's) per message, a ``first_response`` and ``next_response`` per reply (random
0 to 60 min, half of it in business hours), ``resolved`` for the resolved ones; one in five met a bot
flow (half of those resolved by it, half handed off), one in ten has the label ``vip``. The roll-ups
the reports read (``reports.rollup``) are then summed from those facts by the database as well.

``BENCH_REPORTS_CACHE=<dir>`` (SQLite): the seeded database is kept there and reused by later runs of
the same size (seeding 200,000 conversations takes minutes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import column, func, select
from sqlalchemy.dialects import postgresql, sqlite

from bench import query
from bench.common import summary_ms
from bench.deployment import Deployment, deploy
from inbox import tables as t
from reports.rollup import bucket_sql

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


def rollup_statements(dialect: str) -> list[str]:
    """The roll-ups (``report_rollups``, ``report_agent_days``) of all the stored facts, summed by the
    database (live writing and ``reports rebuild`` keep them fact by fact)."""
    compiler = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()

    def bucket(name: str) -> str:
        expr = bucket_sql(column(name))
        return str(expr.compile(dialect=compiler, compile_kwargs={"literal_binds": True}))

    dims = "COALESCE(f.inbox_id, 0), COALESCE(f.team_id, 0), COALESCE(f.agent_id, 0),"
    dims += " COALESCE(f.channel_kind, ''), COALESCE(f.flow_id, 0), COALESCE(f.origin, '')"
    key = "account_id, kind, label, measure, day, inbox_id, team_id, agent_id, channel_kind, flow_id, origin"
    out = ["DELETE FROM report_rollups", "DELETE FROM report_agent_days"]  # the demo's live ones too
    for labelled in (False, True):
        label = "l.label" if labelled else "''"
        join = "JOIN conversation_labels l ON l.conversation_id = f.conversation_id" if labelled else ""
        for measure, seconds in ((0, "seconds"), (1, "business_seconds")):
            timed = "" if measure == 0 else f" AND {seconds} IS NOT NULL"
            b = f"CASE WHEN {seconds} IS NULL THEN 0 ELSE {bucket(seconds)} END"
            out.append(
                f"""INSERT INTO report_rollups ({key}, bucket, n, total)
                SELECT f.account_id, f.kind, {label}, {measure}, f.day, {dims}, f.b, count(*),
                       COALESCE(sum(f.{seconds}), 0)
                FROM (SELECT *, {b} AS b FROM report_facts WHERE NOT void{timed}) f {join}
                GROUP BY f.account_id, f.kind, {label + ", " if labelled else ""}f.day, {dims}, f.b"""
            )
    columns = "account_id, label, day, agent_id, conversation_id, previous, inbox_id, team_id, channel_kind"
    out.append(
        f"""INSERT INTO report_agent_days ({columns})
        SELECT account_id, '', day, agent_id, conversation_id,
               LAG(day) OVER (PARTITION BY account_id, agent_id, conversation_id ORDER BY day),
               inbox_id, team_id, channel_kind
        FROM (SELECT account_id, day, agent_id, conversation_id, min(COALESCE(inbox_id, 0)) AS inbox_id,
                     min(COALESCE(team_id, 0)) AS team_id, min(COALESCE(channel_kind, '')) AS channel_kind
              FROM report_facts
              WHERE kind = 'outgoing' AND origin = 'agent' AND agent_id IS NOT NULL AND NOT void
              GROUP BY account_id, day, agent_id, conversation_id) d"""
    )
    out.append(
        f"""INSERT INTO report_agent_days ({columns})
        SELECT a.account_id, l.label, a.day, a.agent_id, a.conversation_id, a.previous, a.inbox_id,
               a.team_id, a.channel_kind
        FROM report_agent_days a JOIN conversation_labels l ON l.conversation_id = a.conversation_id
        WHERE a.label = ''"""
    )
    return out


def _revision(db_file: Path) -> str:
    with closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as con:
        return str(con.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def seed_sqlite(db_file: Path, per_conversation: int, flow_id: int, after: int) -> None:
    con = sqlite3.connect(db_file, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    for sql in statements("sqlite", per_conversation, flow_id, after) + rollup_statements("sqlite"):
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
            for sql in rollup_statements("postgresql"):
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
        cache = os.environ.get("BENCH_REPORTS_CACHE")
        cached = Path(cache) / f"reports-{conversations}x{per_conversation}.sqlite3" if cache else None
        if cached is not None and cached.exists() and _revision(cached) != _revision(db_file):
            cached.unlink()  # seeded before a migration: seed again
        data_dir = gw.data_dir
        if cached is not None and cached.exists():
            # A new data dir: the stopped gateway's WAL files must not meet the copy.
            data_dir = Path(tempfile.mkdtemp(prefix="sb-bench-reports-"))
            shutil.copyfile(cached, data_dir / "switchboard.sqlite3")
        else:
            query.seed(db_file, conversations, per_conversation)
            seed_sqlite(db_file, per_conversation, flow_id, after)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(db_file, cached)
        gw = await deploy(mode, env, data_dir)
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
        out["baseline_summary_from_facts"] = await facts_baseline(gw, max(3, requests // 10))
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


async def facts_baseline(gw: Deployment, requests: int) -> dict[str, Any]:
    """The same run's baseline: the summary's statements as they were before the roll-ups (counts and
    percentile windows over ``report_facts``), over the same 90 days, straight on the database."""
    from inbox.db import Database, sqlite_url
    from reports.queries import FactQueries, Scope

    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {gw.token}"}) as http,
        http.get(gw.base_url + "/api/v1/reports/summary") as resp,
    ):
        to = date.fromisoformat((await resp.json())["to"])
    db = Database(gw.database_url or sqlite_url(gw.data_dir))
    db.connect()
    F = t.ReportFact
    scope = Scope(account_id=1, start=to - timedelta(days=89), end=to)
    counts = (
        select(F.kind, func.count())
        .where(F.account_id == 1, F.day >= scope.start, F.day <= scope.end, F.void.is_(False))
        .group_by(F.kind)
    )
    try:

        async def once() -> float:
            t = time.perf_counter()
            async with db.read() as session:
                await session.execute(counts)
                q = FactQueries(session, scope, exact_limit=2**62)
                for kind in ("first_response", "next_response", "resolved"):
                    await q.durations(kind)
            return time.perf_counter() - t

        await once()
        return summary_ms([await once() for _ in range(requests)])
    finally:
        await db.close()


def _days_before(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


if __name__ == "__main__":
    print(asyncio.run(run(20_000, 10, 20)))
