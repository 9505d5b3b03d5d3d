"""Widget sockets: many idle visitor websockets on one gateway process; its memory is the figure.

Each socket is a distinct anonymous visitor that waits for the widget's ``ready`` frame (history read,
subscribed), then stays idle. The channel's per-IP connection limit is raised for the run: every socket
comes from 127.0.0.1.

Each client keeps reading its socket, as a browser does: that answers the gateway's heartbeat pings. A
client that stops reading is closed by the gateway after one heartbeat (25 s + 12.5 s for the pong),
which would free sockets before the measurement (the first versions of this bench measured that way,
with up to a quarter of the 10,000 already gone). ``server_sockets`` counts the sockets the gateway
holds when its RSS is read, less those it held before (give or take the bench's own keep-alive API
connection), and ``hold_s`` later (past a heartbeat) both are read again.

The baseline is a bare aiohttp websocket server with the same socket settings (heartbeat, no
compression, the same ``hello`` and ``ready`` frames) holding the same number of idle sockets in the
same run: what aiohttp itself costs per socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.common import api, free_port, peak_rss_mb, raise_nofile, rss_mb, stop_process, wait_http
from bench.deployment import deploy

BASELINE_SERVER = r"""
import sys
from aiohttp import web
async def ws(request):
    s = web.WebSocketResponse(heartbeat=25, max_msg_size=256 * 1024, compress=False)
    await s.prepare(request)
    await s.send_str('{"type": "hello"}')
    await s.send_str('{"type": "ready", "last_id": 0}')
    async for _ in s: pass
    return s
async def ok(request): return web.Response(text="ok")
app = web.Application(); app.router.add_get("/ws", ws); app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def socket_count(pid: int) -> int:
    """Open sockets of a process (its file descriptors that are sockets)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


async def _hold(
    http: aiohttp.ClientSession, url: Callable[[int], str], sockets: int, concurrency: int
) -> tuple[list[aiohttp.ClientWebSocketResponse], list[asyncio.Task[None]], int, float]:
    """Open ``sockets`` sockets (each waits for ``ready``, then keeps reading); returns the open ones,
    their reader tasks, the failures and the seconds it took."""
    opened: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []
    failures = 0
    gate = asyncio.Semaphore(concurrency)

    async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:  # pings are answered inside receive()
            pass

    async def connect(n: int) -> None:
        nonlocal failures
        async with gate:
            try:
                ws = await http.ws_connect(url(n), headers={"Origin": url(n).split("/ws")[0]}, heartbeat=None)
                while True:
                    msg = await ws.receive(timeout=60)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(str(msg.type))
                    if json.loads(msg.data).get("type") == "ready":
                        break
                opened.append(ws)
                readers.append(asyncio.create_task(read(ws)))
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                failures += 1

    start = time.monotonic()
    await asyncio.gather(*(connect(n) for n in range(sockets)))
    return opened, readers, failures, time.monotonic() - start


async def _close(opened: list[aiohttp.ClientWebSocketResponse], readers: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


async def _measure(
    results: dict[str, Any],
    pids: list[int],
    opened: int,
    before: float,
    hold_s: float,
) -> None:
    """RSS (summed over ``pids``) and sockets held, now and ``hold_s`` later."""
    rss_now: Callable[[], float] = lambda: round(sum(rss_mb(p) for p in pids), 1)  # noqa: E731
    results["rss_open_mb"] = rss_now()
    results["rss_open_each_mb"] = [rss_mb(p) for p in pids]
    results["server_sockets"] = sum(socket_count(p) for p in pids)
    results["per_socket_kb"] = round((results["rss_open_mb"] - before) * 1024 / max(1, opened), 1)
    if hold_s:
        await asyncio.sleep(hold_s)  # past one heartbeat: the idle sockets must still be there
        results["hold_s"] = hold_s
        results["rss_held_mb"] = rss_now()
        results["server_sockets_held"] = sum(socket_count(p) for p in pids)


async def _baseline(
    http: aiohttp.ClientSession, sockets: int, concurrency: int, hold_s: float
) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)])
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", server)
        before = rss_mb(server.pid)
        opened, readers, failures, elapsed = await _hold(
            http, lambda n: f"http://127.0.0.1:{port}/ws", sockets, concurrency
        )
        base: dict[str, Any] = {"open": len(opened), "failures": failures, "connect_s": round(elapsed, 1)}
        base["rss_before_mb"] = before
        await _measure(base, [server.pid], len(opened), before, hold_s)
        base["peak_rss_mb"] = peak_rss_mb(server.pid)
        await _close(opened, readers)
        return base
    finally:
        stop_process(server)


async def run(
    sockets: int = 10_000,
    concurrency: int = 200,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
    hold_s: float = 40.0,
) -> dict[str, Any]:
    """Idle widget sockets on the gateway(s) of ``mode`` (scale-out: round robin over both; the RSS
    figures are summed over the gateways, and listed per gateway), and on the bare baseline."""
    nofile = raise_nofile(sockets * 2 + 1024)  # the gateway inherits it
    results: dict[str, Any] = {"sockets": sockets, "nofile": nofile, "mode": mode}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        results["baseline"] = await _baseline(http, sockets, concurrency, hold_s)
        gw = await deploy(mode, env)
        try:
            inbox_id = (await api(http, gw, "GET", "/inboxes"))["items"][0]["id"]
            token = secrets.token_urlsafe(16)
            await api(
                http,
                gw,
                "POST",
                "/channels",
                {
                    "inbox_id": inbox_id,
                    "kind": "webchat",
                    "name": "Bench widget",
                    "config": {"token": token, "limits": {"connections_per_ip_per_minute": 10_000_000}},
                },
            )
            before = gw.rss_mb()
            pids = [g.popen.pid for g in gw.gateways]
            sockets_before = sum(socket_count(p) for p in pids)
            opened, readers, failures, elapsed = await _hold(
                http,
                lambda n: f"{gw.url(n)}/webchat/{token}/ws?key={secrets.token_urlsafe(16)}",
                sockets,
                concurrency,
            )
            results.update(
                {
                    "open": len(opened),
                    "failures": failures,
                    "connect_s": round(elapsed, 1),
                    "rss_before_mb": before,
                }
            )
            await _measure(results, pids, len(opened), before, hold_s)
            results["server_sockets"] -= sockets_before
            if "server_sockets_held" in results:
                results["server_sockets_held"] -= sockets_before
            results.update(gw.usage())
            await _close(opened, readers)
        finally:
            gw.stop()
    results["ratio_per_socket"] = round(
        results["per_socket_kb"] / max(0.1, results["baseline"]["per_socket_kb"]), 2
    )
    results["target"] = "gateway RSS <= 300 MB"
    return results
