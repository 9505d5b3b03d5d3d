"""Business hours per inbox in its own time zone, read with an injected clock: the out-of-hours reply
goes once per period, and rules can test whether the inbox is open."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from routing.hours import BusinessHours
from tests.harness import jobs_done, start_gateway
from tests.routing.support import conversation, create

HOURS = {
    "timezone": "Europe/Berlin",
    "days": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-03-13"],
    "out_of_hours_reply": "We are closed now and answer from 9:00 (Berlin time).",
    "reply_every_hours": 12,
}


async def test_out_of_hours_reply_and_rules_follow_the_inbox_clock(tmp_path: Path, clock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        status, err = await gw.api(
            "PUT", "/inboxes/1/business-hours", json_body={**HOURS, "days": {"mon": ["18:00-09:00"]}}
        )
        assert status == 422 and err["error"]["details"][0]["field"] == "days"
        status, err = await gw.api(
            "PUT", "/inboxes/1/business-hours", json_body={**HOURS, "timezone": "Mars/Base"}
        )
        assert status == 422 and err["error"]["details"][0]["field"] == "timezone"

        status, hours = await gw.api("PUT", "/inboxes/1/business-hours", json_body=HOURS)
        assert status == 200
        await create(
            gw,
            "/rules",
            {
                "name": "after hours label",
                "conditions": [{"type": "business_hours", "open": False}],
                "actions": [{"type": "add_label", "label": "after-hours"}],
            },
        )
        loop = await gw.loopback()

        # Tuesday 10 March 2026, 12:00 UTC = 13:00 in Berlin: open, no reply, no label.
        assert hours["open_now"] is True
        day = await loop.customer_writes("+15550500001", "hello")
        await jobs_done(gw)
        assert loop.sent.empty()
        assert (await conversation(gw, day.conversation_id))["labels"] == []

        # 16:30 UTC = 17:30 in Berlin: closed. One reply, however many messages within 12 hours.
        clock.set(datetime(2026, 3, 10, 16, 30, tzinfo=UTC))
        status, now = await gw.api("GET", "/inboxes/1/business-hours")
        assert now["open_now"] is False
        night = await loop.customer_writes("+15550500002", "anyone?")
        outbound, _ = await loop.next_sent()
        assert outbound.text == HOURS["out_of_hours_reply"] and outbound.to == "+15550500002"
        assert (await conversation(gw, night.conversation_id))["labels"] == ["after-hours"]
        clock.advance(hours=2)
        await loop.customer_writes("+15550500002", "hello??")
        await jobs_done(gw)
        assert loop.sent.empty()

        # Friday 13 March is a holiday at noon; the next out-of-hours message, 12 h later, is answered again.
        clock.set(datetime(2026, 3, 13, 11, 0, tzinfo=UTC))
        await loop.customer_writes("+15550500002", "holiday?")
        outbound, _ = await loop.next_sent()
        assert outbound.text == HOURS["out_of_hours_reply"]
    finally:
        await gw.close()


def test_hours_in_the_inbox_time_zone_across_daylight_saving():
    hours = BusinessHours.model_validate({"timezone": "America/New_York", "days": {"sun": ["09:00-10:00"]}})
    # 8 March 2026: clocks in New York go forward at 2:00; 9:30 local is 13:30 UTC that day.
    assert hours.is_open(datetime(2026, 3, 8, 13, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 3, 8, 14, 30, tzinfo=UTC))
    # A week earlier (standard time) 9:30 local was 14:30 UTC.
    assert hours.is_open(datetime(2026, 3, 1, 14, 30, tzinfo=UTC))


@given(st.text(max_size=20))
def test_span_parser_accepts_only_well_formed_spans(span: str):
    try:
        hours = BusinessHours.model_validate({"days": {"mon": [span]}})
    except ValueError:
        return
    start, _, end = span.partition("-")
    assert len(start) == 5 and len(end) == 5 and start < end
    assert isinstance(hours.is_open(datetime(2026, 3, 9, 12, 0, tzinfo=UTC)), bool)


def test_open_seconds_count_only_the_hours_across_nights_holidays_and_daylight_saving():
    hours = BusinessHours.model_validate(HOURS)  # Berlin, Mon-Fri 09:00-17:00, closed 2026-03-13
    # Thursday 16:00 to Monday 10:00 Berlin (UTC+1): 1 h Thursday, Friday is a holiday, 1 h Monday.
    assert (
        hours.open_seconds(datetime(2026, 3, 12, 15, 0, tzinfo=UTC), datetime(2026, 3, 16, 9, 0, tzinfo=UTC))
        == 7200
    )
    # Clocks go forward on Sunday 2026-03-29: Monday 09:00 Berlin is 07:00 UTC.
    assert (
        hours.open_seconds(datetime(2026, 3, 30, 6, 0, tzinfo=UTC), datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
        == 3600
    )
    assert (
        hours.open_seconds(datetime(2026, 3, 30, 8, 0, tzinfo=UTC), datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
        == 0
    )
    always = BusinessHours.model_validate({"days": {"sat": ["00:00-24:00"]}})
    start = datetime(2026, 3, 14, 0, 0, tzinfo=UTC)
    assert always.open_seconds(start, datetime(2026, 3, 16, 0, 0, tzinfo=UTC)) == 86400
