"""Automations: triggered by tags, events, keywords and silence; durable waits; sends through the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from inbox import tables as t
from inbox.contacts import attach_identity
from inbox.model import ChannelKind
from tests.gateway.event_support import event, post, tags_of
from tests.gateway.policy_support import LOOPBACK, configure_channel, seed_usage
from tests.harness import Gateway, ManualClock, jobs_done, start_gateway

BIG_SPENDER = {
    "name": "Big spenders",
    "event_type": "purchase_approved",
    "condition": {"rules": [{"field": "data.value", "op": "gte", "value": 150}]},
    "action": "add_tag",
    "tag": "big_spender",
}
THANK_BIG_SPENDERS = {
    "name": "Thank big spenders",
    "trigger": {"type": "tag_added", "tag": "big_spender"},
    "steps": [
        {"type": "wait", "hours": 1},
        {
            "type": "send",
            "channel_id": LOOPBACK,
            "template": {"name": "thanks", "language": "en_US", "params": ["{{name|friend}}"]},
        },
    ],
}


async def _template(gw: Gateway) -> None:
    status, row = await gw.api(
        "POST",
        f"/channels/{LOOPBACK}/templates",
        json_body={
            "name": "thanks",
            "language": "en_US",
            "category": "marketing",
            "body": "Thank you, {{1}}! Here is 10% off your next course.",
            "status": "approved",
        },
    )
    assert status == 201, row


async def _buys(gw: Gateway, token: str, phone: str, name: str, value: int) -> int:
    """A new contact buys; their phone is also their address on the loopback channel (WhatsApp's stand-in)."""
    status, body = await post(
        gw, event("purchase_approved", {"phone": phone, "name": name}, value=value, currency="BRL"), token
    )
    assert status == 201, body
    contact_id = int(body["event"]["contact_id"])
    async with gw.container.db.write() as session:
        contact = await session.get(t.Contact, contact_id)
        assert contact is not None
        await attach_identity(session, contact, ChannelKind.LOOPBACK.value, phone)
    return contact_id


async def _runs(gw: Gateway, automation_id: int, query: str = "") -> list[dict[str, Any]]:
    status, page = await gw.api("GET", f"/automations/{automation_id}/runs{query}")
    assert status == 200, page
    return list(page["items"])


async def _run_of(gw: Gateway, automation_id: int, contact_id: int) -> dict[str, Any]:
    (run,) = await _runs(gw, automation_id, f"?contact_id={contact_id}")
    return run


async def test_a_segmentation_tag_starts_an_automation_that_waits_then_sends_a_template_through_the_gate(
    tmp_path: Path, clock: ManualClock, database_url: str | None
):
    gw = await start_gateway(tmp_path, clock=clock, database_url=database_url)
    try:
        await configure_channel(gw, service_window=True, metered=True, consent=False)
        await _template(gw)
        _, token = await gw.user("hotmart@example.com", role="integration")
        runner = gw.container.automations
        status, seg = await gw.api("POST", "/segmentations", json_body=BIG_SPENDER)
        assert status == 201, seg
        status, automation = await gw.api("POST", "/automations", json_body=THANK_BIG_SPENDERS)
        assert status == 201, automation
        aid = automation["id"]

        # Purchase, cart abandonment and refund for new contacts: automatic tags, the AUTO mark.
        status, cart = await post(gw, event("cart_abandoned", {"email": "rui@example.com"}, value=97), token)
        rui = cart["event"]["contact_id"]
        assert await tags_of(gw, rui) == {"product:c-42:cart_abandoned": "auto"}
        status, refund = await post(
            gw, event("purchase_refunded", {"email": "lia@example.com"}, value=97), token
        )
        assert await tags_of(gw, refund["event"]["contact_id"]) == {"product:c-42:refunded": "auto"}
        dora = await _buys(gw, token, "+5511990000001", "Dora", 197)
        eva = await _buys(gw, token, "+5511990000002", "Eva", 50)
        status, shown = await gw.api("GET", f"/contacts/{dora}")
        assert shown["auto_captured"] is True
        assert await tags_of(gw, dora) == {"product:c-42:buyer": "auto", "big_spender": "manual"}
        assert await tags_of(gw, eva) == {"product:c-42:buyer": "auto"}  # below the segmentation's 150

        # Dora's tag started a run, which waits an hour; Eva has none.
        await runner.settle()
        run = await _run_of(gw, aid, dora)
        assert run["status"] == "active" and run["position"] == 1
        assert [(s["type"], s["outcome"]) for s in run["steps"]] == [("wait", "waiting")]
        assert await _runs(gw, aid, f"?contact_id={eva}") == []
        loop = await gw.loopback()
        assert loop.sent.empty()

        clock.advance(minutes=59)
        await runner.settle()
        assert (await _run_of(gw, aid, dora))["status"] == "active"

        clock.advance(minutes=1)
        await runner.settle()
        run = await _run_of(gw, aid, dora)
        assert run["status"] == "done" and run["errors"] == 0
        sent_step = run["steps"][-1]
        assert (sent_step["type"], sent_step["outcome"]) == ("send", "done")
        message, _ = await loop.next_sent()
        assert message.to == "+5511990000001"
        assert message.template is not None and message.template.params == ("Dora",)
        status, messages = await gw.api("GET", f"/conversations/{run['conversation_id']}/messages")
        sent = next(m for m in messages["items"] if m["id"] == sent_step["message_id"])
        assert (
            sent["origin"] == "automation"
            and sent["text"] == "Thank you, Dora! Here is 10% off your next course."
        )

        # The month's conversations are used up: the next run's send is refused by the quota, and it shows.
        await seed_usage(gw, 1000)
        fabio = await _buys(gw, token, "+5511990000003", "Fabio", 300)
        clock.advance(hours=1)
        await runner.settle()
        run = await _run_of(gw, aid, fabio)
        assert run["status"] == "done" and run["errors"] == 1
        refused = run["steps"][-1]
        assert (refused["outcome"], refused["reason"]) == ("refused", "quota_exhausted")
        assert [r["contact_id"] for r in await _runs(gw, aid, "?errors=true")] == [fabio]
        status, automation = await gw.api("GET", f"/automations/{aid}")
        assert automation["errors"] == 1 and automation["errors_by_reason"] == {"quota_exhausted": 1}
        assert automation["runs"] == 2 and automation["runs_by_status"] == {"done": 2}
        async with gw.container.db.read() as session:
            logged = list(
                await session.scalars(
                    select(t.Event.payload).where(t.Event.type == "automation.step_refused")
                )
            )
        assert [(e["contact_id"], e["reason"]) for e in logged] == [(fabio, "quota_exhausted")]

        # A contact past the plan's contact limit is stored and shown, and nothing is sent to them.
        await seed_usage(gw, 0)
        async with gw.container.db.read() as session:
            existing = len(list(await session.scalars(t.Contact.__table__.select())))
        status, _ = await gw.api("PATCH", "/account", json_body={"contact_limit": existing})
        gil = await _buys(gw, token, "+5511990000004", "Gil", 500)
        status, shown = await gw.api("GET", f"/contacts/{gil}")
        assert status == 200 and shown["over_limit"] is True and shown["name"] == "Gil"
        clock.advance(hours=1)
        await runner.settle()
        refused = (await _run_of(gw, aid, gil))["steps"][-1]
        assert (refused["outcome"], refused["reason"]) == ("refused", "contact_limit")
        status, automation = await gw.api("GET", f"/automations/{aid}")
        assert automation["errors_by_reason"] == {"quota_exhausted": 1, "contact_limit": 1}
        await jobs_done(gw)
        assert loop.sent.empty()  # only Dora's thanks went out
    finally:
        await gw.close()


async def test_a_wait_survives_a_restart(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        status, automation = await gw.api(
            "POST",
            "/automations",
            json_body={
                "name": "Follow up",
                "trigger": {"type": "event", "event_type": "cart_abandoned"},
                "steps": [
                    {"type": "wait", "days": 1},
                    {
                        "type": "condition",
                        "condition": {"rules": [{"field": "data.value", "op": "gte", "value": 50}]},
                    },
                    {"type": "add_tag", "tag": "follow_up"},
                ],
            },
        )
        assert status == 201, automation
        status, cart = await post(gw, event("cart_abandoned", {"email": "ivo@example.com"}, value=97))
        ivo = cart["event"]["contact_id"]
        await gw.container.automations.settle()
        assert (await _run_of(gw, automation["id"], ivo))["status"] == "active"
    finally:
        await gw.close()

    clock.advance(days=1)
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await gw.container.automations.settle()
        run = await _run_of(gw, automation["id"], ivo)
        assert run["status"] == "done"
        assert [s["outcome"] for s in run["steps"]] == ["waiting", "done", "done"]
        assert (await tags_of(gw, ivo))["follow_up"] == "manual"
    finally:
        await gw.close()


async def test_a_keyword_starts_a_run_and_silence_after_our_message_starts_another(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, service_window=False, metered=False, consent=False)
        status, promo = await gw.api(
            "POST",
            "/automations",
            json_body={
                "name": "Promo",
                "trigger": {"type": "keyword", "keyword": "Promoção"},
                "steps": [
                    {"type": "send", "channel_id": LOOPBACK, "text": "Here is your code, {{name|friend}}"}
                ],
            },
        )
        assert status == 201, promo
        status, nudge = await gw.api(
            "POST",
            "/automations",
            json_body={
                "name": "Nudge",
                "trigger": {"type": "no_reply", "hours": 4},
                "steps": [{"type": "add_tag", "tag": "went_quiet"}, {"type": "assign", "user_id": 2}],
            },
        )
        assert status == 201, nudge
        loop = await gw.loopback()
        runner = gw.container.automations

        received = await loop.customer_writes("+15550104000", "  promocao ", name="Rita")
        await runner.settle()
        message, _ = await loop.next_sent()
        assert message.text == "Here is your code, Rita"
        (run,) = await _runs(gw, promo["id"])
        assert run["conversation_id"] == received.conversation_id and run["status"] == "done"

        # The automation's own message does not arm the no-reply timer; an agent's reply does.
        assert await _runs(gw, nudge["id"]) == []
        status, _ = await gw.api(
            "POST",
            f"/conversations/{received.conversation_id}/messages",
            json_body={"text": "Anything else?"},
        )
        (armed,) = await _runs(gw, nudge["id"])
        assert armed["status"] == "armed"
        clock.advance(hours=3)
        await loop.customer_writes("+15550104000", "No, thanks")  # she answered: the timer is off
        assert await _runs(gw, nudge["id"]) == []

        await gw.api(
            "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "Bye then!"}
        )
        clock.advance(hours=4)
        await runner.settle()
        (run,) = await _runs(gw, nudge["id"])
        assert run["status"] == "done" and [s["outcome"] for s in run["steps"]] == ["done", "done"]
        contact_id = run["contact_id"]
        assert "went_quiet" in await tags_of(gw, contact_id)
        status, conversation = await gw.api("GET", f"/conversations/{received.conversation_id}")
        assert conversation["assignee_id"] == 2  # the demo's agent
    finally:
        await gw.close()


async def test_bad_automations_are_refused_naming_the_problem(gateway: Gateway):
    send: dict[str, Any] = {"type": "send", "channel_id": LOOPBACK, "text": "Hi"}
    tag_trigger = {"type": "tag_added", "tag": "vip"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"trigger": {**tag_trigger, "colour": "red"}, "steps": [send]}, "trigger.tag_added.colour"),
        ({"trigger": {"type": "on_birthday"}, "steps": [send]}, "trigger"),
        ({"trigger": tag_trigger, "steps": [{**send, "cc": "boss"}]}, "steps.0.send.cc"),
        ({"trigger": tag_trigger, "steps": [{"type": "teleport"}]}, "steps.0"),
        ({"trigger": tag_trigger, "steps": [{"type": "wait"}]}, "steps.0.wait"),
        ({"trigger": tag_trigger, "steps": [{**send, "channel_id": 999}]}, "steps[0].channel_id"),
        (
            {
                "trigger": tag_trigger,
                "steps": [{**send, "text": None, "template": {"name": "nope", "language": "en"}}],
            },
            "steps[0].template",
        ),
        (
            {
                "trigger": tag_trigger,
                "steps": [
                    {
                        "type": "condition",
                        "condition": {"rules": [{"field": "data.value", "op": "gt", "value": 1}]},
                    }
                ],
            },
            "steps[0].condition.rules[0]",
        ),
        ({"trigger": {"type": "event", "event_type": "teleported"}, "steps": [send]}, "trigger.event_type"),
        ({"trigger": tag_trigger, "steps": [{"type": "add_tag", "tag": "product:x:buyer"}]}, "steps[0].tag"),
        ({"trigger": tag_trigger, "steps": [send, {"type": "add_tag", "tag": " VIP "}]}, "steps[1]"),
    ]
    for body, field in cases:
        status, err = await gateway.api("POST", "/automations", json_body={"name": "x", **body})
        assert status == 422, (body, err)
        assert err["error"]["details"][0]["field"] == field, err
    status, err = await gateway.api(
        "POST",
        "/automations",
        json_body={"name": "x", "trigger": tag_trigger, "steps": [{"type": "add_tag", "tag": "vip"}]},
    )
    assert "cycle" in err["error"]["message"]

    # Through another automation: vip → adds gold; gold → would add vip.
    status, first = await gateway.api(
        "POST",
        "/automations",
        json_body={"name": "Gold", "trigger": tag_trigger, "steps": [{"type": "add_tag", "tag": "gold"}]},
    )
    assert status == 201, first
    status, err = await gateway.api(
        "POST",
        "/automations",
        json_body={
            "name": "Back",
            "trigger": {"type": "tag_added", "tag": "gold"},
            "steps": [{"type": "add_tag", "tag": "vip"}],
        },
    )
    assert status == 422 and "through automation 'Gold'" in err["error"]["message"], err
    # Inactive, it cannot loop; activating it is checked again.
    status, back = await gateway.api(
        "POST",
        "/automations",
        json_body={
            "name": "Back",
            "active": False,
            "trigger": {"type": "tag_added", "tag": "gold"},
            "steps": [{"type": "add_tag", "tag": "vip"}],
        },
    )
    assert status == 201, back
    status, err = await gateway.api("PATCH", f"/automations/{back['id']}", json_body={"active": True})
    assert status == 422 and err["error"]["details"][0]["field"] == "steps[0]", err
    status, err = await gateway.api(
        "PATCH", f"/automations/{back['id']}", json_body={"steps": [{"type": "x"}]}
    )
    assert status == 422, err

    _, agent = await gateway.user("agent9@example.com", role="agent")
    status, _ = await gateway.api("GET", "/automations", token=agent)
    assert status == 403
    status, _ = await gateway.api("DELETE", f"/automations/{back['id']}")
    assert status == 204
    status, listed = await gateway.api("GET", "/automations")
    assert [a["name"] for a in listed["items"]] == ["Gold"]
