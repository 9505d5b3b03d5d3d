"""Receiving: the handshake, the signature gate, every message type, duplicates and statuses — through a
running gateway, with the simulator (or a signed POST of a recorded payload) on the other side."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from channels.whatsapp.signature import sign
from inbox.model import MessageStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "whatsapp"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


DEMO_PHONE_NUMBER_ID = "100000000000001"  # gateway/demo.py's WhatsApp channel


def fixture(name: str, wa_id: str | None = None, wamid: str | None = None) -> dict:
    """A recorded payload addressed to the demo channel's number, with the sender and id replaced."""
    payload = json.loads((FIXTURES / name).read_text())
    for entry in payload["entry"]:
        for change in entry["changes"]:
            metadata = change["value"].get("metadata", {})
            if metadata.get("phone_number_id") == "106540352242922":  # the recordings' number
                metadata["phone_number_id"] = DEMO_PHONE_NUMBER_ID
    value = payload["entry"][0]["changes"][0]["value"]
    for m in value.get("messages", []):
        if "from" in m:  # not on a sender known only by a business-scoped id
            m["from"] = wa_id or m["from"]
        m["id"] = wamid or m["id"]
    for c in value.get("contacts", []):
        if "wa_id" in c:
            c["wa_id"] = wa_id or c["wa_id"]
    for s in value.get("statuses", []):
        s["id"] = wamid or s["id"]
    return payload


async def test_verify_handshake(world):
    url = world.webhook_url
    token = (await world.adapter()).config.verify_token
    params = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    async with world.gw.http.get(url, params=params) as resp:
        assert resp.status == 200 and await resp.text() == "1158201444"
    for wrong in ({**params, "hub.verify_token": token + "x"}, {**params, "hub.mode": "unsubscribe"}, {}):
        async with world.gw.http.get(url, params=wrong) as resp:
            assert resp.status == 401 and "1158201444" not in await resp.text()
    # And from WhatsApp's side, as Meta subscribes a callback URL:
    assert await world.sim.verify_webhook(world.business)


async def test_bad_or_missing_signature_is_401_and_nothing_is_stored(world):
    payload = fixture("text.json", wa_id="5511900000001", wamid="wamid.SIG1")
    assert await world.post_webhook(payload, secret="not-the-app-secret") == 401
    assert await world.post_webhook(payload, header="") == 401
    body = json.dumps(payload).encode()
    good_for_other_bytes = __import__("channels.whatsapp.signature").whatsapp.signature.sign(
        world.business.app_secret, body + b" "
    )
    assert await world.post_webhook(body, header=good_for_other_bytes) == 401
    # Not even parsed: a body that is not JSON with a bad signature is still 401, not 400.
    assert await world.post_webhook(b"{not json", header="sha256=00") == 401
    status, page = await world.gw.api("GET", "/conversations")
    assert all(c["channel_id"] != world.channel_id for c in page["items"])
    # The same payload, signed, is stored.
    assert await world.post_webhook(payload) == 200
    conversation_id, message = await world.conversation_of("wamid.SIG1")
    assert message["text"] == "Hi"


async def test_contact_writes_and_the_agent_sees_it_with_name_and_e164(world):
    stream = await world.gw.stream()
    await stream.ready()
    sent, _ = await world.contact_writes(
        "+5511987654321", content={"body": "Olá! Meu pedido?"}, name="Ana Souza"
    )
    event = await stream.next(lambda e: e["type"] == "message.created")
    assert event["data"]["message"]["text"] == "Olá! Meu pedido?"
    assert event["data"]["message"]["provider_message_id"] == sent.wamid
    status, conv = await world.gw.api("GET", f"/conversations/{event['conversation_id']}")
    status, contact = await world.gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["name"] == "Ana Souza"
    assert contact["identities"] == [{"kind": "whatsapp", "address": "+5511987654321"}]
    # The simulator shows ✔✔ on the contact's message once the gateway acknowledged it.
    assert world.sim.messages[sent.wamid].status == "delivered"


async def test_every_message_type_is_stored(world):
    number = "+447911123456"
    text, _ = await world.contact_writes(number, content={"body": "first"})
    conversation_id, _ = await world.conversation_of(text.wamid)
    await world.contact_writes(number, "location", {"latitude": 51.5, "longitude": -0.12, "name": "Office"})
    await world.contact_writes(number, "reaction", {"message_id": text.wamid, "emoji": "❤️"})
    await world.contact_writes(
        number, "interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    )
    await world.contact_writes(number, "button", {"payload": "STOP_PROMO", "text": "Stop promotions"})
    raw = {"from": "447911123456", "type": "poll_vote", "poll_vote": {"option": 2}}
    unknown, delivery = await world.sim.contact_sends_raw(world.business.phone_number_id, raw)
    await delivery.done.wait()
    stored = await world.messages(conversation_id)
    assert [(m["content_type"], m["text"]) for m in stored] == [
        ("text", "first"),
        ("location", "Office (51.5, -0.12)"),
        ("reaction", "❤️"),
        ("interactive", "Yes"),
        ("button", "Stop promotions"),
        ("unsupported", None),
    ]
    assert stored[-1]["provider_message_id"] == unknown.wamid


async def test_unsupported_keeps_the_raw_payload(world):
    payload = fixture("unsupported.json", wa_id="5511900000002", wamid="wamid.UNS-X")
    assert await world.post_webhook(payload) == 200
    conversation_id, message = await world.conversation_of("wamid.UNS-X")
    assert message["content_type"] == "unsupported"
    async with world.gw.container.db.read() as session:
        from inbox import tables as t

        row = await session.get(t.Message, message["id"])
        assert row.raw == payload["entry"][0]["changes"][0]["value"]["messages"][0]


async def test_image_media_is_fetched_from_the_graph_api_and_stored(world):
    media_id = world.sim.put_media(PNG, "image/png")
    sent, _ = await world.contact_writes(
        "+5511911112222", "image", {"id": media_id, "mime_type": "image/png", "caption": "the box"}
    )
    conversation_id, message = await world.conversation_of(sent.wamid)
    assert message["content_type"] == "image" and message["text"] == "the box"
    [attachment] = message["attachments"]
    assert attachment["content_type"] == "image/png" and attachment["size"] == len(PNG)
    assert await world.gw.container.media.get(attachment["media_key"]) == PNG


async def test_the_same_wamid_twice_is_stored_once(world):
    world.sim.duplicate_next = 1  # the simulator posts the identical signed body twice
    sent, delivery = await world.contact_writes("+5511933334444", content={"body": "once"})
    assert delivery.attempts == [200, 200]
    conversation_id, _ = await world.conversation_of(sent.wamid)
    assert [m["text"] for m in await world.messages(conversation_id)] == ["once"]
    # A signed replay of a recorded payload, twice: one message.
    payload = fixture("text.json", wa_id="5511933334444", wamid="wamid.REPLAY")
    assert await world.post_webhook(payload) == 200
    assert await world.post_webhook(payload) == 200
    assert [m["text"] for m in await world.messages(conversation_id)] == ["once", "Hi"]


async def test_statuses_twice_and_out_of_order_only_move_forward(world):
    sent, _ = await world.contact_writes("+5511955556666", content={"body": "hi"})
    conversation_id, _ = await world.conversation_of(sent.wamid)
    world.sim.contact("5511955556666").online = False  # the phone is off: only "sent" for now
    world.sim.duplicate_next = 1  # and that status arrives twice
    stream = await world.gw.stream()
    await stream.ready()
    status, reply = await world.gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "hello back"}
    )
    sent_event = await stream.next(
        lambda e: e["type"] == "message.updated" and e["data"]["message"]["status"] == "sent"
    )
    wamid = sent_event["data"]["message"]["provider_message_id"]
    await world.settle()
    # Now WhatsApp's statuses arrive out of order: read before delivered, then a late "sent", then
    # "failed" after read (twice), which must not undo a read message but is shown on it.
    for name in ("status_read.json", "status_read.json", "status_delivered.json", "status_sent.json"):
        assert await world.post_webhook(fixture(name, wamid=wamid)) == 200
    for _ in range(2):
        assert await world.post_webhook(fixture("status_failed_131047.json", wamid=wamid)) == 200
    messages = await world.messages(conversation_id)
    assert [m["status"] for m in messages] == ["received", "read"]
    assert messages[1]["error_detail"].startswith("131047 ")
    # Every event up to a later one is in ``received``: one "read" update, nothing for the rest.
    await world.contact_writes("+5511955556666", content={"body": "sentinel"})
    await stream.next(lambda e: e["type"] == "message.created")
    updates = [
        e
        for e in stream.received
        if e["type"] == "message.updated" and e["data"]["message"]["id"] == reply["id"]
    ]
    assert [e["data"]["message"]["status"] for e in updates] == ["sent", "read", "read"]
    assert updates[-1]["data"]["message"]["error_detail"].startswith("131047 ")


async def test_failed_status_carries_code_title_and_reason(world):
    sent, _ = await world.contact_writes("+5511977778888", content={"body": "hi"})
    conversation_id, _ = await world.conversation_of(sent.wamid)
    world.sim.contact("5511977778888").online = False
    stream = await world.gw.stream()
    await stream.ready()
    await world.gw.api("POST", f"/conversations/{conversation_id}/messages", json_body={"text": "x"})
    sent_event = await stream.next(lambda e: e["type"] == "message.updated")
    wamid = sent_event["data"]["message"]["provider_message_id"]
    assert await world.post_webhook(fixture("status_failed_131050.json", wamid=wamid)) == 200
    failed = await stream.next(
        lambda e: e["type"] == "message.updated" and e["data"]["message"]["status"] == MessageStatus.FAILED
    )
    assert failed["data"]["message"]["reason"] == "opted_out"
    assert failed["data"]["message"]["error_detail"].startswith("131050 Unable to deliver")


async def test_a_message_the_core_cannot_take_does_not_block_the_rest_of_the_batch(world):
    payload = fixture("batch.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from"] = "not-a-phone"  # cannot become a contact; a retry would not help
    assert await world.post_webhook(payload) == 200
    _, two = await world.conversation_of("wamid.B2")
    _, three = await world.conversation_of("wamid.B3")
    assert (two["text"], three["text"]) == ("two", "three")
    status, page = await world.gw.api("GET", "/conversations")
    whatsapp = [c for c in page["items"] if c["channel_id"] == world.channel_id]
    assert len(whatsapp) == 2


async def row_of(world, message_id: int):
    from inbox import tables as t

    async with world.gw.container.db.read() as session:
        return await session.get(t.Message, message_id)


async def test_an_edit_rewrites_the_original_and_a_revoke_deletes_it(world):
    original = fixture("text.json", wa_id="5511955550001", wamid="wamid.ORIG1")
    original["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "See you Monday"
    assert await world.post_webhook(original) == 200
    conversation_id, _ = await world.conversation_of("wamid.ORIG1")
    edit = fixture("edit.json", wa_id="5511955550001")
    assert await world.post_webhook(edit) == 200
    assert await world.post_webhook(edit) == 200  # redelivered: changes nothing more
    [message] = await world.messages(conversation_id)
    assert (message["provider_message_id"], message["text"]) == ("wamid.ORIG1", "I meant Tuesday")
    row = await row_of(world, message["id"])
    assert [h["text"] for h in row.raw["edit_history"]] == ["See you Monday"]
    assert await world.post_webhook(fixture("revoke.json", wa_id="5511955550001")) == 200
    [message] = await world.messages(conversation_id)
    assert (message["content_type"], message["text"]) == ("deleted", None)


async def test_a_withdrawn_reaction_removes_it_instead_of_adding_one(world):
    number = "+5511955550002"
    sent, _ = await world.contact_writes(number, content={"body": "hello"})
    conversation_id, _ = await world.conversation_of(sent.wamid)
    await world.contact_writes(number, "reaction", {"message_id": sent.wamid, "emoji": "❤️"})
    await world.contact_writes(number, "reaction", {"message_id": sent.wamid, "emoji": "👍"})
    assert [(m["content_type"], m["text"]) for m in await world.messages(conversation_id)] == [
        ("text", "hello"),
        ("reaction", "👍"),
    ]
    withdrawn = fixture("reaction_withdrawn.json", wa_id=number.lstrip("+"))
    withdrawn["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["message_id"] = sent.wamid
    assert await world.post_webhook(withdrawn) == 200
    assert [(m["content_type"], m["text"]) for m in await world.messages(conversation_id)] == [
        ("text", "hello"),
        ("deleted", None),
    ]


async def test_orders_flows_notices_and_contact_cards_are_readable(world):
    number = "5511955550003"
    for name, wamid in [
        ("order.json", "wamid.ORDER1"),
        ("flow_reply.json", "wamid.FLOW1"),
        ("call_permission_reply.json", "wamid.CALLP1"),
        ("system_identity_change.json", "wamid.SYS2"),
        ("contacts_card.json", "wamid.CARD1"),
    ]:
        assert await world.post_webhook(fixture(name, wa_id=number, wamid=wamid)) == 200
    conversation_id, _ = await world.conversation_of("wamid.ORDER1")
    stored = {m["content_type"]: m["text"] for m in await world.messages(conversation_id)}
    assert stored["order"].startswith("2 x SKU-TSHIRT-M at 49.9 BRL")
    assert stored["flow_reply"] == "preferred_date: 2026-12-10\nparty_size: 4"
    assert stored["call_permission"] == "Call permission: accept"
    assert stored["system"] == "Ann's security code changed"
    assert "Bruno Lima: +55 11 91234-5678" in stored["contacts"]


async def test_a_contact_known_only_by_business_scoped_id_is_stored(world):
    assert await world.post_webhook(fixture("bsuid_only.json")) == 200
    conversation_id, message = await world.conversation_of("wamid.BSUID1")
    assert message["text"] == "hi from a username"
    status, conv = await world.gw.api("GET", f"/conversations/{conversation_id}")
    status, contact = await world.gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["name"] == "Dee"
    assert contact["identities"] == [{"kind": "whatsapp", "address": "US.13491208655302741918"}]


async def test_a_webhook_for_another_number_is_not_stored_on_this_channel(world):
    assert await world.post_webhook(fixture("other_phone_number.json")) == 200
    status, page = await world.gw.api("GET", "/conversations")
    assert all(c["channel_id"] != world.channel_id for c in page["items"])


async def test_an_ad_referral_lands_on_the_contact(world):
    assert await world.post_webhook(fixture("referral.json", wa_id="5511955550004")) == 200
    conversation_id, message = await world.conversation_of("wamid.AD1")
    status, conv = await world.gw.api("GET", f"/conversations/{conversation_id}")
    status, contact = await world.gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["attributes"]["ad_headline"] == "Summer sale: 30% off"
    assert contact["attributes"]["ad_source_url"] == "https://fb.me/3cr4Wqqkv"


async def test_a_number_change_moves_the_contact_and_replies_to_the_new_number(world):
    sent, _ = await world.contact_writes("+16505551234", content={"body": "hi"})
    conversation_id, _ = await world.conversation_of(sent.wamid)
    assert await world.post_webhook(fixture("system_number_change.json")) == 200
    [_, notice] = await world.messages(conversation_id)
    assert (notice["content_type"], notice["text"]) == (
        "system",
        "Ann changed from 16505551234 to 16505559999",
    )
    status, conv = await world.gw.api("GET", f"/conversations/{conversation_id}")
    status, contact = await world.gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["identities"] == [{"kind": "whatsapp", "address": "+16505559999"}]
    # The new number writes: the same contact, the same conversation.
    later, _ = await world.contact_writes("+16505559999", content={"body": "new phone"})
    assert (await world.conversation_of(later.wamid))[0] == conversation_id
    # And the agent's reply goes to the new number.
    await world.gw.api("POST", f"/conversations/{conversation_id}/messages", json_body={"text": "noted"})
    thread = world.sim.thread
    await world.until(lambda: any(m.text == "noted" for m in thread(DEMO_PHONE_NUMBER_ID, "16505559999")))


async def test_a_signed_body_that_is_no_webhook_is_a_400_naming_the_problem(world):
    url, secret = world.webhook_url, world.business.app_secret
    for body, problem in [
        (b"{not json", "the body is not JSON"),
        (b"[1, 2]", "webhook body is not a JSON object"),
    ]:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
        async with world.gw.http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 400 and problem in await resp.text()
