"""POST /broadcasts: one message to many recipients, each through the outbox gate on its own."""

from __future__ import annotations

from pathlib import Path

from inbox import tables as t
from inbox.broadcasts import BATCH
from tests.gateway.policy_support import LOOPBACK, configure_channel, count_rows, quota, seed_usage
from tests.harness import ManualClock, jobs_done, start_gateway


async def _broadcast(gw, recipients: list[str], text: str = "Our summer sale starts today!", **extra):
    body = {"channel_id": extra.pop("channel_id", LOOPBACK), "recipients": recipients, "text": text, **extra}
    return await gw.api("POST", "/broadcasts", json_body=body, token=extra.pop("token", None))


async def test_each_recipient_passes_consent_on_its_own_and_only_the_opted_in_is_sent(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=True, service_window=True, metered=False)
        loop = await gw.loopback()
        await loop.customer_writes("+15550200300", "STOP")
        await loop.next_sent()  # the opt-out confirmation
        await loop.customer_writes("+15550200400", "YES")
        await loop.next_sent()  # the opt-in confirmation
        stream = await gw.stream()
        await stream.ready()

        status, body = await _broadcast(gw, ["+15550200200", "+15550200300", "+15550200400"])
        assert status == 201, body
        outcome = {i["to"]: (i["message"]["status"], i["message"]["reason"]) for i in body["items"]}
        assert outcome == {
            "+15550200200": ("failed", "not_opted_in"),
            "+15550200300": ("failed", "opted_out"),
            "+15550200400": ("queued", None),
        }
        assert (body["queued"], body["failed"]) == (1, 2)
        # Refused messages keep their text, like single sends.
        assert all(i["message"]["text"] == "Our summer sale starts today!" for i in body["items"])

        sent, _ = await loop.next_sent()
        assert sent.to == "+15550200400" and sent.text == "Our summer sale starts today!"
        await jobs_done(gw)
        assert loop.sent.empty()
        # Every message is on the stream, refused ones included.
        created = {body["items"][n]["message"]["id"] for n in range(3)}
        seen: set[int] = set()
        while seen != created:
            event = await stream.next(lambda e: e["type"] == "message.created")
            seen.add(event["data"]["message"]["id"])
    finally:
        await gw.close()


async def test_a_broadcast_over_the_quota_opens_exactly_the_remaining_conversations(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=True)
        await seed_usage(gw, 997)
        recipients = [f"+1555040{n:04d}" for n in range(6)]
        status, body = await _broadcast(gw, recipients)
        assert status == 201, body
        assert [i["message"]["status"] for i in body["items"]] == ["queued"] * 3 + ["failed"] * 3
        assert {i["message"]["reason"] for i in body["items"][3:]} == {"quota_exhausted"}
        q = await quota(gw)
        assert q["used"] == 1000 and q["blocked"]
        assert await count_rows(gw, t.BillableConversation) == 3
        # 70..100 % crossed by this one broadcast: every tier recorded once.
        assert await count_rows(gw, t.QuotaAlert) == 5
    finally:
        await gw.close()


async def test_more_recipients_than_a_batch_are_each_delivered_exactly_once(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        loop = await gw.loopback()
        recipients = [f"+1555050{n:04d}" for n in range(2 * BATCH + 7)]
        status, body = await _broadcast(gw, recipients)
        assert status == 201, body
        assert body["queued"] == len(recipients) and body["failed"] == 0
        assert [i["to"] for i in body["items"]] == recipients
        await jobs_done(gw)
        delivered: list[str] = []
        while not loop.sent.empty():
            delivered.append(loop.sent.get_nowait()[0].to)
        assert sorted(delivered) == sorted(recipients)
        _, page = await gw.api(
            "GET", f"/conversations/{body['items'][0]['message']['conversation_id']}/messages"
        )
        assert [m["status"] for m in page["items"] if m["kind"] == "outgoing"] == ["sent"]
    finally:
        await gw.close()


async def test_bad_or_repeated_recipients_are_named_and_nothing_is_sent(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        before = await count_rows(gw, t.Message)
        status, body = await _broadcast(gw, ["+15550600001", "   ", "+15550600002", "+15550600001"])
        assert status == 422, body
        assert body["error"]["code"] == "invalid_recipient"
        fields = [d["field"] for d in body["error"]["details"]]
        assert fields == ["recipients[1]", "recipients[3]"]
        assert await count_rows(gw, t.Message) == before

        status, body = await _broadcast(gw, [])
        assert status == 422
        status, body = await gw.api(
            "POST", "/broadcasts", json_body={"channel_id": LOOPBACK, "recipients": ["+15550600001"]}
        )
        assert status == 422  # neither text nor a template
    finally:
        await gw.close()


async def test_only_members_of_the_channels_inbox_may_broadcast(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        _, outsider = await gw.user("outsider@example.com", "agent", inbox_ids=[])
        status, body = await _broadcast(gw, ["+15550700001"], token=outsider)
        assert status == 422 and body["error"]["details"][0]["field"] == "channel_id"
        status, _ = await gw.api(
            "POST",
            "/broadcasts",
            json_body={"channel_id": LOOPBACK, "recipients": ["+15550700001"], "text": "hi"},
            token="not-a-token",
        )
        assert status == 401
        _, page = await gw.api("GET", "/contacts?q=15550700001")
        assert page["items"] == []
    finally:
        await gw.close()
