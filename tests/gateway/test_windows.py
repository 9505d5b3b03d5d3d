"""The 24-hour service window and templates, through the REST API with an injected clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.gateway.policy_support import LOOPBACK, configure_channel, reply, send_to
from tests.harness import Gateway, ManualClock, start_gateway


async def _template(
    gw: Gateway,
    name: str = "order_update",
    body: str = "Your order {{1}} ships on {{2}}.",
    status: str = "approved",
) -> dict:
    code, row = await gw.api(
        "POST",
        f"/channels/{LOOPBACK}/templates",
        json_body={"name": name, "language": "en_US", "category": "utility", "body": body, "status": status},
    )
    assert code == 201, row
    return row


async def test_free_form_inside_the_window_until_23_59_59_then_templates_only(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, service_window=True, metered=False, consent=False)
        loop = await gw.loopback()
        received = await loop.customer_writes("+15550100200", "Is my order on its way?")
        wrote_at = clock.now

        clock.set(wrote_at + timedelta(hours=23, minutes=59, seconds=59))
        ok = await reply(gw, received.conversation_id, "Yes, tomorrow.")
        assert ok["status"] == "queued" and ok["reason"] is None
        sent, _ = await loop.next_sent()
        assert sent.text == "Yes, tomorrow."

        clock.set(wrote_at + timedelta(hours=24))
        late = await reply(gw, received.conversation_id, "One more thing...")
        assert late["status"] == "failed" and late["reason"] == "window_closed"
        assert late["text"] == "One more thing..."  # the agent's text is kept

        await _template(gw)
        code, templated = await gw.api(
            "POST",
            f"/conversations/{received.conversation_id}/messages",
            json_body={
                "template": {"name": "order_update", "language": "en_US", "params": ["#1234", "Monday"]}
            },
        )
        assert code == 201 and templated["status"] == "queued", templated
        assert templated["text"] == "Your order #1234 ships on Monday."  # what the contact will read
        sent, _ = await loop.next_sent()
        assert sent.template is not None and sent.template.params == ("#1234", "Monday")

        # A new message from the contact opens the window again.
        await loop.customer_writes("+15550100200", "ok thanks")
        again = await reply(gw, received.conversation_id, "You're welcome")
        assert again["status"] == "queued"
    finally:
        await gw.close()


async def test_templates_must_exist_be_approved_and_get_their_parameters(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, service_window=True, metered=False, consent=False)
        await _template(gw)
        await _template(gw, name="promo", body="Sale!", status="pending")

        # A contact who never wrote: the first message must be a template.
        first = await send_to(gw, "+15550100300", "Hi there")
        assert first["status"] == "failed" and first["reason"] == "template_required"

        wrong_count = await send_to(
            gw, "+15550100300", None, template={"name": "order_update", "params": ["#1"]}
        )
        assert wrong_count["reason"] == "template_required"
        assert "takes 2 parameters, 1 given" in wrong_count["error_detail"]
        pending = await send_to(gw, "+15550100300", None, template={"name": "promo"})
        assert pending["reason"] == "template_required" and "pending" in pending["error_detail"]
        unknown = await send_to(gw, "+15550100300", None, template={"name": "nope"})
        assert unknown["reason"] == "template_required"

        good = await send_to(
            gw, "+15550100300", None, template={"name": "order_update", "params": ["#1", "Friday"]}
        )
        assert good["status"] == "queued"

        code, listed = await gw.api("GET", f"/channels/{LOOPBACK}/templates")
        assert code == 200
        assert [(t["name"], t["params"], t["status"]) for t in listed["items"]] == [
            ("order_update", 2, "approved"),
            ("promo", 0, "pending"),
        ]
        promo = next(t for t in listed["items"] if t["name"] == "promo")
        code, patched = await gw.api(
            "PATCH", f"/channels/{LOOPBACK}/templates/{promo['id']}", json_body={"status": "approved"}
        )
        assert code == 200 and patched["status"] == "approved"
        assert (await send_to(gw, "+15550100300", None, template={"name": "promo"}))["status"] == "queued"

        code, dup = await gw.api(
            "POST",
            f"/channels/{LOOPBACK}/templates",
            json_body={"name": "promo", "category": "marketing", "body": "x"},
        )
        assert code == 409 and dup["error"]["code"] == "template_exists"
        code, bad = await gw.api(
            "POST",
            f"/channels/{LOOPBACK}/templates",
            json_body={"name": "promo 2", "category": "x", "body": "x"},
        )
        assert code == 422 and {d["field"] for d in bad["error"]["details"]} == {"name", "category"}
        _, agent_token = await gw.user("agent2@example.com", inbox_ids=[1])
        code, err = await gw.api(
            "POST",
            f"/channels/{LOOPBACK}/templates",
            json_body={"name": "x", "category": "utility", "body": "x"},
            token=agent_token,
        )
        assert code == 403
        code, _ = await gw.api("GET", f"/channels/{LOOPBACK}/templates", token=agent_token)
        assert code == 200
    finally:
        await gw.close()


async def test_dispatch_rechecks_the_window(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, service_window=True, metered=False, consent=False)
        loop = await gw.loopback()
        received = await loop.customer_writes("+15550100400", "hello")
        await gw.container.jobs.stop()  # hold delivery: the message waits in the queue
        clock.advance(hours=23, minutes=59, seconds=59)
        queued = await reply(gw, received.conversation_id, "Sorry for the wait")
        assert queued["status"] == "queued"

        clock.advance(seconds=1)  # 24:00:00 when the worker gets to it
        await gw.container.outbox.dispatch(queued["id"])
        messages = {
            m["id"]: m
            for m in (await gw.api("GET", f"/conversations/{received.conversation_id}/messages"))[1]["items"]
        }
        assert messages[queued["id"]]["status"] == "failed"
        assert messages[queued["id"]]["reason"] == "window_closed"
        assert loop.sent.empty()
    finally:
        await gw.close()


async def test_channels_without_a_window_allow_free_form_any_time(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        loop = await gw.loopback()  # loopback: no window, not metered, no consent by default
        received = await loop.customer_writes("+15550100500", "hello")
        clock.advance(days=30)
        assert (await reply(gw, received.conversation_id, "still here"))["status"] == "queued"
        assert (await send_to(gw, "+15550100501", "hello stranger"))["status"] == "queued"
    finally:
        await gw.close()
