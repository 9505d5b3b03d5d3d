"""Tickets over the API: opened from a conversation, moved through the pipeline, filtered, refused."""

from __future__ import annotations

import time
from pathlib import Path

from inbox.webhooks import verify_signature
from tests.gateway.webhook_receiver import webhook_receiver
from tests.harness import Gateway, start_gateway


async def _demo_conversation(gw: Gateway) -> dict:
    status, page = await gw.api("GET", "/conversations")
    assert status == 200
    return page["items"][0]  # the demo's "order #1234 has not arrived"


async def test_a_ticket_from_a_conversation_moves_through_the_stages(
    tmp_path: Path, database_url: str | None
):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        conversation = await _demo_conversation(gw)
        stream = await gw.stream()
        await stream.ready()
        status, ticket = await gw.api(
            "POST",
            "/tickets",
            json_body={
                "title": "Order #1234 lost",
                "conversation_ids": [conversation["id"]],
                "priority": "high",
            },
        )
        assert status == 201, ticket
        # The inbox and the contact come from the conversation; a new ticket starts in the first stage.
        assert ticket["inbox_id"] == conversation["inbox_id"]
        assert ticket["contact_id"] == conversation["contact_id"]
        assert ticket["stage"] == "new" and ticket["closed_at"] is None
        assert ticket["conversation_ids"] == [conversation["id"]]
        created = await stream.next(lambda e: e["type"] == "ticket.created")
        assert created["data"]["ticket"]["id"] == ticket["id"]

        # The conversation's sidebar asks for its tickets.
        status, linked = await gw.api("GET", f"/tickets?conversation_id={conversation['id']}")
        assert [x["id"] for x in linked["items"]] == [ticket["id"]]

        for stage in ("waiting_on_contact", "waiting_on_us", "closed"):
            status, moved = await gw.api("PATCH", f"/tickets/{ticket['id']}", json_body={"stage": stage})
            assert status == 200, moved
            assert moved["stage"] == stage
        assert moved["closed_at"] is not None
        status, moved = await gw.api("PATCH", f"/tickets/{ticket['id']}", json_body={"owner_id": 2})
        assert moved["owner_id"] == 2
        updated = await stream.next(
            lambda e: e["type"] == "ticket.updated" and e["data"]["ticket"]["owner_id"] == 2
        )
        assert updated["data"]["changes"] == [{"field": "owner_id", "old": None, "new": 2}]

        status, hist = await gw.api("GET", f"/tickets/{ticket['id']}/history")
        assert status == 200
        assert [(c["field"], c["old"], c["new"]) for c in hist["items"]] == [
            ("created", None, "new"),
            ("stage", "new", "waiting_on_contact"),
            ("stage", "waiting_on_contact", "waiting_on_us"),
            ("stage", "waiting_on_us", "closed"),
            ("owner_id", None, 2),
        ]
        assert all(c["actor_id"] == 1 for c in hist["items"])

        # A change to the same value is no change: no history line.
        await gw.api("PATCH", f"/tickets/{ticket['id']}", json_body={"stage": "closed"})
        status, hist = await gw.api("GET", f"/tickets/{ticket['id']}/history")
        assert len(hist["items"]) == 5
    finally:
        await gw.close()


async def test_filters(gateway: Gateway):
    conversation = await _demo_conversation(gateway)
    made = []
    fields: list[tuple[str, dict[str, object]]] = [
        ("Refund", {"stage": "waiting_on_us", "owner_id": 2}),
        ("Broken box", {"priority": "urgent"}),
        ("Refund again", {}),
    ]
    for title, body in fields:
        status, ticket = await gateway.api(
            "POST", "/tickets", json_body={"title": title, "inbox_id": conversation["inbox_id"], **body}
        )
        assert status == 201, ticket
        made.append(ticket["id"])

    async def titles(query: str) -> list[str]:
        status, page = await gateway.api("GET", f"/tickets?{query}")
        assert status == 200, page
        return [x["title"] for x in page["items"]]

    assert await titles("") == ["Refund", "Broken box", "Refund again"]
    assert await titles("stage=new") == ["Broken box", "Refund again"]
    assert await titles("owner_id=2") == ["Refund"]
    assert await titles("owner_id=none") == ["Broken box", "Refund again"]
    assert await titles("priority=urgent") == ["Broken box"]
    assert await titles("q=refund") == ["Refund", "Refund again"]
    assert await titles("limit=2") == ["Refund", "Broken box"]
    status, page = await gateway.api("GET", "/tickets?limit=2")
    status, rest = await gateway.api("GET", f"/tickets?limit=2&cursor={page['next_cursor']}")
    assert [x["title"] for x in rest["items"]] == ["Refund again"] and rest["next_cursor"] is None


async def test_bad_input_names_the_problem_and_changes_nothing(gateway: Gateway):
    conversation = await _demo_conversation(gateway)
    outsider, _ = await gateway.user("outsider@example.org")  # in the account, in no inbox
    base = {"title": "Parcel", "conversation_ids": [conversation["id"]]}
    cases = [
        ({**base, "stage": "limbo"}, "stage"),
        ({**base, "owner_id": 999}, "owner_id"),
        ({**base, "owner_id": outsider}, "owner_id"),
        ({**base, "contact_id": 999}, "contact_id"),
        ({**base, "conversation_ids": [999]}, "conversation_ids.0"),
        ({"title": "No inbox"}, "inbox_id"),
        ({**base, "title": "   "}, "title"),
    ]
    for body, field in cases:
        status, error = await gateway.api("POST", "/tickets", json_body=body)
        assert status == 422, (body, error)
        assert error["error"]["details"][0]["field"] == field, error
    status, page = await gateway.api("GET", "/tickets")
    assert page["items"] == []

    status, ticket = await gateway.api("POST", "/tickets", json_body=base)
    for body, field in [
        ({"stage": "limbo"}, "stage"),
        ({"owner_id": outsider}, "owner_id"),
        ({"title": None}, "title"),
    ]:
        status, error = await gateway.api("PATCH", f"/tickets/{ticket['id']}", json_body=body)
        assert status == 422 and error["error"]["details"][0]["field"] == field, error
    status, hist = await gateway.api("GET", f"/tickets/{ticket['id']}/history")
    assert [c["field"] for c in hist["items"]] == ["created"]


async def test_only_members_of_the_inbox_see_its_tickets(gateway: Gateway):
    conversation = await _demo_conversation(gateway)
    status, ticket = await gateway.api(
        "POST", "/tickets", json_body={"title": "Parcel", "conversation_ids": [conversation["id"]]}
    )
    _, outsider_token = await gateway.user("outsider@example.org")
    _, member_token = await gateway.user("member@example.org", inbox_ids=[conversation["inbox_id"]])
    status, page = await gateway.api("GET", "/tickets", token=outsider_token)
    assert status == 200 and page["items"] == []
    for method, path, body in [
        ("GET", f"/tickets/{ticket['id']}", None),
        ("PATCH", f"/tickets/{ticket['id']}", {"stage": "closed"}),
        ("GET", f"/tickets/{ticket['id']}/history", None),
    ]:
        status, _ = await gateway.api(method, path, token=outsider_token, json_body=body)
        assert status == 404
    status, error = await gateway.api(
        "POST",
        "/tickets",
        token=outsider_token,
        json_body={"title": "x", "conversation_ids": [conversation["id"]]},
    )
    assert status == 422
    status, page = await gateway.api("GET", "/tickets", token=member_token)
    assert [x["id"] for x in page["items"]] == [ticket["id"]]


async def test_the_pipeline_is_configurable_per_account(gateway: Gateway):
    status, pipeline = await gateway.api("GET", "/ticket-pipeline")
    assert [s["name"] for s in pipeline["stages"]] == ["New", "Waiting on contact", "Waiting on us", "Closed"]
    stages = [
        {"key": "triage", "name": "Triage"},
        {"key": "new", "name": "New"},
        {"key": "done", "name": "Done", "closed": True},
    ]
    status, pipeline = await gateway.api("PUT", "/ticket-pipeline", json_body={"stages": stages})
    assert status == 200, pipeline
    status, ticket = await gateway.api("POST", "/tickets", json_body={"title": "x", "inbox_id": 1})
    assert ticket["stage"] == "triage"
    status, ticket = await gateway.api("PATCH", f"/tickets/{ticket['id']}", json_body={"stage": "done"})
    assert ticket["closed_at"] is not None
    # A stage with tickets in it cannot go; nor can keys repeat; agents cannot change it.
    status, error = await gateway.api("PUT", "/ticket-pipeline", json_body={"stages": stages[:2]})
    assert status == 422 and "done" in error["error"]["message"]
    status, error = await gateway.api("PUT", "/ticket-pipeline", json_body={"stages": [stages[0], stages[0]]})
    assert status == 422
    status, error = await gateway.api(
        "PUT", "/ticket-pipeline", json_body={"stages": [{"key": "Bad Key", "name": "x"}]}
    )
    assert status == 422 and error["error"]["details"][0]["field"] == "stages.0.key"
    _, agent_token = await gateway.user("a2@example.org", inbox_ids=[1])
    status, _ = await gateway.api("PUT", "/ticket-pipeline", token=agent_token, json_body={"stages": stages})
    assert status == 403
    status, pipeline = await gateway.api("GET", "/ticket-pipeline", token=agent_token)
    assert [s["key"] for s in pipeline["stages"]] == ["triage", "new", "done"]


async def test_ticket_events_reach_an_outgoing_webhook_signed_and_in_order(tmp_path: Path):
    async with webhook_receiver() as receiver:
        gw = await start_gateway(tmp_path, settings={"webhooks_allow_private": True})
        try:
            status, sub = await gw.api(
                "POST",
                "/webhook-subscriptions",
                json_body={"url": receiver.url, "events": ["ticket.created", "ticket.updated"]},
            )
            assert status == 201, sub
            conversation = await _demo_conversation(gw)
            status, ticket = await gw.api(
                "POST", "/tickets", json_body={"title": "Refund", "conversation_ids": [conversation["id"]]}
            )
            assert status == 201, ticket
            status, _ = await gw.api("PATCH", f"/tickets/{ticket['id']}", json_body={"stage": "closed"})
            assert status == 200
            first, second = await receiver.wait_for(2)
            assert [r.headers["X-Switchboard-Event"] for r in (first, second)] == [
                "ticket.created",
                "ticket.updated",
            ]
            for request in (first, second):
                assert verify_signature(
                    sub["secret"], request.headers["X-Switchboard-Signature"], request.body, now=time.time()
                )
            assert first.payload["data"]["ticket"]["conversation_ids"] == [conversation["id"]]
            assert second.payload["data"]["ticket"]["stage"] == "closed"
            assert {"field": "stage", "old": "new", "new": "closed"} in second.payload["data"]["changes"]
        finally:
            await gw.close()
