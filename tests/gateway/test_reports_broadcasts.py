"""GET /reports/broadcasts: each broadcast of the period with its recipients by how far they got and
its failures by reason, as JSON and CSV; an agent sees only the broadcasts they created."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.policy_support import LOOPBACK, configure_channel
from tests.gateway.test_reports_api import csv_rows, report
from tests.harness import ManualClock, jobs_done, start_gateway
from tests.reports.scenario import agent_token


async def test_a_broadcast_reads_back_sent_replied_and_failed_by_reason(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=True, service_window=True, metered=False)
        loop = await gw.loopback()
        await loop.customer_writes("+15550200300", "STOP")
        await loop.next_sent()  # the opt-out confirmation
        await loop.customer_writes("+15550200400", "YES")
        await loop.next_sent()  # the opt-in confirmation
        body = {
            "channel_id": LOOPBACK,
            "recipients": ["+15550200200", "+15550200300", "+15550200400"],
            "text": "Our summer sale starts today!",
        }
        status, created = await gw.api("POST", "/broadcasts", json_body=body)
        assert status == 201, created
        await jobs_done(gw)
        await loop.next_sent()  # the sale, to the one who opted in
        clock.advance(minutes=3)
        await loop.customer_writes("+15550200400", "Which sizes?")
        await jobs_done(gw)

        day = clock().date().isoformat()
        period = f"from={day}&to={day}"
        (row,) = (await report(gw, "broadcasts", period))["rows"]
        assert (row["broadcast_id"], row["channel_kind"], row["recipients"]) == (created["id"], "loopback", 3)
        assert (row["sent"], row["replied"], row["failed"]) == (1, 1, 2)
        assert row["failed_by_reason"] == "not_opted_in=1; opted_out=1"

        disposition, (line,) = await csv_rows(gw, "broadcasts", period)
        assert disposition.endswith(f'filename="switchboard-broadcasts-{day}-{day}.csv"')
        assert (line["sent"], line["failed"], line["failed_by_reason"]) == (
            "1",
            "2",
            "not_opted_in=1; opted_out=1",
        )

        # Another day's period holds none; the agent who created none sees none.
        assert (await report(gw, "broadcasts", "from=2020-01-01&to=2020-01-02"))["rows"] == []
        token = await agent_token(gw)
        assert (await report(gw, "broadcasts", period, token=token))["rows"] == []
    finally:
        await gw.close()
