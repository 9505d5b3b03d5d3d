"""The core's promises, end to end through a running gateway: in over a channel, out through the gate,
live on the stream, resumable — on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from inbox.model import MessageStatus, PermanentChannelError, Reason, TransientChannelError
from tests.harness import start_gateway


async def test_inbound_message_is_seen_over_the_api_and_on_the_stream(
    tmp_path: Path, database_url: str | None
):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        stream = await gw.stream()
        await stream.ready()
        loop = await gw.loopback()
        result = await loop.customer_writes("+49 151 2345 6789", "Where is my parcel?", name="Jonas")

        event = await stream.next(lambda e: e["type"] == "message.created")
        assert event["data"]["message"]["text"] == "Where is my parcel?"
        assert event["conversation_id"] == result.conversation_id

        status, page = await gw.api("GET", "/conversations?status=open")
        assert status == 200
        conv = next(c for c in page["items"] if c["id"] == result.conversation_id)
        status, messages = await gw.api("GET", f"/conversations/{conv['id']}/messages")
        assert [m["text"] for m in messages["items"]] == ["Where is my parcel?"]
        status, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
        assert contact["name"] == "Jonas"
        assert contact["identities"] == [{"kind": "loopback", "address": "+49 151 2345 6789"}]
    finally:
        await gw.close()


async def test_reply_goes_queued_sent_delivered(tmp_path: Path, database_url: str | None):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        loop = await gw.loopback()
        received = await loop.customer_writes("+15550001111", "hello?")
        stream = await gw.stream()
        await stream.ready()

        status, message = await gw.api(
            "POST",
            f"/conversations/{received.conversation_id}/messages",
            json_body={"text": "Hi, how can I help?"},
        )
        assert status == 201 and message["status"] == "queued"
        outbound, provider_id = await loop.next_sent()
        assert outbound.to == "+15550001111" and outbound.text == "Hi, how can I help?"
        sent = await stream.next(lambda e: e["type"] == "message.updated")
        assert sent["data"]["message"]["status"] == "sent"

        assert await loop.report(provider_id, MessageStatus.DELIVERED)
        delivered = await stream.next(lambda e: e["type"] == "message.updated")
        assert delivered["data"]["message"]["status"] == "delivered"
        assert delivered["data"]["message"]["provider_message_id"] == provider_id

        # Out of order and repeated statuses never move it back.
        assert not await loop.report(provider_id, MessageStatus.SENT)
        assert not await loop.report(provider_id, MessageStatus.DELIVERED)
        status, messages = await gw.api("GET", f"/conversations/{received.conversation_id}/messages")
        assert [m["status"] for m in messages["items"]] == ["received", "delivered"]
    finally:
        await gw.close()


async def test_reconnect_with_after_gets_exactly_the_missed_events(tmp_path: Path, database_url: str | None):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        loop = await gw.loopback()
        stream = await gw.stream()
        await stream.ready()
        await loop.customer_writes("+15550002222", "first")
        seen = await stream.next(lambda e: e["type"] == "message.created")
        await stream.close()

        await loop.customer_writes("+15550002222", "second")  # while disconnected
        await loop.customer_writes("+15550003333", "third")

        again = await gw.stream(after=seen["id"])
        await again.ready()
        missed = again.received
        assert [e["data"]["message"]["text"] for e in missed if e["type"] == "message.created"] == [
            "second",
            "third",
        ]
        ids = [e["id"] for e in missed]
        assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > seen["id"]

        # ...and then continues live with no repeat.
        await loop.customer_writes("+15550003333", "fourth")
        live = await again.next(lambda e: e["type"] == "message.created")
        assert live["data"]["message"]["text"] == "fourth" and live["id"] > ids[-1]
    finally:
        await gw.close()


async def test_duplicate_delivery_changes_nothing(tmp_path: Path, database_url: str | None):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        loop = await gw.loopback()
        first = await loop.customer_writes("+15550004444", "once", provider_id="wamid.same")
        again = await loop.customer_writes("+15550004444", "once", provider_id="wamid.same")
        assert again.duplicate and again.message_id == first.message_id
        status, messages = await gw.api("GET", f"/conversations/{first.conversation_id}/messages")
        assert len(messages["items"]) == 1
    finally:
        await gw.close()


async def test_transient_errors_retry_and_permanent_errors_fail_with_reason(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    gw.container.outbox._backoff = lambda attempt, hint: 0.01  # no real waiting between tries
    try:
        loop = await gw.loopback()
        received = await loop.customer_writes("+15550005555", "hi")
        loop.failures = [TransientChannelError("503 from provider"), TransientChannelError("timeout")]
        stream = await gw.stream()
        await stream.ready()
        status, msg = await gw.api(
            "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "try hard"}
        )
        outbound, _ = await loop.next_sent()
        assert outbound.text == "try hard"
        sent = await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["status"] == "sent"
        )
        assert sent["data"]["message"]["id"] == msg["id"]

        loop.failures = [PermanentChannelError(Reason.INVALID_RECIPIENT, "number does not exist")]
        status, msg = await gw.api(
            "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "doomed"}
        )
        failed = await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == msg["id"]
        )
        assert failed["data"]["message"]["status"] == "failed"
        assert failed["data"]["message"]["reason"] == "invalid_recipient"
        assert failed["data"]["message"]["text"] == "doomed"  # the text is never lost
    finally:
        await gw.close()


async def test_messages_left_queued_by_a_crash_are_sent_at_start_up(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    loop = await gw.loopback()
    received = await loop.customer_writes("+15550006666", "hi")
    # The job queue "crashes": workers are gone before the message is dispatched.
    await gw.container.jobs.stop()
    status, msg = await gw.api(
        "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "survive the crash"}
    )
    assert status == 201 and msg["status"] == "queued"
    gw.container.jobs._handlers.clear()  # nothing may run it in this process any more
    await gw.close()

    gw2 = await start_gateway(tmp_path)  # same data dir: the same SQLite file
    try:
        loop2 = await gw2.loopback()
        outbound, _ = await loop2.next_sent()
        assert outbound.message_id == msg["id"] and outbound.text == "survive the crash"
    finally:
        await gw2.close()


async def test_private_note_is_stored_not_sent(gateway):
    loop = await gateway.loopback()
    received = await loop.customer_writes("+15550007777", "hi")
    status, note = await gateway.api(
        "POST",
        f"/conversations/{received.conversation_id}/messages",
        json_body={"text": "VIP customer", "private": True},
    )
    assert status == 201 and note["kind"] == "note" and note["status"] == "received"
    assert loop.sent.empty()


async def test_resolved_conversation_reopens_within_the_window_else_a_new_one(tmp_path: Path, clock):
    gw = await start_gateway(tmp_path, clock=clock, settings={"reopen_days": 2})
    try:
        loop = await gw.loopback()
        first = await loop.customer_writes("+15550008888", "hi")
        status, _ = await gw.api(
            "PATCH", f"/conversations/{first.conversation_id}", json_body={"status": "resolved"}
        )
        assert status == 200
        clock.advance(days=1)
        again = await loop.customer_writes("+15550008888", "one more thing")
        assert again.conversation_id == first.conversation_id
        status, conv = await gw.api("GET", f"/conversations/{first.conversation_id}")
        assert conv["status"] == "open"

        await gw.api("PATCH", f"/conversations/{first.conversation_id}", json_body={"status": "resolved"})
        clock.advance(days=3)
        later = await loop.customer_writes("+15550008888", "new question")
        assert later.conversation_id != first.conversation_id
    finally:
        await gw.close()
