"""The whole cluster on 127.0.0.1: PostgreSQL, redis-server, two ``switchboard serve`` gateways and two
``switchboard worker`` processes. The loopback channel's "provider" is an HTTP sink in this test, so
every process can reach it and the test sees what was really sent.

The quota test sends 1,000 business-initiated messages to new contacts through both gateways at once
on a metered channel with room for 300 conversations: exactly 300 open (and reach the provider), the
rest are refused, and each tier's alert mail (70, 80, 90, 95, 100 %) goes exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Worker
from rq.worker import BaseWorker

from inbox import tables as t
from inbox.db import Database
from inbox.quota import TIERS
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
    await _workers_registered(cluster, 2)
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


QUOTA_LIMIT = 300
QUOTA_SENDS = 1000
CLIENT_CONCURRENCY = 16  # two cores run everything: enough to race, not enough to time out


async def test_concurrent_sends_across_gateways_open_exactly_the_quota(
    cluster: Cluster, provider: ProviderSink, smtp_sink: Any, pg_url: str
):
    cluster.env["SWITCHBOARD_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_sink.port}"  # the alert mail relay
    cluster.env["SWITCHBOARD_LOG_LEVEL"] = "WARNING"  # a thousand sends: no line per request
    a, b = await asyncio.gather(cluster.gateway("gw-a", demo=True), cluster.gateway("gw-b"))
    for i in (1, 2):
        await cluster.spawn(f"worker-{i}", "worker")
    metered = {"metered": True, "service_window": False, "consent": False, "relay_url": provider.url}
    status, channel = await cluster.api(
        a, "POST", "/channels", {"inbox_id": 1, "kind": "loopback", "name": "metered", "config": metered}
    )
    assert status == 201, channel
    status, account = await cluster.api(b, "PATCH", "/account", {"included_conversations": QUOTA_LIMIT})
    assert status == 200 and account["included_conversations"] == QUOTA_LIMIT, account

    gate = asyncio.Semaphore(CLIENT_CONCURRENCY)

    async def send(n: int) -> tuple[str, dict[str, Any]]:
        to = f"+1555{n:07d}"  # a new contact each: every send would open a billable conversation
        async with gate:
            status, message = await cluster.api(
                (a, b)[n % 2],
                "POST",
                "/messages",
                {"channel_id": channel["id"], "to": to, "text": f"offer {n}"},
            )
        assert status == 201, message
        return to, message

    results = await asyncio.gather(*(send(n) for n in range(QUOTA_SENDS)))
    outcomes = Counter((m["status"], m["reason"]) for _, m in results)
    assert outcomes == {
        ("queued", None): QUOTA_LIMIT,
        ("failed", "quota_exhausted"): QUOTA_SENDS - QUOTA_LIMIT,
    }
    opened = {to for to, m in results if m["status"] == "queued"}

    # Both gateways count the same: the limit is reached and new conversations are blocked.
    for gw in (a, b):
        status, quota = await cluster.api(gw, "GET", "/quota")
        assert status == 200
        assert (quota["used"], quota["limit"], quota["blocked"], quota["tier"]) == (
            QUOTA_LIMIT,
            QUOTA_LIMIT,
            True,
            100,
        )
    billed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        status, page = await cluster.api(
            a, "GET", "/billing/conversations?limit=200" + (f"&cursor={cursor}" if cursor else "")
        )
        assert status == 200, page
        billed += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert len(billed) == QUOTA_LIMIT

    # The accepted sends go out through the workers, each once, to the contacts that were let through.
    await provider.wait_for(lambda sends: len(sends) >= QUOTA_LIMIT, timeout=120)
    assert sorted(s["to"] for s in provider.sends) == sorted(opened)

    # Each tier's alert mail went exactly once, to the account's super and billing admins.
    mails = await smtp_sink.wait_for(len(TIERS), timeout=60)  # the mails arriving are the event
    assert len(mails) == len(TIERS)
    assert [m.rcpt_tos for m in mails] == [["admin@demo.switchboard.test"]] * len(TIERS)
    db = Database(pg_url)
    db.connect()
    try:
        async with db.read() as session:
            tiers = list(await session.scalars(sa.select(t.QuotaAlert.tier).order_by(t.QuotaAlert.tier)))
            queued_mail = list(await session.scalars(sa.select(t.OutgoingMail.id)))
    finally:
        await db.close()
    assert tiers == list(TIERS) and len(queued_mail) == len(TIERS)
    fired = Counter(_tier_of(_subject(m.content)) for m in mails)
    assert fired == dict.fromkeys(TIERS, 1)


def _tier_of(subject: str) -> int:
    match = re.search(r": (\d+)% of the \d{4}-\d{2} conversation quota used", subject)
    assert match is not None, subject
    return int(match.group(1))


def _subject(content: bytes) -> str:
    return str(email.message_from_bytes(content, policy=email.policy.default)["Subject"])


def _created(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "message.created" and e["data"]["message"]["text"] == text


def _value(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in metrics:\n{metrics}")


async def _workers_registered(cluster: Cluster, count: int, timeout: float = 30) -> None:
    """Wait until ``count`` RQ workers are registered: on Redis's own notice that the registry changed."""
    redis = AsyncRedis.from_url(cluster.redis_url)
    try:
        db = redis.connection_pool.connection_kwargs.get("db", 0)
        await redis.config_set("notify-keyspace-events", "Ks")  # set commands on keys: SADD, SREM
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(f"__keyspace@{db}__:rq:workers")
            async with asyncio.timeout(timeout):
                # Subscribed first, then looked: a registration in between is not missed.
                while len(await asyncio.to_thread(cluster.workers)) < count:
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
    finally:
        await redis.aclose()
