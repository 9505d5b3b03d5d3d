"""The whole cluster on 127.0.0.1: PostgreSQL, redis-server, two ``switchboard serve`` gateways and two
``switchboard worker`` processes. The loopback channel's "provider" is an HTTP sink in this test, so
every process can reach it and the test sees what was really sent.

TODO(quota, issue 3): "1,000 concurrent sends across both gateways near the quota limit open exactly
the allowed conversations and fire each tier's alert once" belongs here once quota counting lands —
use ``cluster.gateways`` and ``Cluster.api`` below against both gateways at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web
from redis import Redis
from rq import Worker
from rq.worker import BaseWorker

from tests.harness import StreamClient
from tests.services import free_port

HOLD = "hold me"  # the sink keeps the first send with this text hanging: a worker dies holding it


class ProviderSink:
    """The loopback relay's provider: records every send; can keep one hanging."""

    def __init__(self) -> None:
        self.sends: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.sends.append(body)
        self.arrived.set()
        if body["text"] == HOLD and [s["text"] for s in self.sends].count(HOLD) == 1:
            await self.release.wait()
        return web.json_response({"ok": True})

    async def wait_for(self, predicate: Any, timeout: float = 30) -> None:
        async def wait() -> None:
            while not predicate(self.sends):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(wait(), timeout)

    def texts(self) -> list[str]:
        return [s["text"] for s in self.sends]


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[ProviderSink]:
    sink = ProviderSink()
    app = web.Application()
    app.router.add_post("/send", sink.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}/send"
    yield sink
    sink.release.set()
    await runner.cleanup()


@dataclass
class Proc:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    base_url: str = ""

    def kill(self) -> None:
        """SIGKILL the process alone, as a crash would (an RQ worker's forked scheduler outlives it)."""
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM its whole process group (its own session), then SIGKILL what is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    redis_url: str
    http: aiohttp.ClientSession
    procs: list[Proc] = field(default_factory=list)
    token: str = ""

    async def spawn(self, name: str, *args: str, port: int | None = None, output: bool = False) -> Proc:
        data_dir = self.tmp / name
        data_dir.mkdir(exist_ok=True)
        env = {**self.env, "SWITCHBOARD_DATA_DIR": str(data_dir), "SWITCHBOARD_SMTP_PORT": str(free_port())}
        if port is not None:
            env["SWITCHBOARD_HTTP_PORT"] = str(port)
        log = self.tmp / f"{name}.log"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *args,
            env=env,
            # Only read output where needed: a pipe held open by a forked child keeps wait() waiting.
            stdout=asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL,
            stderr=log.open("wb"),
            start_new_session=True,
        )
        proc = Proc(name, process, log, f"http://127.0.0.1:{port}" if port else "")
        self.procs.append(proc)
        return proc

    async def gateway(self, name: str, *, demo: bool = False) -> Proc:
        proc = await self.spawn(name, "serve", *(["--demo"] if demo else []), port=free_port(), output=True)
        assert proc.process.stdout is not None
        while True:  # "serving on" comes after start-up (migrations, bus, channels) and the demo seed
            line = (await asyncio.wait_for(proc.process.stdout.readline(), 60)).decode()
            assert line, f"{name} exited: {proc.log.read_text()[-3000:]}"
            if match := re.match(r"Demo admin API token: (\S+)", line):
                self.token = match.group(1)
            if line.startswith("Switchboard serving on"):
                return proc

    async def api(self, gw: Proc, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method,
            f"{gw.base_url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            return resp.status, await resp.json()

    async def stream(self, gw: Proc, after: int) -> StreamClient:
        ws = await self.http.ws_connect(
            f"{gw.base_url}/api/v1/stream?after={after}", headers={"Authorization": f"Bearer {self.token}"}
        )
        return StreamClient(ws)

    async def customer_writes(self, gw: Proc, channel: dict[str, Any], sender: str, text: str) -> int:
        async with self.http.post(
            f"{gw.base_url}/webhooks/loopback/{channel['id']}",
            json={"from": sender, "text": text},
            headers={"X-Loopback-Secret": channel["config"]["webhook_secret"]},
        ) as resp:
            assert resp.status == 200, await resp.text()
            return int((await resp.json())["conversation_id"])

    def workers(self) -> list[BaseWorker]:
        with Redis.from_url(self.redis_url) as redis:
            return list(Worker.all(connection=redis))


@pytest_asyncio.fixture
async def cluster(tmp_path: Path, pg_url: str, redis_db: str) -> AsyncIterator[Cluster]:
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": pg_url,
        "SWITCHBOARD_REDIS_URL": redis_db,
        "SWITCHBOARD_DISPATCH_LEASE_SECONDS": "5",  # a send held by a dead worker is retried after 5 s
        "SWITCHBOARD_SWEEP_INTERVAL_SECONDS": "0.5",
        "SWITCHBOARD_SWEEP_GRACE_SECONDS": "30",
        "SWITCHBOARD_POLLER_LEASE_SECONDS": "2",  # the sweeper moves 2 s after its worker died
        "SWITCHBOARD_JOB_RETRY_INTERVALS": "[1]",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        c = Cluster(tmp_path, env, redis_db, http)
        try:
            yield c
        finally:
            for proc in c.procs:
                await proc.stop()


async def test_two_gateways_two_workers_lose_nothing(cluster: Cluster, provider: ProviderSink):
    # Everything starts at once: the migrations serialize on an advisory lock.
    a, b = await asyncio.gather(cluster.gateway("gw-a", demo=True), cluster.gateway("gw-b"))
    workers = [await cluster.spawn(f"worker-{i}", "worker") for i in (1, 2)]
    status, channel = await cluster.api(
        a,
        "POST",
        "/channels",
        {"inbox_id": 1, "kind": "loopback", "name": "relay", "config": {"relay_url": provider.url}},
    )
    assert status == 201, channel

    # -- posted to gateway A, seen on a stream connected to gateway B ------------------------------
    stream_b = await cluster.stream(b, after=0)
    start = await stream_b.ready()
    conversation_id = await cluster.customer_writes(a, channel, "+15550001111", "Hello from the customer")
    created = await stream_b.next(lambda e: e["type"] == "message.created")
    assert created["data"]["message"]["text"] == "Hello from the customer"
    assert created["id"] > start

    status, reply = await cluster.api(
        a, "POST", f"/conversations/{conversation_id}/messages", {"text": "Hi there"}
    )
    assert status == 201 and reply["status"] == "queued"
    sent = await stream_b.next(
        lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == reply["id"], timeout=30
    )
    assert sent["data"]["message"]["status"] == "sent"
    assert provider.texts() == ["Hi there"]
    assert provider.sends[0]["to"] == "+15550001111"

    # -- a worker killed mid-send: the message still goes ------------------------------------------
    await _until(lambda: len(cluster.workers()) == 2, "both workers registered")
    status, held = await cluster.api(b, "POST", f"/conversations/{conversation_id}/messages", {"text": HOLD})
    assert status == 201
    await provider.wait_for(lambda sends: HOLD in [s["text"] for s in sends])
    busy = [
        w
        for w in cluster.workers()
        if (w.get_current_job_id() or "").startswith(f"outbox-dispatch-{held['id']}-")
    ]
    [victim] = [p for p in workers if any(w.pid == p.process.pid for w in busy)]
    victim.kill()
    await victim.process.wait()
    assert provider.texts().count(HOLD) == 1  # its lease has not run out yet: nobody retried so far
    done = await stream_b.next(
        lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == held["id"], timeout=30
    )
    assert done["data"]["message"]["status"] == "sent"  # by the surviving worker, after the lease ran out
    assert provider.texts().count(HOLD) == 2  # the lost try and the one that went
    workers.append(await cluster.spawn("worker-3", "worker"))  # a supervisor would restart it
    await stream_b.close()

    # -- gateway A killed: its stream clients resume on B with nothing lost ------------------------
    stream_a = await cluster.stream(a, after=0)
    await stream_a.ready()
    before = [  # through both gateways: A's own last commits must not be lost with it either
        await cluster.customer_writes((a, b)[i % 2], channel, f"+1555000200{i}", f"before {i}")
        for i in range(3)
    ]
    for i in range(3):
        await stream_a.next(_created(f"before {i}"))
    seen_on_a = [e["id"] for e in stream_a.received]
    a.kill()
    await a.process.wait()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await stream_a.next(timeout=5)  # the connection drops
    after_ids = [e["id"] for e in stream_a.received]
    during = [await cluster.customer_writes(b, channel, f"+1555000300{i}", f"during {i}") for i in range(3)]
    assert before and during
    resumed = await cluster.stream(b, after=after_ids[-1])
    await resumed.ready()  # the events missed while away come first, from the log
    got = after_ids + [e["id"] for e in resumed.received]
    replay = await cluster.stream(b, after=seen_on_a[0] - 1)
    await replay.ready()
    log = [e["id"] for e in replay.received if e["id"] <= got[-1]]
    assert got == log  # every event exactly once, in order, across the two gateways
    texts = [
        e["data"]["message"]["text"]
        for e in stream_a.received + resumed.received
        if e["type"] == "message.created"
    ]
    assert [f"before {i}" for i in range(3)] + [f"during {i}" for i in range(3)] == [
        t for t in texts if t.startswith(("before", "during"))
    ]

    # -- health, readiness and metrics on the surviving gateway -----------------------------------
    async with cluster.http.get(f"{b.base_url}/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["checks"] == {"database": "ok", "redis": "ok"}
    async with cluster.http.get(f"{b.base_url}/metrics") as resp:
        assert resp.status == 200
        metrics = await resp.text()
    assert 'switchboard_messages{channel="loopback",direction="out",status="sent"} 2.0' in metrics
    assert _value(metrics, 'switchboard_messages{channel="loopback",direction="in",status="received"}') >= 7
    assert "switchboard_websocket_clients 2.0" in metrics  # resumed and replay (stream_b was closed)
    assert 'switchboard_queue_jobs{state="queued"}' in metrics
    for client in (stream_a, resumed, replay):
        await client.close()


def _created(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "message.created" and e["data"]["message"]["text"] == text


def _value(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in metrics:\n{metrics}")


async def _until(check: Any, what: str, timeout: float = 30) -> None:
    """Poll a condition that has no event to wait on (RQ's worker registry lives in Redis)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await asyncio.to_thread(check):
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
