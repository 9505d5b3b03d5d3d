"""Receiving: the handshake, the signature gate, every message type, duplicates and statuses — through a
running gateway, with the simulator (or a signed POST of a recorded payload) on the other side."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from inbox.model import MessageStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "whatsapp"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def fixture(name: str, wa_id: str | None = None, wamid: str | None = None) -> dict:
    payload = json.loads((FIXTURES / name).read_text())
    value = payload["entry"][0]["changes"][0]["value"]
    for m in value.get("messages", []):
        m["from"] = wa_id or m["from"]
        m["id"] = wamid or m["id"]
    for c in value.get("contacts", []):
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
