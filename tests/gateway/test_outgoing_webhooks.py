"""Outgoing webhooks against a real receiver on 127.0.0.1: signed, retried, in order, logged, disabled."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from gateway.outgoing_webhooks import HttpPoster
from inbox.webhooks import verify_signature
from tests.conftest import SmtpSink
from tests.gateway.webhook_receiver import Receiver, webhook_receiver
from tests.harness import Gateway, ManualClock, jobs_done, start_gateway


async def _private_ok(tmp_path: Path, clock: ManualClock, **settings: object) -> Gateway:
    return await start_gateway(tmp_path, clock=clock, settings={"webhooks_allow_private": True, **settings})


async def _subscribe(gw: Gateway, receiver: Receiver, events: list[str]) -> dict:
    status, sub = await gw.api(
        "POST", "/webhook-subscriptions", json_body={"url": receiver.url, "events": events}
    )
    assert status == 201, sub
    assert sub["secret"].startswith("whsec_")
    return sub


async def _conversation_id(gw: Gateway) -> int:
    status, page = await gw.api("GET", "/conversations")
    assert status == 200
    return int(page["items"][0]["id"])


async def _retry_now(gw: Gateway, clock: ManualClock, receiver: Receiver, count: int) -> None:
    """Move time past the back-off and wait for the next attempt to be answered and recorded."""
    clock.advance(hours=2)
    gw.container.webhooks.poke()
    await receiver.wait_for(count)
    await jobs_done(gw)


async def test_a_receiver_failing_twice_gets_the_event_once_signed_and_the_log_shows_three_attempts(
    tmp_path: Path, clock: ManualClock, database_url: str | None
):
    async with webhook_receiver() as receiver:
        receiver.script = [(503, {}), (503, {})]
        gw = await start_gateway(
            tmp_path, database_url=database_url, clock=clock, settings={"webhooks_allow_private": True}
        )
        try:
            sub = await _subscribe(gw, receiver, ["conversation.status_changed"])
            conversation_id = await _conversation_id(gw)
            status, _ = await gw.api(
                "PATCH", f"/conversations/{conversation_id}", json_body={"status": "resolved"}
            )
            assert status == 200
            await receiver.wait_for(1)
            await jobs_done(gw)
            status, log = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries")
            (pending,) = log["items"]
            assert (pending["status"], pending["attempts"], pending["last_status_code"]) == (
                "pending",
                1,
                503,
            )
            assert pending["next_attempt_at"] is not None

            await _retry_now(gw, clock, receiver, 2)
            await _retry_now(gw, clock, receiver, 3)

            # The same delivery three times (one id for the receiver's idempotency), each signed.
            assert len({r.headers["X-Switchboard-Delivery"] for r in receiver.requests}) == 1
            for request in receiver.requests:
                assert request.headers["X-Switchboard-Event"] == "conversation.status_changed"
                assert verify_signature(
                    sub["secret"], request.headers["X-Switchboard-Signature"], request.body, now=time.time()
                )
                assert not verify_signature(
                    "whsec_someone-else",
                    request.headers["X-Switchboard-Signature"],
                    request.body,
                    now=time.time(),
                )
            payload = receiver.requests[-1].payload
            assert payload["type"] == "conversation.status_changed"
            assert payload["conversation_id"] == conversation_id
            assert payload["data"]["conversation"]["status"] == "resolved"
            assert {"field": "status", "old": "open", "new": "resolved"} in payload["data"]["changes"]

            status, log = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries")
            (delivery,) = log["items"]
            assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
                "delivered",
                3,
                200,
            )
            status, one = await gw.api(
                "GET", f"/webhook-subscriptions/{sub['id']}/deliveries/{delivery['id']}"
            )
            assert [a["status_code"] for a in one["attempt_log"]] == [503, 503, 200]
            assert one["attempt_log"][0]["response"] == "answer 503"
            assert one["payload"] == payload
            # Nothing more was sent once it was accepted.
            gw.container.webhooks.poke()
            await jobs_done(gw)
            assert len(receiver.requests) == 3
        finally:
            await gw.close()


async def test_a_private_target_is_refused_without_the_setting(tmp_path: Path, gateway: Gateway):
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://example.org/hook",
        "http://user:pw@example.org/hook",
    ):
        status, body = await gateway.api(
            "POST", "/webhook-subscriptions", json_body={"url": url, "events": ["message.created"]}
        )
        assert status == 422, (url, body)
        assert body["error"]["details"][0]["field"] == "url"
    status, page = await gateway.api("GET", "/webhook-subscriptions")
    assert page["items"] == []

    # And when a request goes out: the client refuses a private address before connecting.
    async with webhook_receiver() as receiver:
        poster = HttpPoster(timeout=5, allow_private=False)
        try:
            answer = await poster.post(receiver.url, b"{}", {})
            assert answer.status is None and answer.error is not None and "refused" in answer.error
            by_name = await poster.post(receiver.url.replace("127.0.0.1", "localhost"), b"{}", {})
            assert by_name.status is None and "private" in (by_name.error or "")
        finally:
            await poster.stop()
        assert receiver.requests == []


async def test_only_admins_manage_subscriptions_and_events_are_checked(gateway: Gateway):
    _, agent_token = await gateway.user("agent7@example.org", "agent", inbox_ids=[1])
    status, body = await gateway.api("GET", "/webhook-subscriptions", token=agent_token)
    assert status == 403
    status, body = await gateway.api(
        "POST",
        "/webhook-subscriptions",
        json_body={"url": "https://example.org/h", "events": ["message.created", "message.typo"]},
    )
    assert status == 422
    assert "events[1]" in body["error"]["message"]
    status, body = await gateway.api(
        "POST",
        "/webhook-subscriptions",
        json_body={"url": "https://93.184.215.14/h", "events": ["message.created"], "inbox_ids": [999]},
    )
    assert status == 422
    assert body["error"]["details"][0]["field"] == "inbox_ids.0"
    # Broadcasts, tickets, merges and satisfaction ratings are on the stream, so they can be asked for.
    events = ["broadcast.updated", "ticket.created", "ticket.updated", "contact.merged", "csat.rated"]
    status, body = await gateway.api(
        "POST", "/webhook-subscriptions", json_body={"url": "https://93.184.215.14/h", "events": events}
    )
    assert (status, body["events"]) == (201, sorted(events)), body


async def test_order_is_kept_behind_a_retry_and_a_refused_delivery_does_not_hold_the_line(
    tmp_path: Path, clock: ManualClock
):
    async with webhook_receiver() as receiver:
        # First event: 503 (then accepted); second: refused with 400 (given up at once); third: accepted.
        receiver.script = [(503, {"Retry-After": "120"})]
        gw = await _private_ok(tmp_path, clock)
        try:
            sub = await _subscribe(gw, receiver, ["conversation.updated"])
            conversation_id = await _conversation_id(gw)
            await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"priority": "high"})
            await receiver.wait_for(1)
            await jobs_done(gw)
            # Two more events while the first waits for its retry: they wait behind it.
            await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"priority": "low"})
            await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"priority": "urgent"})
            await jobs_done(gw)
            assert len(receiver.requests) == 1
            _, log = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries?status=pending")
            first = log["items"][-1]
            # Retry-After is honoured: the next try is exactly 120 s after the attempt.
            assert datetime.fromisoformat(first["next_attempt_at"]) == clock.now + timedelta(seconds=120)

            receiver.script = [(200, {}), (400, {})]
            clock.advance(seconds=121)
            gw.container.webhooks.poke()
            await receiver.wait_for(4)
            await jobs_done(gw)
            priorities = [r.payload["data"]["conversation"]["priority"] for r in receiver.requests]
            assert priorities == ["high", "high", "low", "urgent"]
            _, log = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries")
            assert [d["status"] for d in log["items"]] == ["delivered", "failed", "delivered"]
            assert log["items"][1]["attempts"] == 1 and log["items"][1]["last_status_code"] == 400

            # Redelivery sends the refused one again under the same delivery id.
            refused = log["items"][1]
            status, again = await gw.api(
                "POST", f"/webhook-subscriptions/{sub['id']}/deliveries/{refused['id']}/redeliver"
            )
            assert status == 202 and again["status"] == "pending"
            await receiver.wait_for(5)
            await jobs_done(gw)
            assert receiver.requests[-1].headers["X-Switchboard-Delivery"] == refused["uid"]
            _, one = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries/{refused['id']}")
            assert one["status"] == "delivered"
            assert [a["status_code"] for a in one["attempt_log"]] == [400, 200]
        finally:
            await gw.close()


async def test_a_test_event_is_sent_once_and_its_answer_shown(tmp_path: Path, clock: ManualClock):
    async with webhook_receiver() as receiver:
        receiver.script = [(500, {})]
        gw = await _private_ok(tmp_path, clock)
        try:
            sub = await _subscribe(gw, receiver, ["message.created"])
            status, delivery = await gw.api("POST", f"/webhook-subscriptions/{sub['id']}/test")
            assert status == 202
            (request,) = await receiver.wait_for(1)
            await jobs_done(gw)
            assert request.payload["type"] == "webhook.test"
            assert verify_signature(
                sub["secret"], request.headers["X-Switchboard-Signature"], request.body, now=time.time()
            )
            _, one = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries/{delivery['id']}")
            assert (one["status"], one["last_status_code"], one["last_response"]) == (
                "failed",
                500,
                "answer 500",
            )
            clock.advance(hours=3)
            gw.container.webhooks.poke()
            await jobs_done(gw)
            assert len(receiver.requests) == 1  # a test event is not retried
        finally:
            await gw.close()


async def test_a_subscription_failing_for_24_hours_is_disabled_and_admins_are_mailed(
    tmp_path: Path, clock: ManualClock, smtp_sink: SmtpSink
):
    async with webhook_receiver() as receiver:
        receiver.script = [(503, {})] * 100
        gw = await _private_ok(tmp_path, clock, smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}")
        try:
            sub = await _subscribe(gw, receiver, ["conversation.updated"])
            conversation_id = await _conversation_id(gw)
            await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"priority": "high"})
            await receiver.wait_for(1)
            await jobs_done(gw)
            for count in range(2, 14):  # every 2 h: the 13th try is 24 h after the first
                await _retry_now(gw, clock, receiver, count)
            _, view = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}")
            assert view["active"] is False
            assert "24 hours" in view["disabled_reason"]
            _, log = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries")
            assert log["items"][0]["status"] == "failed"
            assert "gave up" in log["items"][0]["last_error"]
            (envelope,) = await smtp_sink.wait_for(1)
            mail = message_from_bytes(envelope.content, policy=default)
            assert mail["Subject"] == f"Webhook disabled: {receiver.url}"
            text = mail.get_body(("plain",))
            assert text is not None and "PATCH /api/v1/webhook-subscriptions/" in text.get_content()
            assert envelope.rcpt_tos == ["admin@demo.switchboard.test"]

            # Disabled: new events are not recorded for it, nothing is sent.
            await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"priority": "low"})
            clock.advance(hours=2)
            gw.container.webhooks.poke()
            await jobs_done(gw)
            assert len(receiver.requests) == 13
            _, log = await gw.api("GET", f"/webhook-subscriptions/{sub['id']}/deliveries")
            assert len(log["items"]) == 1

            # Enabled again, it works.
            receiver.script = []
            status, view = await gw.api(
                "PATCH", f"/webhook-subscriptions/{sub['id']}", json_body={"active": True}
            )
            assert status == 200 and view["active"] is True and view["disabled_reason"] is None
            await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"priority": "urgent"})
            await receiver.wait_for(14)
            assert receiver.requests[-1].payload["data"]["conversation"]["priority"] == "urgent"
        finally:
            await gw.close()
