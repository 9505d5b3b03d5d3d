"""GET /api/v1/reports/*: the scenario's known timings read back exactly, as JSON and as CSV, with
filters, business hours, buckets in the account's time zone, roles, and 422s naming the field."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import aiohttp

from tests.harness import Gateway, ManualClock, start_gateway
from tests.reports.scenario import ADA, ALEX, drive

PERIOD = "from=2026-03-10&to=2026-03-10"


async def report(gw: Gateway, name: str, query: str = PERIOD, token: str | None = None) -> dict:
    status, body = await gw.api("GET", f"/reports/{name}?{query}", token=token)
    assert status == 200, body
    return body


async def csv_rows(gw: Gateway, name: str, query: str = PERIOD) -> tuple[str, list[dict[str, str]]]:
    async with gw.http.get(
        f"{gw.base_url}/api/v1/reports/{name}?{query}&format=csv",
        headers={"Authorization": f"Bearer {gw.admin_token}"},
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        disposition = resp.headers["Content-Disposition"]
        return disposition, list(csv.DictReader(io.StringIO(await resp.text())))


async def test_reports_read_the_known_timings_back(
    tmp_path: Path, database_url: str | None, clock: ManualClock
):
    gw = await start_gateway(tmp_path, database_url=database_url, clock=clock)
    try:
        s = await drive(gw, clock)
        body = await report(gw, "summary")
        assert (body["from"], body["to"], body["business_hours"]) == ("2026-03-10", "2026-03-10", False)
        (row,) = body["rows"]
        # Replies after 5 and 15 minutes: median 10 min, p90 14 min (interpolated), mean 10 min.
        assert (row["first_responses"], row["first_response_median"], row["first_response_p90"]) == (
            2,
            600,
            840,
        )
        assert row["first_response_mean"] == 600
        assert (row["next_responses"], row["next_response_median"]) == (1, 600)
        # A: resolved, reopened, resolved again (one resolution, of 90 min); the bot's: at once.
        assert (row["resolved"], row["reopened"], row["resolution_median"]) == (2, 1, 2700)
        assert row["opened"] == 5 and row["agent_replies"] == 3
        assert (row["bot_runs"], row["bot_resolved"], row["handoffs"], row["handoff_rate"]) == (2, 1, 1, 0.5)

        # Business hours (Tuesdays from 12:10 UTC): A waited none of them, B 10 minutes.
        (bh,) = (await report(gw, "summary", PERIOD + "&business_hours=true"))["rows"]
        assert (bh["first_response_median"], bh["first_response_p90"]) == (300, 540)

        agents = {r["agent_id"]: r for r in (await report(gw, "agents"))["rows"]}
        assert (agents[ALEX]["replies"], agents[ALEX]["conversations"]) == (2, 1)
        assert (agents[ALEX]["first_response_median"], agents[ALEX]["next_response_median"]) == (300, 600)
        assert (agents[ADA]["replies"], agents[ADA]["first_response_median"]) == (1, 900)
        # Alex resolved A (unassigned) twice; the reopen took the first back. The bot's is nobody's.
        assert (agents[ALEX]["resolved"], agents[ALEX]["resolution_median"], agents[ADA]["resolved"]) == (
            1,
            5400,
            0,
        )
        assert [r["agent_id"] for r in (await report(gw, "agents"))["rows"]][:2] == [ALEX, ADA]  # most first

        (flow,) = (await report(gw, "bots"))["rows"]
        assert (flow["flow_id"], flow["name"], flow["runs"], flow["resolved"], flow["handoffs"]) == (
            s.flow_id,
            "Triage",
            2,
            1,
            1,
        )
        assert (flow["handoff_rate"], flow["resolution_rate"]) == (0.5, 0.5)

        teams = {r["name"]: r for r in (await report(gw, "teams"))["rows"]}
        assert teams["Support"]["opened"] == 5 and teams["Support"]["first_response_median"] == 600
        (inbox,) = (await report(gw, "inboxes"))["rows"]
        assert (inbox["name"], inbox["agent_replies"]) == ("Support", 3)

        # Filters: a label, a channel kind, an agent.
        (vip,) = (await report(gw, "summary", PERIOD + "&label=VIP"))["rows"]
        assert (vip["opened"], vip["first_response_median"]) == (1, 900)
        (loop,) = (await report(gw, "summary", PERIOD + "&channel=loopback"))["rows"]
        assert (loop["resolved"], loop["resolution_median"], loop["bot_runs"]) == (1, 5400, 0)
        (tg,) = (await report(gw, "summary", PERIOD + "&channel=telegram"))["rows"]
        assert (tg["opened"], tg["bot_runs"], tg["first_responses"]) == (2, 2, 0)
        (alex,) = (await report(gw, "summary", PERIOD + f"&agent_id={ALEX}"))["rows"]
        assert (alex["agent_replies"], alex["first_response_median"]) == (2, 300)

        # Days in São Paulo: the 01:00 UTC message of the 11th belongs to the 10th.
        series = (await report(gw, "timeseries", "from=2026-03-09&to=2026-03-11"))["rows"]
        assert [(r["bucket"], r["opened"]) for r in series] == [
            ("2026-03-09", 0),
            ("2026-03-10", 5),
            ("2026-03-11", 0),
        ]
        assert series[1]["first_response_median"] == 600 and series[0]["first_response_median"] is None
        months = (await report(gw, "timeseries", "from=2026-02-20&to=2026-03-31&group_by=month"))["rows"]
        assert [(r["bucket"], r["opened"]) for r in months] == [("2026-02-01", 0), ("2026-03-01", 5)]
        weeks = (await report(gw, "timeseries", "from=2026-03-01&to=2026-03-14&group_by=week"))["rows"]
        assert [(r["bucket"], r["opened"]) for r in weeks] == [
            ("2026-02-23", 0),
            ("2026-03-02", 0),
            ("2026-03-09", 5),
        ]

        # The same tables as CSV.
        disposition, rows = await csv_rows(gw, "agents")
        assert disposition == 'attachment; filename="switchboard-agents-2026-03-10-2026-03-10.csv"'
        by_id = {r["agent_id"]: r for r in rows}
        assert (
            by_id[str(ALEX)]["name"] == "Alex Agent" and by_id[str(ALEX)]["first_response_median"] == "300.0"
        )
        _, (summary_row,) = await csv_rows(gw, "summary")
        assert (summary_row["first_response_median"], summary_row["first_response_p90"]) == ("600.0", "840.0")
        _, bot_rows = await csv_rows(gw, "bots")
        assert [(r["name"], r["handoff_rate"]) for r in bot_rows] == [("Triage", "0.5")]
        for name in ("teams", "inboxes", "timeseries"):
            _, table = await csv_rows(gw, name)
            assert table, name

        # An agent sees only their own numbers.
        mine = await report(gw, "agents", token=s.alex_token)
        assert [r["agent_id"] for r in mine["rows"]] == [ALEX]
        (own,) = (await report(gw, "summary", token=s.alex_token))["rows"]
        assert own["agent_replies"] == 2 and own["first_response_median"] == 300
        status, err = await gw.api("GET", f"/reports/agents?{PERIOD}&agent_id={ADA}", token=s.alex_token)
        assert status == 403, err
    finally:
        await gw.close()


async def test_bad_periods_and_ids_are_refused_naming_the_field(gateway: Gateway):
    cases = {
        "from=2026-03-10&to=2026-03-01": "from",
        "from=2025-01-01&to=2026-02-05": "to",  # 401 days
        "group_by=hour": "group_by",
        "from=yesterday": "from",
        "inbox_id=999": "inbox_id",
        "team_id=999": "team_id",
        "agent_id=999": "agent_id",
        "channel=fax": "channel",
        "format=xlsx": "format",
    }
    for query, field in cases.items():
        status, err = await gateway.api("GET", f"/reports/summary?{query}")
        assert status == 422, (query, err)
        assert [d["field"] for d in err["error"]["details"]] == [field], (query, err)
    status, _ = await gateway.api("GET", "/reports/summary?from=2025-01-01&to=2026-02-04")  # 400 days
    assert status == 200
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(f"{gateway.base_url}/api/v1/reports/summary") as resp,
    ):
        assert resp.status == 401
