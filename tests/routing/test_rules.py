"""Routing rules end to end through a running gateway: a matching message lands with the right team and
label, rules are validated data over the API, every firing is audited, and rules never loop."""

from __future__ import annotations

from tests.routing.support import channel_of_kind, conversation, create, texts


async def test_whatsapp_message_matching_a_rule_lands_in_the_team_with_the_label(gateway):
    gw = gateway
    agent_id, _ = await gw.user("billing@demo.test", inbox_ids=[1])
    billing = await create(gw, "/teams", {"name": "Billing", "member_ids": [agent_id]})
    rule = await create(
        gw,
        "/rules",
        {
            "name": "Refunds to billing",
            "conditions": [
                {"type": "channel_kind", "kinds": ["whatsapp"]},
                {"type": "text", "op": "contains", "value": "Reembolso"},
            ],
            "actions": [
                {"type": "assign_team", "team_id": billing["id"]},
                {"type": "add_label", "label": "refund"},
                {"type": "set_priority", "priority": "high"},
            ],
        },
    )
    whatsapp = await channel_of_kind(gw, "whatsapp")
    hit = await whatsapp.customer_writes("+5511987654321", "Olá, quero meu REEMBÓLSO já!")

    conv = await conversation(gw, hit.conversation_id)
    assert conv["team_id"] == billing["id"]
    assert conv["labels"] == ["refund"]
    assert conv["priority"] == "high"
    assert ("activity/system", "Rule “Refunds to billing” moved it to team Billing") in await texts(
        gw, hit.conversation_id
    )

    # The same words on another kind of channel do not match: the inbox's own team, no label.
    loop = await gw.loopback()
    miss = await loop.customer_writes("+15550101010", "quero meu reembolso")
    other = await conversation(gw, miss.conversation_id)
    assert other["team_id"] == 1 and other["labels"] == [] and other["priority"] == "none"

    status, firings = await gw.api("GET", f"/rule-firings?rule_id={rule['id']}")
    assert status == 200
    assert [(f["conversation_id"], f["rule_name"], f["trigger"]) for f in firings["items"]] == [
        (hit.conversation_id, "Refunds to billing", "message_created")
    ]
    assert [a["type"] for a in firings["items"][0]["actions"]] == ["assign_team", "add_label", "set_priority"]
    assert all(a["result"] == "done" for a in firings["items"][0]["actions"])


async def test_rules_are_validated_ordered_and_switchable_over_the_api(gateway):
    gw = gateway
    status, err = await gw.api(
        "POST",
        "/rules",
        json_body={"name": "x", "actions": [{"type": "assign_team", "team_id": 999}]},
    )
    assert status == 422 and err["error"]["details"][0]["field"] == "actions.0.team_id"

    status, err = await gw.api(
        "POST",
        "/rules",
        json_body={
            "name": "x",
            "conditions": [{"type": "text", "op": "regex", "value": "(unclosed"}],
            "actions": [{"type": "resolve"}],
        },
    )
    assert status == 422
    assert err["error"]["details"][0]["field"] == "conditions.0.text.value"
    assert "regular expression" in err["error"]["message"]

    status, err = await gw.api(
        "POST", "/rules", json_body={"name": "x", "conditions": [{"type": "moon_phase"}], "actions": []}
    )
    assert status == 422
    fields = {d["field"] for d in err["error"]["details"]}
    assert "conditions.0" in fields and "actions" in fields

    _, agent_token = await gw.user("plain-agent@demo.test", inbox_ids=[1])
    status, err = await gw.api("GET", "/rules", token=agent_token)
    assert status == 403

    first = await create(
        gw,
        "/rules",
        {
            "name": "urgent",
            "conditions": [{"type": "text", "op": "starts_with", "value": "urgent"}],
            "actions": [{"type": "set_priority", "priority": "urgent"}],
            "stop": True,
        },
    )
    second = await create(
        gw,
        "/rules",
        {
            "name": "any text",
            "conditions": [{"type": "text", "op": "regex", "value": r"\w+"}],
            "actions": [{"type": "set_priority", "priority": "low"}],
        },
    )
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550102001", "URGENT: server down")
    assert (await conversation(gw, got.conversation_id))["priority"] == "urgent"  # first rule stops the rest

    status, err = await gw.api("POST", "/rules/reorder", json_body={"ids": [second["id"]]})
    assert status == 422 and err["error"]["details"][0]["field"] == "ids"
    status, order = await gw.api("POST", "/rules/reorder", json_body={"ids": [second["id"], first["id"]]})
    assert status == 200 and [r["name"] for r in order["items"]] == ["any text", "urgent"]
    status, listed = await gw.api("GET", "/rules")
    assert [r["position"] for r in listed["items"]] == [1, 2]

    got = await loop.customer_writes("+15550102002", "urgent: again")
    assert (await conversation(gw, got.conversation_id))["priority"] == "urgent"  # low, then urgent

    status, patched = await gw.api("PATCH", f"/rules/{first['id']}", json_body={"enabled": False})
    assert status == 200 and patched["enabled"] is False
    got = await loop.customer_writes("+15550102003", "urgent: third")
    assert (await conversation(gw, got.conversation_id))["priority"] == "low"

    status, err = await gw.api(
        "PATCH", f"/rules/{first['id']}", json_body={"actions": [{"type": "snooze", "minutes": 0}]}
    )
    assert status == 422 and err["error"]["details"][0]["field"] == "actions.0.snooze.minutes"

    status, _ = await gw.api("DELETE", f"/rules/{second['id']}")
    assert status == 204
    status, firings = await gw.api("GET", f"/rule-firings?rule_id={second['id']}")
    assert len(firings["items"]) == 2  # the audit outlives the rule


async def test_a_rule_loop_is_impossible(gateway):
    gw = gateway
    escalations = await create(gw, "/inboxes", {"name": "Escalations", "member_ids": [1]})
    first = await create(
        gw,
        "/rules",
        {
            "name": "refunds go to escalations",
            "conditions": [{"type": "text", "op": "contains", "value": "refund"}],
            "actions": [
                {"type": "move_to_inbox", "inbox_id": escalations["id"]},
                {"type": "auto_reply", "text": "We got your refund request."},
            ],
        },
    )
    # Would undo the first rule's move, and the first would undo this one — if actions re-ran rules.
    await create(
        gw,
        "/rules",
        {
            "name": "escalations go back to support",
            "conditions": [{"type": "inbox", "inbox_ids": [escalations["id"]]}],
            "actions": [{"type": "move_to_inbox", "inbox_id": 1}, {"type": "add_label", "label": "bounced"}],
        },
    )
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550103001", "I want a refund")
    conv = await conversation(gw, got.conversation_id)
    assert conv["inbox_id"] == escalations["id"] and conv["labels"] == []
    status, firings = await gw.api("GET", f"/rule-firings?conversation_id={got.conversation_id}")
    assert [f["rule_id"] for f in firings["items"]] == [first["id"]]

    # The contact is an auto-responder that answers every message with "refund" in it. Our auto-reply
    # goes out once; its echoes never make us answer again.
    sent = 0
    for _ in range(5):
        await gw.container.jobs.join()
        if loop.sent.empty():
            break
        outbound, _ = await loop.next_sent()
        sent += 1
        assert outbound.text == "We got your refund request."
        await loop.customer_writes("+15550103001", "Auto-reply: your refund mail was received")
    assert sent == 1
    status, firings = await gw.api("GET", f"/rule-firings?conversation_id={got.conversation_id}")
    # Each message fires each matching rule once (the echo arrived in Escalations, so both matched),
    # and the second auto-reply was skipped.
    per_message: dict[int, list[int]] = {}
    for f in firings["items"]:
        per_message.setdefault(f["message_id"], []).append(f["rule_id"])
    assert list(per_message.values()) == [[first["id"]], [first["id"], first["id"] + 1]]
    replies = [a for f in firings["items"] for a in f["actions"] if a["type"] == "auto_reply"]
    assert [a["result"] for a in replies] == ["done", "skipped"]
