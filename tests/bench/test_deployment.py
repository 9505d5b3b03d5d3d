"""The bench's scale-out harness starts the whole cluster and takes all of it down again (no timing)."""

from __future__ import annotations

import os

import aiohttp

from bench.common import api
from bench.deployment import deploy


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent, the service starter, may not have reaped it yet).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_scale_out_deployment_starts_spreads_and_stops(pg_server: str, redis_url: str):
    # pg_server / redis_url: a machine without PostgreSQL or redis-server skips (fails under CI).
    dep = await deploy("scale-out")
    pids = [gw.popen.pid for gw in dep.gateways] + [w.pid for w in dep.workers] + list(dep.services.values())
    try:
        assert len(dep.gateways) == 2 and len(dep.workers) == 2
        assert set(dep.services) == {"postgres", "redis"}
        assert dep.url(0) != dep.url(1) and dep.url(2) == dep.url(0)
        async with aiohttp.ClientSession() as http:
            for gw in dep.gateways:
                async with http.get(f"{gw.base_url}/readyz") as resp:
                    assert (await resp.json())["checks"] == {"database": "ok", "redis": "ok"}

            class Second:  # the demo token works on the gateway that did not seed it: one database
                base_url, token = dep.url(1), dep.token

            note = await api(
                http, Second(), "POST", "/conversations/1/messages", {"text": "via B", "private": True}
            )
        assert await dep.rows("SELECT text FROM messages WHERE id = ?", (note["id"],)) == [("via B",)]
        usage = dep.usage()
        assert set(usage["processes"]) == {"gateway-1", "gateway-2", "worker-1", "worker-2"}
        assert usage["cpu_s"] > 0 and usage["peak_rss_mb"] > 0
        assert usage["postgres"]["processes"] > 1  # the postmaster and its backends
    finally:
        dep.stop()
    assert [pid for pid in pids if _alive(pid)] == []
