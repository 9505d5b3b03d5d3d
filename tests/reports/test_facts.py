"""Report facts are written as the events happen, stay right when a conversation reopens, and the
rebuild from the event log gives exactly the facts live writing gave (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.cli import main
from inbox import tables as t
from reports.rebuild import rebuild
from tests.harness import Gateway, ManualClock, start_gateway
from tests.reports.scenario import ALEX, drive

FACT_COLUMNS = [c.name for c in t.ReportFact.__table__.columns if c.name != "id"]
STATE_COLUMNS = [c.name for c in t.ReportConversation.__table__.columns]


async def snapshot(gw: Gateway) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with gw.container.db.read() as session:
        facts = (await session.execute(select(t.ReportFact).order_by(t.ReportFact.id))).scalars()
        states = (
            await session.execute(select(t.ReportConversation).order_by(t.ReportConversation.conversation_id))
        ).scalars()
        return (
            [tuple(getattr(f, c) for c in FACT_COLUMNS) for f in facts],
            [tuple(getattr(s, c) for c in STATE_COLUMNS) for s in states],
        )


async def test_live_facts_follow_the_conversations_and_the_rebuild_gives_the_same(
    tmp_path: Path, database_url: str | None, clock: ManualClock
):
    gw = await start_gateway(tmp_path, database_url=database_url, clock=clock)
    try:
        s = await drive(gw, clock)
        facts, states = await snapshot(gw)
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for row in facts:
            fact = dict(zip(FACT_COLUMNS, row, strict=True))
            by_kind.setdefault(fact["kind"], []).append(fact)

        firsts = sorted(
            (f["agent_id"], f["seconds"], f["business_seconds"]) for f in by_kind["first_response"]
        )
        assert firsts == [(1, 900, 600), (ALEX, 300, 0)]
        assert [(f["agent_id"], f["seconds"]) for f in by_kind["next_response"]] == [(ALEX, 600)]
        # Resolved at 13:00, reopened at 13:10, resolved at 13:30: the first resolution is taken back.
        resolutions = [(f["seconds"], f["void"]) for f in by_kind["resolved"] if f["conversation_id"] == 1]
        assert resolutions == [(3600, True), (5400, False)]
        assert len(by_kind["reopened"]) == 1
        assert [f["flow_id"] for f in by_kind["bot_run"]] == [s.flow_id, s.flow_id]
        assert [(f["flow_id"], f["void"]) for f in by_kind["bot_resolved"]] == [(s.flow_id, False)]
        assert [f["flow_id"] for f in by_kind["handoff"]] == [s.flow_id]
        # 01:00 UTC on the 11th is the 10th in São Paulo.
        assert {f["day"] for f in facts_of(by_kind, "opened")} == {date(2026, 3, 10)}
        assert len(by_kind["opened"]) == 5

        assert await rebuild(gw.container.db, batch=7) > 0  # small batches: state carried across them
        again, again_states = await snapshot(gw)
        assert [f for f in again if f not in facts] == [f for f in facts if f not in again]
        assert again == facts
        assert again_states == states
    finally:
        await gw.close()


def facts_of(by_kind: dict[str, list[dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return by_kind.get(kind, [])


async def test_switchboard_reports_rebuild_fills_the_facts_of_an_existing_installation(
    tmp_path: Path, clock: ManualClock, capsys
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await drive(gw, clock)
        facts, states = await snapshot(gw)
    finally:
        await gw.close()
    db_file = tmp_path / "switchboard.sqlite3"
    with sqlite3.connect(db_file) as con:  # an installation from before the reports: no facts yet
        con.execute("DELETE FROM report_facts")
        con.execute("DELETE FROM report_conversations")
    # The command runs its own event loop, as from a shell.
    assert await asyncio.to_thread(main, ["reports", "rebuild", "--data-dir", str(tmp_path)]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()[-1:]
    assert line.startswith("report facts rebuilt from ") and line.endswith(" events")
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        assert await snapshot(gw) == (facts, states)
        status, body = await gw.api("GET", "/reports/summary?from=2026-03-10&to=2026-03-10")
        assert status == 200, body
        (row,) = body["rows"]
        assert (row["first_responses"], row["first_response_median"], row["reopened"]) == (2, 600, 1)
    finally:
        await gw.close()
