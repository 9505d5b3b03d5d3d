"""The fan-out bench's measuring client: one process holding a share of the agents' websockets.

bench/fanout.py starts a few of these (``python -m bench.fanout_client``, about one per core) so that
reading 400,000 frames/s is not one Python process's job, and drives the gateway and the baseline
through the same client. Each frame costs as little as it can: sockets are plain asyncio protocols (no
aiohttp reader, queue, task or ``json.loads`` per frame); a received chunk is walked frame header by
frame header (RFC 6455 §5.2: text frames counted, pings answered, a close recorded) and the send stamps
of the complete frames are cut out of the bytes with ``bytes.find``; the clock is read once per chunk.

Talks to its parent over pipes. stdin: one JSON line ``{"urls": [...], "headers": {...}, "expected": N}``
(one URL per socket; ``expected`` stamped frames per socket), later ``stop`` when the parent gives up.
stdout: ``ready <sockets>`` once every socket got its ``stream.ready`` frame, then at the end
``done <json>`` and the latencies (seconds, native doubles, ``bytes`` of the length in the JSON).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import sys
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

# The stamp every measured frame carries: the note text (gateway) or the same text in the baseline's
# broadcast body, ``"text":"bench <time.time() at post> <n>"`` (JSON without spaces after separators).
STAMP = b'"text":"bench '
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


def masked(opcode: int, payload: bytes) -> bytes:
    """A client-to-server frame (always masked, RFC 6455 §5.3), payload < 126 bytes (pong, close)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


class Counter:
    """What every socket of this process adds to."""

    def __init__(self, sockets: int, expected: int) -> None:
        self.latencies = array("d")
        self.received = 0
        self.other_frames = 0  # text frames without a stamp (other event types)
        self.wanted = sockets * expected
        self.done = asyncio.Event()
        self.closed: dict[str, int] = {}  # close code (or "eof") -> sockets

    def close(self, why: str) -> None:
        self.closed[why] = self.closed.get(why, 0) + 1  # it still owes its frames: the parent times out


class Agent(asyncio.Protocol):
    """One websocket: the upgrade, then frames."""

    def __init__(self, counter: Counter, request: bytes, accept: bytes) -> None:
        self.counter = counter
        self.request = request
        self.accept = accept
        self.buf = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.live = False  # got stream.ready

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (duck-typed: uvloop's are not asyncio classes).
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.counter.close("eof")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before stream.ready"))
            self.ready.exception()  # raised by open_agent; marked retrieved for a socket nobody awaits

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.closed:
            return
        if not self.upgraded:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").lower()
            if (
                not head.startswith("http/1.1 101")
                or f"sec-websocket-accept: {self.accept.decode().lower()}" not in head
            ):
                self.ready.set_exception(ConnectionError(head.split("\r\n", 1)[0]))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            data = bytes(self.buf[end + 4 :])
            self.buf.clear()
        elif self.buf:  # the rest of a frame cut by the last read
            self.buf += data
            data = bytes(self.buf)
            self.buf.clear()
        # Walk the complete frames' headers (server frames are unmasked).
        pos, n, texts, close = 0, len(data), 0, None
        while n - pos >= 2:
            length = data[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if n - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            if data[pos] & 0x0F == OP_TEXT and self.live:
                texts += 1
            elif (close := self._control(data, pos, start, end)) is not None:
                break  # the frames before it still count
            pos = end
        if close is None and pos < n:
            self.buf += data[pos:]
        if texts:
            self._stamps(now, data, pos, texts)
        if close is not None:
            self._closed(close)

    def _stamps(self, now: float, data: bytes, pos: int, texts: int) -> None:
        """Each stamp in the ``texts`` complete text frames of ``data[:pos]``: one latency."""
        counter = self.counter
        append = counter.latencies.append
        stamped = 0
        i = data.find(STAMP, 0, pos)
        while i >= 0:
            i += len(STAMP)
            j = data.find(b" ", i)
            append(now - float(data[i:j]))
            stamped += 1
            i = data.find(STAMP, j, pos)
        counter.other_frames += texts - stamped
        counter.received += stamped
        if counter.received >= counter.wanted:
            counter.done.set()

    def _control(self, data: bytes, pos: int, start: int, end: int) -> str | None:
        """A frame other than text (or the first text frame, ``stream.ready``); a close: its code."""
        opcode = data[pos] & 0x0F
        assert self.transport is not None
        if opcode == OP_TEXT:  # not ready yet: this is the ready frame
            if json.loads(data[start:end]).get("type") == "stream.ready":
                self.live = True
                self.ready.set_result(None)
        elif opcode == OP_PING:
            self.transport.write(masked(0xA, data[start:end]))
        elif opcode == OP_CLOSE:
            return str(int.from_bytes(data[start : start + 2], "big")) if end - start >= 2 else "none"
        return None

    def _closed(self, code: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.counter.close(code)
        assert self.transport is not None
        with contextlib.suppress(Exception):
            self.transport.write(masked(OP_CLOSE, b"\x03\xe8"))
        self.transport.close()


async def open_agent(url: str, headers: dict[str, str], counter: Counter) -> Agent:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())  # the accept key of RFC 6455 §4.2.2
    lines = [
        f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, agent = await loop.create_connection(lambda: Agent(counter, request, accept), host, port)
    await asyncio.wait_for(agent.ready, 60)
    return agent


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config: dict[str, Any] = json.loads(await reader.readline())
    urls: list[str] = config["urls"]
    counter = Counter(len(urls), int(config["expected"]))
    gate = asyncio.Semaphore(16)  # opening: a few handshakes at a time (listen backlogs are short)

    async def one(url: str) -> Agent:
        async with gate:
            return await open_agent(url, config.get("headers", {}), counter)

    agents = await asyncio.gather(*(one(u) for u in urls))
    out = sys.stdout.buffer
    out.write(f"ready {len(agents)}\n".encode())
    out.flush()
    cpu_ready = _cpu()
    stop = asyncio.ensure_future(reader.readline())  # "stop" (or EOF): the parent gave up waiting
    done = asyncio.ensure_future(counter.done.wait())
    await asyncio.wait({stop, done}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    done.cancel()
    for agent in agents:
        agent._closed("client")
    summary = {
        "received": counter.received,
        "other_frames": counter.other_frames,
        "closed": {k: v for k, v in counter.closed.items() if k != "client"},
        "load_cpu_s": round(_cpu() - cpu_ready, 3),  # from all sockets ready to done
        "bytes": len(counter.latencies) * counter.latencies.itemsize,
    }
    out.write(f"done {json.dumps(summary)}\n".encode())
    out.write(counter.latencies.tobytes())
    out.flush()


if __name__ == "__main__":
    try:
        import uvloop  # the client's own loop: the cheaper per callback, the less it skews the figure
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
