"""Live fan-out: N agents on the stream while messages arrive; event latency from post to receipt.

The baseline is a bare aiohttp websocket broadcast server driven the same way in the same run, with
frames of the same shape and size. Both are read by the same measuring client: a few processes of
bench/fanout_client.py (one Python process cannot read 400,000 frames/s, and then the figure would be
the client's), which report every frame's latency and their own CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.common import ROOT, cpu_seconds, free_port, peak_rss_mb, stop_process, summary_ms, wait_http
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


def _clients_default() -> int:
    return max(2, os.cpu_count() or 2)


def _baseline_body(i: int) -> str:
    """What the baseline broadcasts: a frame shaped and sized like the gateway's ``message.created``."""
    now = datetime.now(UTC).isoformat()
    message = {
        "id": i,
        "conversation_id": 1,
        "channel_id": 1,
        "kind": "note",
        "origin": "agent",
        "text": f"bench {time.time()} {i}",
        "content_type": "text",
        "attachments": [],
        "template": None,
        "status": "received",
        "reason": None,
        "error_detail": None,
        "provider_message_id": None,
        "author_id": 1,
        "created_at": now,
        "updated_at": now,
        "edit_history": [],
    }
    body = {
        "id": i,
        "type": "message.created",
        "inbox_id": 1,
        "conversation_id": 1,
        "data": {"message": message},
        "created_at": now,
    }
    return json.dumps(body, separators=(",", ":"))


class _Client:
    """One ``bench.fanout_client`` process and its share of the sockets."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.summary: dict[str, Any] = {}
        self.latencies = array("d")

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.proc.stdout is not None
        return self.proc.stdout

    async def ready(self) -> None:
        line = (await self.stdout.readline()).decode()
        if not line.startswith("ready "):
            raise ConnectionError(f"fan-out client failed to open its sockets: {line!r}")

    async def result(self) -> None:
        line = (await self.stdout.readline()).decode()
        if not line.startswith("done "):
            raise ConnectionError(f"fan-out client failed: {line!r}")
        self.summary = json.loads(line[5:])
        self.latencies.frombytes(await self.stdout.readexactly(self.summary["bytes"]))
        await self.proc.wait()


async def _drive(
    urls: list[str],
    headers: dict[str, str],
    post: Any,
    rate: float,
    duration: float,
    cpu: Callable[[], float],
    clients: int,
    on_load: Callable[[], object] = lambda: None,
) -> dict[str, Any]:
    """Open one socket per URL, spread over ``clients`` processes; post ``rate`` messages/s for
    ``duration`` s; collect every frame's latency. Also the server's CPU seconds (``cpu()``) and the
    clients' spent during the load. ``on_load()`` is called once every socket is ready."""
    expected = int(rate * duration)
    procs = [
        _Client(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.fanout_client",
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 20,
            )
        )
        for _ in range(min(clients, len(urls)))
    ]
    try:
        for n, proc in enumerate(procs):
            share = urls[n :: len(procs)]
            proc.stdin.write(
                json.dumps({"urls": share, "headers": headers, "expected": expected}).encode() + b"\n"
            )
        await asyncio.gather(*(p.ready() for p in procs))
        results = asyncio.gather(*(p.result() for p in procs))
        on_load()
        cpu_before = cpu()
        poster_before = time.process_time()
        start = time.monotonic()
        posts: set[asyncio.Future[Any]] = set()
        for i in range(expected):
            target = start + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load generator, not waiting for a result
            posts.add(asyncio.ensure_future(post(i)))
        await asyncio.gather(*posts, return_exceptions=True)
        try:
            await asyncio.wait_for(
                asyncio.shield(results), timeout=max(1.0, start + duration + 30 - time.monotonic())
            )
        except TimeoutError:
            for proc in procs:
                proc.stdin.write(b"stop\n")  # report what arrived so far
            await results
        load_cpu = cpu() - cpu_before
        poster_cpu = time.process_time() - poster_before
    finally:
        for proc in procs:
            if proc.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.proc.kill()
                await proc.proc.wait()
    latencies = array("d")
    closed: dict[str, int] = {}
    for proc in procs:
        latencies.extend(proc.latencies)
        for code, count in proc.summary["closed"].items():
            closed[code] = closed.get(code, 0) + count
    return {
        **_summary_ms(latencies),
        "delivered": len(latencies),
        "expected": expected * len(urls),
        "other_frames": sum(p.summary["other_frames"] for p in procs),
        "closed_by_server": closed,
        "load_cpu_s": round(load_cpu, 2),
        "client_processes": len(procs),
        "client_load_cpu_s": round(sum(p.summary["load_cpu_s"] for p in procs), 2),
        "poster_load_cpu_s": round(poster_cpu, 2),
    }


def _summary_ms(latencies: array[float]) -> dict[str, float]:
    """``summary_ms`` for millions of values: sorted once."""
    ordered = sorted(latencies)
    if not ordered:
        return summary_ms([])

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000, 2)

    return {
        "count": len(ordered),
        "p50_ms": at(50),
        "p99_ms": at(99),
        "p999_ms": at(99.9),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


async def run(
    agents: int = 2000,
    rate: float = 200,
    duration: float = 10,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
    clients: int | None = None,
) -> dict[str, Any]:
    """Baseline, then the gateway(s) of ``mode`` (scale-out: agents and posts round robin over both
    gateways, so half the events cross between them over Redis). The sockets are spread over
    ``clients`` measuring processes (default: one per core)."""
    clients = clients or _clients_default()
    results: dict[str, Any] = {"agents": agents, "rate_per_s": rate, "duration_s": duration, "mode": mode}
    limits = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=limits) as http:
        # Baseline: bare broadcast.
        port = free_port()
        base = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)])
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz", base)

            async def publish(i: int) -> None:
                async with http.post(f"http://127.0.0.1:{port}/publish", data=_baseline_body(i)) as resp:
                    await resp.read()

            figures = await _drive(
                [f"http://127.0.0.1:{port}/ws"] * agents,
                {},
                publish,
                rate,
                duration,
                lambda: cpu_seconds(base.pid),
                clients,
            )
            results["baseline"] = {
                **figures,
                "cpu_s": round(cpu_seconds(base.pid), 2),
                "peak_rss_mb": peak_rss_mb(base.pid),
            }
        finally:
            stop_process(base)

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

            profiler = None

            def profile() -> None:  # the load only, not the sockets' connects
                nonlocal profiler
                profiler = gw.profile("fanout", duration + 2)

            figures = await _drive(
                [f"{gw.url(i)}/api/v1/stream" for i in range(agents)],
                auth,
                post,
                rate,
                duration,
                lambda: gw.cpu_now()["gateways_workers"],
                clients,
                profile,
            )
            results["gateway"] = {
                **figures,  # load_cpu_s: gateways (and workers) during the load
                **gw.usage(),
            }
            if profiler is not None:
                profiler.wait(60)
        finally:
            gw.stop()
    results["ratio_p99"] = round(results["gateway"]["p99_ms"] / max(results["baseline"]["p99_ms"], 0.01), 2)
    results["target"] = "p99 event latency <= 50 ms"
    return results
