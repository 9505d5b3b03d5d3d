"""Provider statuses: only forward, failed is final, and a repeated status is a no-op (no event)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inbox.model import MessageStatus as S
from inbox.outbox import can_advance
from tests.gateway.policy_support import configure_channel, send_to
from tests.harness import jobs_done, start_gateway


@pytest.mark.parametrize(
    ("known", "incoming", "expected"),
    [
        (S.SENT, S.SENT, False),
        (S.SENT, S.DELIVERED, True),
        (S.SENT, S.READ, True),
        (S.SENT, S.FAILED, True),
        (S.DELIVERED, S.SENT, False),
        (S.DELIVERED, S.READ, True),
        (S.READ, S.DELIVERED, False),
        (S.FAILED, S.DELIVERED, False),
        (S.FAILED, S.FAILED, False),
        (S.QUEUED, S.SENT, True),
        (S.SENT, S.RECEIVED, False),  # not a delivery status
    ],
)
def test_can_advance(known: S, incoming: S, expected: bool):
    assert can_advance(known, incoming) is expected


async def test_repeated_and_backward_statuses_change_nothing_and_emit_nothing(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        loop = await gw.loopback()
        message = await send_to(gw, "+15550800001", "Your order shipped")
        _, provider_id = await loop.next_sent()
        await jobs_done(gw)
        stream = await gw.stream()
        await stream.ready()

        assert await loop.report(provider_id, S.SENT) is False  # what WhatsApp reports right after the send
        assert await loop.report(provider_id, S.DELIVERED) is True
        assert await loop.report(provider_id, S.DELIVERED) is False
        assert await loop.report(provider_id, S.SENT) is False
        # Delivered cannot fail any more, but the provider's failure is kept on the message, once.
        assert await loop.report(provider_id, S.FAILED) is True
        assert await loop.report(provider_id, S.FAILED) is False
        assert await loop.report(provider_id, S.READ) is True

        updates = [
            (await stream.next(lambda e: e["type"] == "message.updated"))["data"]["message"] for _ in range(3)
        ]
        assert [(m["status"], m["error_detail"]) for m in updates] == [
            ("delivered", None),
            ("delivered", "failed"),
            ("read", "failed"),
        ]
        _, page = await gw.api("GET", f"/conversations/{message['conversation_id']}/messages")
        (outgoing,) = [m for m in page["items"] if m["kind"] == "outgoing"]
        assert (outgoing["status"], outgoing["reason"]) == ("read", None)
        # Nothing else was emitted for the no-ops: a note posted now is the next event.
        await gw.api(
            "POST",
            f"/conversations/{message['conversation_id']}/messages",
            json_body={"text": "checked", "private": True},
        )
        nxt = await stream.next()
        assert nxt["type"] == "message.created" and nxt["data"]["message"]["text"] == "checked"
    finally:
        await gw.close()


async def test_a_status_for_a_message_another_process_moved_is_read_from_the_row(tmp_path: Path):
    """A process that never saw the message (empty memory) decides from the database."""
    gw = await start_gateway(tmp_path)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=False)
        loop = await gw.loopback()
        await send_to(gw, "+15550800002", "Hello")
        _, provider_id = await loop.next_sent()
        await jobs_done(gw)
        assert await loop.report(provider_id, S.DELIVERED) is True
        gw.container.outbox._known.clear()  # as in a process that did not send it
        assert await loop.report(provider_id, S.SENT) is False
        assert await loop.report(provider_id, S.READ) is True
    finally:
        await gw.close()
