"""The live fan-outs under their edge cases: widget events reach only their own visitor's tabs, and a
stream client too slow to keep up is closed with 4000 and resumes from the log with nothing lost."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import gateway.fanout
from gateway.cli import run_loop
from tests.gateway.widget_tabs import Tab, add_webchat_channel
from tests.gateway.widget_tabs import open_tab as open_widget
from tests.harness import Gateway, start_gateway

TOKEN = "fanout-token-0123456789"
KEY_A = "visitorAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "visitorBBBBBBBBBBBBBBBBBBBBBB"


@pytest.fixture
async def gw(tmp_path: Path):
    gateway = await start_gateway(tmp_path)
    gateway.channel_id = await add_webchat_channel(gateway, TOKEN)  # type: ignore[attr-defined]
    yield gateway
    await gateway.close()


async def open_tab(gw: Gateway, key: str) -> Tab:
    return await open_widget(gw.http, gw.base_url, TOKEN, key)


async def test_events_of_one_visitor_never_reach_another_visitors_tab(gw: Gateway):
    a1, a2, b = await open_tab(gw, KEY_A), await open_tab(gw, KEY_A), await open_tab(gw, KEY_B)
    adapter = await gw.container.adapters.get(gw.channel_id)  # type: ignore[attr-defined]

    async def elsewhere(address: str, frame: Any) -> int:
        return 0  # as if every push went to another process: only the event log reaches the tabs

    adapter.push = elsewhere  # type: ignore[attr-defined]
    await a1.ws.send_json({"type": "message", "client_id": "m1", "text": "where is my order?"})
    ack = await a1.next("ack")
    shown = await a2.next("message")  # the other tab of the same visitor, through the log
    assert shown["id"] == ack["id"] and shown["text"] == "where is my order?"
    conversation_id = shown["conversation_id"]

    await gw.api("POST", f"/conversations/{conversation_id}/typing", json_body={"typing": True})
    status, read = await gw.api("POST", f"/conversations/{conversation_id}/read", json_body={})
    assert status == 200
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "On its way"}
    )
    assert status == 201
    for tab in (a1, a2):
        assert (await tab.next("typing"))["typing"] is True
        assert (await tab.next("read"))["up_to"] == read["up_to"]
        got = await tab.next("message")
        while got["id"] != reply["id"]:
            got = await tab.next("message")
        assert got["text"] == "On its way" and got["from"] == "agent"

    # Visitor B's tab was told nothing of it; a presence change is for everyone on the channel.
    assert await b.everything_until_pong() == []
    await gw.api("PATCH", "/users/me", json_body={"availability": "online"})
    for tab in (a1, a2, b):
        assert (await tab.next("presence"))["presence"] == "online"
    assert not [f for f in b.frames if f["type"] in ("message", "typing", "read")]


def narrow(gw: Gateway, client: socket.socket) -> None:
    """A small kernel send buffer on the server's end of this connection (loopback buffers grow to
    megabytes), so a client that does not read makes the server hold the unsent bytes itself."""
    here = client.getsockname()
    server_side = [
        h.transport.get_extra_info("socket")
        for h in gw.runner.server.connections  # type: ignore[union-attr]
        if h.transport is not None and h.transport.get_extra_info("peername") == here
    ]
    assert len(server_side) == 1
    server_side[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_a_slow_stream_client_is_closed_and_resumes_with_nothing_lost(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(gateway.fanout, "SLOW_CLIENT_BYTES", 64 * 1024)
    headers = {"Authorization": f"Bearer {gw.admin_token}"}
    sockets: list[socket.socket] = []

    def client_socket(addr: Any) -> socket.socket:
        sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sockets[-1].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return sockets[-1]

    connector = aiohttp.TCPConnector(socket_factory=client_socket)
    async with aiohttp.ClientSession(connector=connector) as slow_http:
        ws = await slow_http.ws_connect(f"{gw.base_url}/api/v1/stream", headers=headers, max_msg_size=0)
        ready = json.loads((await ws.receive(10)).data)
        assert ready["type"] == "stream.ready"
        narrow(gw, sockets[-1])

        # The client reads nothing while 24 notes of 60 kB each (1.4 MB of events) are posted.
        big = "x" * 60_000
        posted = []
        for n in range(24):
            status, note = await gw.api(
                "POST", "/conversations/1/messages", json_body={"text": f"{n} {big}", "private": True}
            )
            assert status == 201
            posted.append(note["id"])

        received: list[int] = []
        last_event = ready["after"]
        while True:
            msg = await ws.receive(10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(msg.data)
            last_event = event["id"]
            if event["type"] == "message.created":
                received.append(event["data"]["message"]["id"])
        # The close frame carries 4000 (the server may drop the socket before the handshake ends, so
        # ws.close_code can read 1006).
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4000
        assert len(received) < len(posted)  # it was cut off part way

        # Resuming from the last event it got brings the rest, each once and in order.
        again = await gw.stream(after=last_event)
        while len(received) < len(posted):
            event = await again.next(lambda e: e["type"] == "message.created")
            received.append(event["data"]["message"]["id"])
        assert received == posted


def test_live_frames_flow_on_uvloop_too(tmp_path: Path):
    """The fan-outs write to the socket's transport directly; uvloop's transports must take it."""

    async def scenario() -> int:
        gw = await start_gateway(tmp_path)
        try:
            await add_webchat_channel(gw, TOKEN)
            stream = await gw.stream()
            await stream.ready()
            tab = await open_tab(gw, KEY_A)
            await tab.ws.send_json({"type": "message", "client_id": "u1", "text": "on uvloop"})
            conversation_id = (await tab.next("message"))["conversation_id"]
            event = await stream.next(lambda e: e["type"] == "message.created")
            assert event["data"]["message"]["text"] == "on uvloop"
            await gw.api("POST", f"/conversations/{conversation_id}/typing", json_body={"typing": True})
            assert (await tab.next("typing"))["typing"] is True
            await gw.api("PATCH", "/users/me", json_body={"availability": "online"})
            assert (await tab.next("presence"))["presence"] == "online"
            await stream.next(lambda e: e["type"] == "user.presence")
            return 0
        finally:
            await gw.close()

    assert run_loop(scenario(), "uvloop") == 0
