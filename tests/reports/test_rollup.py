"""The roll-ups hold exactly the sums of the facts (under every label, after reopens and label changes,
and after a rebuild), and medians read from their histograms stay within 1/32 of the exact ones."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import literal, select, union_all

from inbox import tables as t
from reports.queries import Duration, FactQueries, Scope, _from_histogram, _percentile
from reports.rebuild import rebuild
from reports.rollup import bucket_of, bucket_range, bucket_sql, bucket_value
from tests.harness import Gateway, ManualClock, start_gateway
from tests.reports.scenario import ADA, ALEX, drive

DAY = date(2026, 3, 10)


async def rollups(gw: Gateway) -> Counter[tuple[Any, ...]]:
    """The roll-up rows that count something, as a multiset of (key..., n, total)."""
    async with gw.container.db.read() as session:
        rows = await session.execute(select(t.ReportRollup).where(t.ReportRollup.n != 0))
        columns = [c.name for c in t.ReportRollup.__table__.columns]
        return Counter(tuple(getattr(r, c) for c in columns) for r in rows.scalars())


async def expected_rollups(gw: Gateway) -> Counter[tuple[Any, ...]]:
    """The same, summed here from the facts and the conversations' labels now."""
    async with gw.container.db.read() as session:
        facts = list(await session.scalars(select(t.ReportFact).where(t.ReportFact.void.is_(False))))
        labels: dict[int, list[str]] = {}
        for cid, label in await session.execute(
            select(t.ConversationLabel.conversation_id, t.ConversationLabel.label)
        ):
            labels.setdefault(cid, []).append(label)
    sums: dict[tuple[Any, ...], list[int]] = {}
    for f in facts:
        dims = (
            f.inbox_id or 0,
            f.team_id or 0,
            f.agent_id or 0,
            f.channel_kind or "",
            f.flow_id or 0,
            f.origin or "",
        )
        for label in ["", *labels.get(f.conversation_id or 0, [])]:
            measures = [(0, 0, 0)] if f.seconds is None else [(0, bucket_of(f.seconds), f.seconds)]
            if f.business_seconds is not None:
                measures.append((1, bucket_of(f.business_seconds), f.business_seconds))
            for measure, bucket, seconds in measures:
                key = (f.account_id, f.kind, label, measure, f.day, *dims, bucket)
                sums.setdefault(key, [0, 0])
                sums[key][0] += 1
                sums[key][1] += seconds
    return Counter((*key, n, total) for key, (n, total) in sums.items())


async def test_the_rollups_are_the_sums_of_the_facts_under_every_label(
    tmp_path: Path, database_url: str | None, clock: ManualClock
):
    gw = await start_gateway(tmp_path, database_url=database_url, clock=clock)
    try:
        s = await drive(gw, clock)
        # A gets two labels after its facts, B loses its own: their facts move between the labels' rows.
        for conversation_id, wanted in ((s.conversation_a, ["vip", "late"]), (s.conversation_b, ["late"])):
            status, body = await gw.api(
                "PATCH", f"/conversations/{conversation_id}", json_body={"labels": wanted}
            )
            assert status == 200, body
        live = await rollups(gw)
        assert live == await expected_rollups(gw)
        assert {key[2] for key in live} == {"", "vip", "late"}

        status, body = await gw.api("GET", "/reports/agents?from=2026-03-10&to=2026-03-10&label=late")
        assert status == 200, body
        late = {r["agent_id"]: r for r in body["rows"]}
        assert (late[ALEX]["conversations"], late[ALEX]["replies"], late[ADA]["conversations"]) == (1, 2, 1)
        status, body = await gw.api("GET", "/reports/summary?from=2026-03-10&to=2026-03-10&label=vip")
        assert status == 200, body
        (vip,) = body["rows"]  # now A only: opened once, Alex's 5 min first response
        assert (vip["opened"], vip["first_response_median"], vip["agent_replies"]) == (1, 300, 2)

        await rebuild(gw.container.db, batch=7)
        assert await rollups(gw) == live
    finally:
        await gw.close()


async def test_medians_from_the_histograms_are_within_a_32nd_of_the_exact_ones(
    tmp_path: Path, database_url: str | None, clock: ManualClock
):
    gw = await start_gateway(tmp_path, database_url=database_url, clock=clock)
    try:
        await drive(gw, clock)
        scope = Scope(account_id=1, start=DAY, end=DAY)
        async with gw.container.db.read() as session:
            for kind in ("first_response", "next_response", "resolved"):
                for by in (None, "agent"):
                    exact = await FactQueries(session, scope).durations(kind, by)
                    rolled = await FactQueries(session, scope, exact_limit=0).durations(kind, by)
                    assert rolled.keys() == exact.keys()
                    for key, d in exact.items():
                        assert (rolled[key].count, rolled[key].mean) == (d.count, d.mean)
                        assert close(rolled[key], d), (kind, by, rolled[key], d)
            # The bucket of a duration is the same in SQL (how the bench fills the roll-ups).
            values = [0, 1, 31, 32, 33, 63, 64, 599, 600, 3599, 86_400, 10**7, 2**31 - 1]
            found = await session.execute(
                union_all(*[select(literal(v).label("v"), bucket_sql(literal(v)).label("b")) for v in values])
            )
            assert sorted((int(v), int(b)) for v, b in found) == [(v, bucket_of(v)) for v in values]
    finally:
        await gw.close()


def close(rolled: Duration, exact: Duration) -> bool:
    pairs = [(rolled.median, exact.median), (rolled.p90, exact.p90)]
    return all(a is not None and b is not None and abs(a - b) <= b / 32 + 0.05 for a, b in pairs)


def test_histogram_percentiles_stay_within_a_32nd_on_many_values():
    rng = random.Random(18)
    for size in (1, 2, 3, 10, 101, 5000):
        values = sorted(rng.choice([rng.randrange(60), rng.randrange(86_400)]) for _ in range(size))
        histogram: dict[int, tuple[int, int]] = {}
        for v in values:
            n, total = histogram.get(bucket_of(v), (0, 0))
            histogram[bucket_of(v)] = (n + 1, total + v)
        ranks = {i + 1: float(v) for i, v in enumerate(values)}
        exact = Duration(size, _percentile(ranks, size, 1, 2), _percentile(ranks, size, 9, 10), 0)
        rolled = _from_histogram(histogram)
        assert rolled.count == size and rolled.mean == round(sum(values) / size, 1)
        assert close(rolled, exact), (size, rolled, exact)
    for bucket in range(0, 600):
        lo, hi = bucket_range(bucket)
        assert bucket_of(lo) == bucket_of(hi) == bucket and abs(bucket_value(bucket) - lo) <= lo / 32
