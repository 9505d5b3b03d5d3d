"""Live fan-out: N agents on the stream while messages arrive; event latency from post to receipt.

The baseline is a bare aiohttp websocket broadcast server driven the same way in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.common import cpu_seconds, free_port, peak_rss_mb, summary_ms, wait_http
from bench.deployment import deploy

BASELINE_SERVER = r"""
import sys
from aiohttp import web
clients = set()
async def ws(request):
    s = web.WebSocketResponse(); await s.prepare(request); clients.add(s)
    await s.send_str('{"type": "stream.ready"}')
    try:
        async for _ in s: pass
    finally:
        clients.discard(s)
    return s
async def publish(request):
    body = await request.text()
    for c in list(clients):
        await c.send_str(body)
    return web.Response(text="ok")
async def ok(request): return web.Response(text="ok")
app = web.Application(); app.router.add_get("/ws", ws); app.router.add_post("/publish", publish)
app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


async def _drive(
    connect: Any, post: Any, agents: int, rate: float, duration: float, cpu: Callable[[], float]
) -> tuple[list[float], int, int, float]:
    """Open ``agents`` sockets, post ``rate`` messages/s for ``duration`` s, collect latencies; also
    the server's CPU seconds (``cpu()``) spent during the load."""
    latencies: list[float] = []
    expected = int(rate * duration)
    done = asyncio.Event()
    received = 0

    async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
        nonlocal received
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            sent_at = _sent_at(data)
            if sent_at is None:
                continue
            latencies.append(time.time() - sent_at)
            received += 1
            if received >= expected * agents:
                done.set()

    sockets = [await _ready(await connect(i)) for i in range(agents)]
    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    cpu_before = cpu()
    start = time.monotonic()
    posts: set[asyncio.Future[Any]] = set()
    for i in range(expected):
        target = start + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load generator, not waiting for a result
        posts.add(asyncio.ensure_future(post(i)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=duration + 30)
    await asyncio.gather(*posts, return_exceptions=True)
    load_cpu = cpu() - cpu_before
    for ws in sockets:
        await ws.close()
    for r in readers:
        r.cancel()
    return latencies, received, expected * agents, load_cpu


async def _ready(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.ClientWebSocketResponse:
    """Both servers say ``stream.ready`` once the socket is subscribed."""
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data).get("type") == "stream.ready":
            return ws
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError("socket closed before it was ready")


def _sent_at(data: dict[str, Any]) -> float | None:
    if "sent_at" in data:
        return float(data["sent_at"])
    text = ((data.get("data") or {}).get("message") or {}).get("text") or ""
    if data.get("type") == "message.created" and text.startswith("bench "):
        return float(text.split()[1])
    return None


async def run(
    agents: int = 2000,
    rate: float = 200,
    duration: float = 10,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
) -> dict[str, Any]:
    """Baseline, then the gateway(s) of ``mode`` (scale-out: agents and posts round robin over both
    gateways, so half the events cross between them over Redis)."""
    results: dict[str, Any] = {"agents": agents, "rate_per_s": rate, "duration_s": duration, "mode": mode}
    limits = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=limits) as http:
        # Baseline: bare broadcast.
        port = free_port()
        base = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)])
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz", base)
            lat, got, want, load_cpu = await _drive(
                lambda i: http.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0),
                lambda i: http.post(
                    f"http://127.0.0.1:{port}/publish", data=json.dumps({"sent_at": time.time()})
                ),
                agents,
                rate,
                duration,
                lambda: cpu_seconds(base.pid),
            )
            results["baseline"] = {
                **summary_ms(lat),
                "delivered": got,
                "expected": want,
                "load_cpu_s": round(load_cpu, 2),
                "cpu_s": round(cpu_seconds(base.pid), 2),
                "peak_rss_mb": peak_rss_mb(base.pid),
            }
        finally:
            base.terminate()
            base.wait(10)

        gw = await deploy(mode, env)
        try:
            auth = {"Authorization": f"Bearer {gw.token}"}

            async def post(i: int) -> None:
                async with http.post(
                    f"{gw.url(i)}/api/v1/conversations/1/messages",
                    headers=auth,
                    json={"text": f"bench {time.time()} {i}", "private": True},
                ) as resp:
                    await resp.read()

            profiler = gw.profile("fanout", duration + 2)
            lat, got, want, load_cpu = await _drive(
                lambda i: http.ws_connect(f"{gw.url(i)}/api/v1/stream", headers=auth, max_msg_size=0),
                post,
                agents,
                rate,
                duration,
                lambda: gw.cpu_now()["gateways_workers"],
            )
            results["gateway"] = {
                **summary_ms(lat),
                "delivered": got,
                "expected": want,
                "load_cpu_s": round(load_cpu, 2),  # gateways (and workers) during the load
                **gw.usage(),
            }
            if profiler is not None:
                profiler.wait(60)
        finally:
            gw.stop()
    results["ratio_p99"] = round(results["gateway"]["p99_ms"] / max(results["baseline"]["p99_ms"], 0.01), 2)
    results["target"] = "p99 event latency <= 50 ms"
    return results
