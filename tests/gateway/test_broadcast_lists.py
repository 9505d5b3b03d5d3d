"""Broadcasts to audiences: stored, sent in the background one conversation each, with live progress,
personalization, cancel, the quota mid-way, and reply control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from inbox import tables as t
from inbox.attributes import set_attributes
from inbox.audiences import AudienceFilter, TagRule, TagSets
from inbox.broadcasts import BATCH, create
from tests.gateway.policy_support import LOOPBACK, configure_channel, seed_usage
from tests.gateway.test_audiences import seed_contacts
from tests.gateway.test_uploads import PNG
from tests.harness import Gateway, ManualClock, StreamClient, jobs_done, start_gateway


def affiliates(n: int, start: int = 0, **attributes: Any) -> list[dict[str, Any]]:
    return [
        {
            "phone": f"+1555200{k:04d}",
            "name": f"Affiliate {k}",
            "attributes": {"affiliation_code": f"AF{k}", **attributes},
            "tags": ["affiliate"],
        }
        for k in range(start, start + n)
    ]


AFFILIATES = {"conditions": [{"tags": {"any": ["affiliate"]}}]}


async def done(stream: StreamClient, broadcast_id: int) -> dict[str, Any]:
    event = await stream.next(
        lambda e: (
            e["type"] == "broadcast.updated"
            and e["data"]["broadcast"]["id"] == broadcast_id
            and e["data"]["broadcast"]["status"] in ("done", "canceled")
        )
    )
    return dict(event["data"]["broadcast"])


async def outgoing_per_contact(gw: Gateway) -> dict[int, int]:
    async with gw.container.db.read() as session:
        rows = await session.execute(
            select(t.Conversation.contact_id, func.count())
            .join(t.Message, t.Message.conversation_id == t.Conversation.id)
            .where(t.Message.kind == "outgoing")
            .group_by(t.Conversation.contact_id)
        )
        return {int(c): int(n) for c, n in rows}


async def test_an_audience_broadcast_reaches_each_contact_once_in_its_own_conversation(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        ids = await seed_contacts(gw, affiliates(2 * BATCH + 5))
        stream = await gw.stream()
        await stream.ready()
        status, body = await gw.api(
            "POST",
            "/broadcasts",
            json_body={
                "channel_id": LOOPBACK,
                "title": "Launch",
                "audience": {**AFFILIATES, "exclude_contact_ids": [ids[0]]},
                "text": "Hi {{name}}, your link: https://example.com/r/{{affiliation_code}}",
            },
        )
        assert status == 201, body
        assert body["status"] == "expanding" and body["items"] is None
        final = await done(stream, body["id"])
        assert final["total"] == len(ids) - 1 and final["accepted"] == len(ids) - 1 and final["pending"] == 0
        await jobs_done(gw)

        per_contact = await outgoing_per_contact(gw)
        assert {c: per_contact.get(c) for c in ids[1:]} == {c: 1 for c in ids[1:]}
        assert ids[0] not in per_contact
        loop = await gw.loopback()
        texts = {}
        while not loop.sent.empty():
            sent = loop.sent.get_nowait()[0]
            texts[sent.to] = sent.text
        assert texts["+15552000001"] == "Hi Affiliate 1, your link: https://example.com/r/AF1"
        assert len(texts) == len(ids) - 1

        status, view = await gw.api("GET", f"/broadcasts/{body['id']}")
        assert view["status"] == "done" and view["progress"]["sent"] == len(ids) - 1, view
        status, page = await gw.api("GET", f"/broadcasts/{body['id']}/recipients?limit=10")
        assert status == 200 and len(page["items"]) == 10 and page["next_after"] is not None
        assert {r["message_status"] for r in page["items"]} == {"sent"}
        conversations = {r["conversation_id"] for r in page["items"]}
        assert len(conversations) == 10  # one conversation each, never a group
        status, listing = await gw.api("GET", "/broadcasts")
        assert [b["title"] for b in listing["items"]] == ["Launch"]
    finally:
        await gw.close()


async def test_bad_broadcasts_are_refused_naming_the_field_and_the_contacts(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        ids = await seed_contacts(gw, affiliates(3))
        async with gw.container.db.write() as session:
            contact = await session.get(t.Contact, ids[1])
            assert contact is not None
            await set_attributes(session, contact, {"affiliation_code": None})
        body = {"channel_id": LOOPBACK, "audience": AFFILIATES, "text": "Your code: {{affiliation_code}}"}
        status, answer = await gw.api("POST", "/broadcasts", json_body=body)
        assert status == 422, answer
        assert answer["error"]["code"] == "missing_parameter"
        assert answer["error"]["details"][0]["contact_ids"] == [ids[1]]
        # With a fallback it goes.
        body["text"] = "Your code: {{affiliation_code|none yet}}"
        status, answer = await gw.api("POST", "/broadcasts", json_body=body)
        assert status == 201, answer

        empty = {"conditions": [{"tags": {"any": ["nobody-has-this"]}}]}
        status, answer = await gw.api(
            "POST", "/broadcasts", json_body={"channel_id": LOOPBACK, "audience": empty, "text": "hi"}
        )
        assert status == 422 and "empty" in answer["error"]["message"], answer
        status, answer = await gw.api(
            "POST",
            "/broadcasts",
            json_body={"channel_id": LOOPBACK, "audience": AFFILIATES, "recipients": ["+1555"], "text": "hi"},
        )
        assert status == 422 and "exactly one of" in answer["error"]["message"]
        _, agent = await gw.user("agent8@example.com", "agent", inbox_ids=[1])
        status, answer = await gw.api(
            "POST",
            "/broadcasts",
            json_body={"channel_id": LOOPBACK, "audience": AFFILIATES, "text": "hi"},
            token=agent,
        )
        assert status == 403, answer
    finally:
        await gw.close()


async def test_cancel_stops_what_is_not_yet_sent(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        await seed_contacts(gw, affiliates(3 * BATCH))
        # Stored but not started, so the test decides when each batch goes.
        async with gw.container.db.write() as session:
            channel = await session.get(t.Channel, LOOPBACK)
            assert channel is not None
            b = await create(
                session,
                channel=channel,
                title="Sale",
                text="Sale today",
                template=None,
                allow_replies=True,
                now=gw.clock(),
                author_id=None,
                audience=AudienceFilter(conditions=[TagRule(tags=TagSets(any=["affiliate"]))]),
            )
            broadcast_id = b.id
        runner = gw.container.broadcasts
        assert await runner.step(broadcast_id)  # lists the recipients
        assert await runner.step(broadcast_id)  # sends the first batch
        status, view = await gw.api("PATCH", f"/broadcasts/{broadcast_id}", json_body={"status": "canceled"})
        assert status == 200, view
        assert view["status"] == "canceled"
        assert (view["queued"], view["progress"]["canceled"]) == (BATCH, 2 * BATCH)
        assert not await runner.step(broadcast_id)
        await jobs_done(gw)
        assert sum((await outgoing_per_contact(gw)).values()) == BATCH
        status, again = await gw.api("PATCH", f"/broadcasts/{broadcast_id}", json_body={"status": "canceled"})
        assert status == 409, again
    finally:
        await gw.close()


async def test_the_quota_stops_new_conversations_mid_broadcast_and_says_so(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=True)
        await seed_contacts(gw, affiliates(8))
        await seed_usage(gw, 995)
        stream = await gw.stream()
        await stream.ready()
        status, body = await gw.api(
            "POST", "/broadcasts", json_body={"channel_id": LOOPBACK, "audience": AFFILIATES, "text": "Hello"}
        )
        assert status == 201, body
        await done(stream, body["id"])
        await jobs_done(gw)
        _, view = await gw.api("GET", f"/broadcasts/{body['id']}")
        assert (view["queued"], view["failed"]) == (5, 3)
        assert view["progress"]["failed_by_reason"] == {"quota_exhausted": 3}
        _, q = await gw.api("GET", "/quota")
        assert q["used"] == 1000 and q["blocked"]
    finally:
        await gw.close()


async def test_with_replies_disabled_an_answer_is_kept_and_gets_the_auto_answer(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(
            gw,
            consent=False,
            service_window=False,
            metered=False,
            replies_disabled_answer="This list is one-way.",
        )
        await seed_contacts(gw, affiliates(3))
        stream = await gw.stream()
        await stream.ready()
        status, body = await gw.api(
            "POST",
            "/broadcasts",
            json_body={
                "channel_id": LOOPBACK,
                "audience": AFFILIATES,
                "text": "News!",
                "allow_replies": False,
            },
        )
        assert status == 201, body
        await done(stream, body["id"])
        await jobs_done(gw)
        loop = await gw.loopback()
        while not loop.sent.empty():
            loop.sent.get_nowait()

        result = await loop.customer_writes("+15552000001", "Can I ask something?")
        sent, _ = await loop.next_sent()
        assert (sent.to, sent.text) == ("+15552000001", "This list is one-way.")
        _, conversation = await gw.api("GET", f"/conversations/{result.conversation_id}")
        assert conversation["replies_disabled"] is True
        _, page = await gw.api("GET", f"/conversations/{result.conversation_id}/messages")
        assert "Can I ask something?" in [m["text"] for m in page["items"]]  # stored and shown all the same
        _, view = await gw.api("GET", f"/broadcasts/{body['id']}")
        assert view["progress"]["replied"] == 1

        # Replies allowed again for the whole broadcast: no auto-answer any more.
        status, view = await gw.api("PATCH", f"/broadcasts/{body['id']}", json_body={"allow_replies": True})
        assert status == 200 and view["allow_replies"] is True
        await loop.customer_writes("+15552000002", "Thanks")
        await jobs_done(gw)
        assert loop.sent.empty()

        # One conversation by hand, from its info panel.
        status, patched = await gw.api(
            "PATCH", f"/conversations/{result.conversation_id}", json_body={"replies_disabled": True}
        )
        assert status == 200 and patched["replies_disabled"] is True, patched
        await loop.customer_writes("+15552000001", "Hello again")
        sent, _ = await loop.next_sent()
        assert sent.text == "This list is one-way."
    finally:
        await gw.close()


async def test_a_broadcast_can_carry_an_image_to_every_recipient(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        await seed_contacts(gw, affiliates(3))
        status, image = await gw.upload(PNG, "launch.png")
        assert status == 201, image
        stream = await gw.stream()
        await stream.ready()
        body = {
            "channel_id": LOOPBACK,
            "audience": AFFILIATES,
            "text": "New cover!",
            "attachments": [image["id"]],
        }
        status, created = await gw.api("POST", "/broadcasts", json_body=body)
        assert status == 201, created
        assert [a["filename"] for a in created["attachments"]] == ["launch.png"]
        await done(stream, created["id"])
        await jobs_done(gw)
        loop = await gw.loopback()
        sent = [loop.sent.get_nowait()[0] for _ in range(3)]
        assert {(m.text, tuple(a.content_type for a in m.attachments)) for m in sent} == {
            ("New cover!", ("image/png",))
        }
        status, answer = await gw.api(
            "POST", "/broadcasts", json_body={**body, "attachments": [image["id"] + 100]}
        )
        assert status == 422 and answer["error"]["details"][0]["field"] == "attachments[0]", answer
    finally:
        await gw.close()


async def test_where_the_business_opens_first_a_contact_cannot_start_a_conversation(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(
            gw,
            consent=False,
            service_window=False,
            metered=False,
            business_opens_first_answer="We write first.",
        )
        _, inboxes = await gw.api("GET", "/inboxes")
        (inbox,) = [i for i in inboxes["items"] if i["id"] == 1]
        settings = {**inbox["settings"], "business_opens_first": True}
        status, _ = await gw.api("PATCH", "/inboxes/1", json_body={"settings": settings})
        assert status == 200
        rule = {
            "name": "route me",
            "triggers": ["message_created"],
            "conditions": [{"type": "text", "op": "contains", "value": "route me"}],
            "actions": [{"type": "add_label", "label": "routed"}],
        }
        status, body = await gw.api("POST", "/rules", json_body=rule)
        assert status == 201, body
        loop = await gw.loopback()

        async def labels(conversation_id: int) -> list[str]:
            _, c = await gw.api("GET", f"/conversations/{conversation_id}")
            return list(c["labels"])

        # A stranger writes: stored, kept aside (not routed), answered once.
        first = await loop.customer_writes("+15552900001", "Hi, route me please")
        sent, _ = await loop.next_sent()
        assert (sent.to, sent.text) == ("+15552900001", "We write first.")
        await loop.customer_writes("+15552900001", "route me?")
        await jobs_done(gw)
        assert loop.sent.empty()  # one auto-answer, not one per message
        _, held = await gw.api("GET", f"/conversations/{first.conversation_id}")
        assert held["held"] is True and held["labels"] == [], held
        _, page = await gw.api("GET", f"/conversations/{first.conversation_id}/messages")
        assert {"Hi, route me please", "route me?"} <= {m["text"] for m in page["items"]}

        # Kept aside means admins see it and the inbox's agents do not, in the list, the counts and by id.
        _, agent = await gw.user("agent@example.com", inbox_ids=[1])
        _, listed = await gw.api("GET", "/conversations", token=agent)
        assert first.conversation_id not in [c["id"] for c in listed["items"]]
        _, listed = await gw.api("GET", "/conversations")
        assert first.conversation_id in [c["id"] for c in listed["items"]]
        _, theirs = await gw.api("GET", "/unread-counts", token=agent)
        _, ours = await gw.api("GET", "/unread-counts")
        assert theirs["all"] == ours["all"] - 1, (theirs, ours)
        status, _ = await gw.api("GET", f"/conversations/{first.conversation_id}", token=agent)
        assert status == 404

        # An agent's reply opens it: from then on the contact's messages are routed as usual.
        status, _ = await gw.api(
            "POST", f"/conversations/{first.conversation_id}/messages", json_body={"text": "Welcome!"}
        )
        assert status == 201
        await loop.next_sent()
        await loop.customer_writes("+15552900001", "Thanks, route me")
        await jobs_done(gw)
        _, opened = await gw.api("GET", f"/conversations/{first.conversation_id}")
        assert opened["held"] is False and opened["labels"] == ["routed"], opened
        _, listed = await gw.api("GET", "/conversations", token=agent)
        assert first.conversation_id in [c["id"] for c in listed["items"]]
        assert loop.sent.empty()

        # A broadcast recipient was written to first: their answer is routed at once.
        await seed_contacts(gw, affiliates(1))
        stream = await gw.stream()
        await stream.ready()
        _, b = await gw.api(
            "POST",
            "/broadcasts",
            json_body={"channel_id": LOOPBACK, "audience": AFFILIATES, "text": "Hello!"},
        )
        await done(stream, b["id"])
        await jobs_done(gw)
        await loop.next_sent()
        answer = await loop.customer_writes("+15552000000", "Interested, route me")
        await jobs_done(gw)
        assert await labels(answer.conversation_id) == ["routed"]
        assert loop.sent.empty()
    finally:
        await gw.close()
