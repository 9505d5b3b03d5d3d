"""The stream hub's coalesced writes: events held for one flush reach each socket in one write, as
separate frames in log order, only those the socket may see; a socket that falls behind through such a
write is still closed with 4000 and resumes from the log with nothing lost."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import gateway.fanout
import gateway.stream
from gateway.stream import STREAM_HUB, StreamHub
from inbox.events import LiveEvent
from tests.gateway.test_live_fanout import narrow
from tests.harness import Gateway, StreamClient, start_gateway


@pytest.fixture
async def gw(tmp_path: Path) -> Any:
    gateway_ = await start_gateway(tmp_path)
    yield gateway_
    await gateway_.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every chunk the stream hub writes to a socket (the real write happens too)."""
    seen: list[bytes] = []
    real = gateway.fanout.write_frame  # what gateway.stream calls

    def counted(ws: Any, transport: Any, data: bytes) -> bool:
        seen.append(data)
        return real(ws, transport, data)

    monkeypatch.setattr(gateway.stream, "write_frame", counted)
    yield seen


def held(gw: Gateway) -> StreamHub:
    """The hub, flushed now and holding every later event until the test calls ``flush()``."""
    hub = gw.runner.app[STREAM_HUB]
    hub.flush_interval = 3600
    hub.flush()
    return hub


async def note(gw: Gateway, text: str) -> int:
    status, body = await gw.api(
        "POST", "/conversations/1/messages", json_body={"text": text, "private": True}
    )
    assert status == 201, body
    return int(body["id"])


async def test_notes_held_for_one_flush_arrive_from_one_write_as_separate_frames_in_order(
    gw: Gateway, writes: list[bytes]
):
    stream = await gw.stream()
    await stream.ready()
    first = await note(gw, "alone")  # after a quiet spell: written at once
    event = await stream.next(lambda e: e["type"] == "message.created")
    assert event["data"]["message"]["id"] == first
    assert len(writes) == 1

    hub = held(gw)
    posted = [await note(gw, f"held {n}") for n in range(3)]
    assert len(writes) == 1  # committed, not written yet
    hub.flush()
    assert len(writes) == 2
    assert writes[1].count(b'"type":"message.created"') == 3

    events = [await stream.next(lambda e: e["type"] == "message.created") for _ in posted]
    assert [e["data"]["message"]["id"] for e in events] == posted
    assert [e["id"] for e in events] == list(range(event["id"] + 1, event["id"] + 4))


def synthetic(event_id: int, inbox_id: int | None) -> LiveEvent:
    body: dict[str, Any] = {
        "id": event_id,
        "type": "conversation.updated",
        "inbox_id": inbox_id,
        "conversation_id": None,
        "data": {"n": event_id},
        "created_at": "2026-11-26T00:00:00+00:00",
    }
    return LiveEvent(event_id, 1, inbox_id, "conversation.updated", json.dumps(body), body)


async def until_pong(stream: StreamClient) -> list[dict[str, Any]]:
    """Every frame up to the answer to a ping (the hub flushes before it answers)."""
    await stream.ws.send_str("ping")
    frames = []
    while (frame := json.loads((await stream.ws.receive(10)).data))["type"] != "pong":
        frames.append(frame)
    return frames


async def test_each_socket_of_a_flush_gets_only_the_events_it_may_see(
    gw: Gateway, writes: list[bytes], monkeypatch: pytest.MonkeyPatch
):
    status, sales = await gw.api("POST", "/inboxes", json_body={"name": "Sales"})
    assert status == 201, sales
    _, agent_token = await gw.user("agent@example.com", "agent", [1])
    admin, agent = await gw.stream(), await gw.stream(token=agent_token)
    await admin.ready()
    start = await agent.ready()
    monkeypatch.setattr(gateway.stream, "MEMBERS_TTL", 3600.0)
    hub = held(gw)
    for inbox_id in (1, sales["id"]):
        await hub.members(inbox_id)  # known: the events below are routed at once, in one flush
    inboxes = [sales["id"], 1, None, sales["id"], 1]
    for n, inbox_id in enumerate(inboxes, start=start + 1):
        hub(synthetic(n, inbox_id))
    hub.flush()

    assert [f["id"] for f in await until_pong(admin)] == list(range(start + 1, start + 6))
    assert [f["id"] for f in await until_pong(agent)] == [start + 2, start + 3, start + 5]
    assert len(writes) == 2  # one chunk for each socket


async def test_a_socket_that_a_flush_puts_behind_is_closed_and_resumes_with_nothing_lost(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(gateway.fanout, "SLOW_CLIENT_BYTES", 64 * 1024)
    sockets: list[socket.socket] = []

    def client_socket(addr: Any) -> socket.socket:
        sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sockets[-1].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return sockets[-1]

    headers = {"Authorization": f"Bearer {gw.admin_token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=client_socket)) as slow:
        ws = await slow.ws_connect(f"{gw.base_url}/api/v1/stream", headers=headers, max_msg_size=0)
        ready = json.loads((await ws.receive(10)).data)
        assert ready["type"] == "stream.ready"
        narrow(gw, sockets[-1])
        hub = held(gw)
        big = "x" * 60_000
        posted = [await note(gw, f"{n} {big}") for n in range(24)]
        hub.flush()  # 1.4 MB for this socket in one write: over the limit

        received: list[int] = []
        last_event = ready["after"]
        while True:
            msg = await ws.receive(10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(msg.data)
            last_event = event["id"]
            received.append(event["data"]["message"]["id"])
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4000

        again = await gw.stream(after=last_event)
        while len(received) < len(posted):
            event = await again.next(lambda e: e["type"] == "message.created")
            received.append(event["data"]["message"]["id"])
        assert received == posted
