"""Widget sockets: many idle visitor websockets on one gateway process; its memory is the figure.

Each socket is a distinct anonymous visitor that waits for the widget's ``ready`` frame (history read,
subscribed), then stays idle. The channel's per-IP connection limit is raised for the run: every socket
comes from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import aiohttp

from bench.common import api, raise_nofile, rss_mb
from bench.deployment import deploy


async def run(
    sockets: int = 10_000, concurrency: int = 200, env: dict[str, str] | None = None, mode: str = "embedded"
) -> dict[str, Any]:
    """Idle widget sockets on the gateway(s) of ``mode`` (scale-out: round robin over both; the RSS
    figures are summed over the gateways, and listed per gateway)."""
    nofile = raise_nofile(sockets * 2 + 1024)  # the gateway inherits it
    results: dict[str, Any] = {"sockets": sockets, "nofile": nofile, "mode": mode}
    gw = await deploy(mode, env)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
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
            opened: list[aiohttp.ClientWebSocketResponse] = []
            failures = 0
            gate = asyncio.Semaphore(concurrency)

            async def connect(n: int) -> None:
                nonlocal failures
                async with gate:
                    try:
                        ws = await http.ws_connect(
                            f"{gw.url(n)}/webchat/{token}/ws?key={secrets.token_urlsafe(16)}",
                            headers={"Origin": gw.url(n)},
                            heartbeat=None,
                        )
                        while True:
                            msg = await ws.receive(timeout=60)
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                raise ConnectionError(str(msg.type))
                            if json.loads(msg.data).get("type") == "ready":
                                break
                        opened.append(ws)
                    except (aiohttp.ClientError, ConnectionError, TimeoutError):
                        failures += 1

            start = time.monotonic()
            await asyncio.gather(*(connect(n) for n in range(sockets)))
            elapsed = time.monotonic() - start
            results.update(
                {
                    "open": len(opened),
                    "failures": failures,
                    "connect_s": round(elapsed, 1),
                    "rss_before_mb": before,
                    "rss_open_mb": gw.rss_mb(),
                    "rss_open_each_mb": [rss_mb(g.popen.pid) for g in gw.gateways],
                    **gw.usage(),
                }
            )
            results["per_socket_kb"] = round(
                (results["rss_open_mb"] - before) * 1024 / max(1, len(opened)), 1
            )
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    finally:
        gw.stop()
    results["target"] = "gateway RSS <= 300 MB"
    return results
