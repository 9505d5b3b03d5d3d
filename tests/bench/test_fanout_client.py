"""The fan-out bench's measuring client reads what a real aiohttp server sends, however the bytes are
cut: every stamped frame counted once with its latency, pings answered, the server's close recorded."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from typing import Any

from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fanout_client import Agent, Counter, open_agent


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload


def stamped(n: int, sent_at: float) -> bytes:
    body = {"id": n, "type": "message.created", "data": {"message": {"text": f"bench {sent_at} {n}"}}}
    return json.dumps(body, separators=(",", ":")).encode() + b" " * (n * 37 % 400)


class Wire:
    """Where the agent's own frames go (pongs, its close)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=40))
def test_frames_cut_anywhere_are_each_counted_once(cuts: list[int]) -> None:
    async def scenario() -> tuple[Counter, Wire, bool]:
        counter = Counter(1, 6)
        agent = Agent(counter, b"", b"")
        wire = Wire()
        agent.transport = wire  # type: ignore[assignment]
        agent.upgraded = True
        sent_at = time.time() - 0.05
        data = (
            frame(b'{"type":"stream.ready","after":0}')
            + frame(b"hi", 9)
            + b"".join(frame(stamped(n, sent_at)) for n in range(3))
            + frame(b'{"id":99,"type":"user.presence"}')
            + b"".join(frame(stamped(n, sent_at)) for n in range(3, 6))
            + frame(b"\x0f\xa0", 8)
        )
        at, i = 0, 0
        while at < len(data):
            step = cuts[i % len(cuts)]
            agent.data_received(data[at : at + step])
            at, i = at + step, i + 1
        return counter, wire, agent.ready.done()

    counter, wire, ready = asyncio.run(scenario())
    assert ready
    assert counter.received == 6 and len(counter.latencies) == 6
    assert all(0.05 <= latency < 5 for latency in counter.latencies)
    assert counter.other_frames == 1
    assert counter.closed == {"4000": 1}
    assert wire.sent[0][0] == 0x8A and wire.closed  # the pong (masked), then its own close


async def test_it_reads_a_real_aiohttp_websocket_server() -> None:
    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.send_str('{"type": "stream.ready"}')
        for n in range(5):
            await sock.send_str(stamped(n, time.time()).decode())
        await sock.close(code=4000)
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        counter = Counter(1, 5)
        agent: Any = await open_agent(f"http://127.0.0.1:{port}/ws", {"X-Bench": "1"}, counter)
        await asyncio.wait_for(counter.done.wait(), 10)
        assert agent.live and counter.received == 5
        assert all(0 <= latency < 5 for latency in counter.latencies)
    finally:
        await runner.cleanup()
