"""Outbound send: a broadcast of business-initiated template sends through the gate to the simulator.

The WhatsApp simulator runs as its own process (``switchboard simulator``) with its throughput limit
lifted, so the gateway and the simulator do not share a CPU core's event loop. Baseline: the same
simulator taking the same Graph API template sends straight from the bench client, with no gateway.
Every send is accounted for at the end: the messages' final statuses are counted in the database.

``via="broadcasts"`` (the default) sends the broadcast as the product does: ``POST /api/v1/broadcasts``
with ``BROADCAST_SIZE`` recipients each, a few requests in flight; ``via="messages"`` sends one
``POST /api/v1/messages`` per recipient with ``concurrency`` in flight (the earlier figure);
``via="audience"`` (embedded only) writes ``total`` tagged contacts into the gateway's SQLite file and
sends one ``POST /api/v1/broadcasts`` to that audience, listed and sent by the background runner.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    ROOT,
    api,
    cpu_seconds,
    free_port,
    peak_rss_mb,
    stop_process,
    summary_ms,
    wait_http,
)
from bench.deployment import deploy

PNID = "100000000000009"
TEMPLATE = {"name": "hello_world", "language": "en_US"}
VIA = ("broadcasts", "messages", "audience")
AUDIENCE_TAG = "bench-audience"
BROADCAST_SIZE = 500  # recipients per POST /broadcasts (the API takes up to 1,000)
BROADCASTS_IN_FLIGHT = 2


def recipient(n: int) -> str:
    return f"+1555{n % 10_000_000:07d}"


async def start_simulator(port: int, webhook_url: str, token: str, secret: str) -> subprocess.Popen[bytes]:
    popen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "simulator",
            "--port",
            str(port),
            "--phone-number-id",
            PNID,
            "--webhook-url",
            webhook_url,
            "--mps",
            "1000000000",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "WA_SIM_ACCESS_TOKEN": token,
            "WA_SIM_APP_SECRET": secret,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
        },
    )
    await wait_http(f"http://127.0.0.1:{port}/simulator/api/state", popen)
    return popen


async def many(total: int, concurrency: int, one: Any) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    numbers = itertools.count()

    async def worker() -> None:
        nonlocal errors
        for n in numbers:
            if n >= total:
                return
            t0 = time.perf_counter()
            try:
                ok = await one(n)
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.monotonic() - start


async def _status_sink() -> tuple[web.AppRunner, str]:
    """Where the baseline simulator posts its status webhooks (answers 200, like a quick business)."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook"


async def run(
    total: int = 100_000,
    concurrency: int = 64,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
    via: str = "broadcasts",
) -> dict[str, Any]:
    """Baseline, then the gateway(s) of ``mode`` (scale-out: API sends round robin over both gateways,
    deliveries by the workers; the simulator's status webhooks go to the first gateway)."""
    if via not in VIA:
        raise ValueError(f"via: {via!r} is not one of {VIA}")
    results: dict[str, Any] = {"sends": total, "concurrency": concurrency, "mode": mode, "via": via}
    token, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=120)
    ) as http:
        # Baseline: the simulator alone.
        sink, sink_url = await _status_sink()
        port = free_port()
        sim = await start_simulator(port, sink_url, token, secret)
        try:
            url = f"http://127.0.0.1:{port}/simulator/graph/v21.0/{PNID}/messages"
            auth = {"Authorization": f"Bearer {token}"}

            async def direct(n: int) -> bool:
                body = {
                    "messaging_product": "whatsapp",
                    "to": recipient(n).lstrip("+"),
                    "type": "template",
                    "template": {"name": TEMPLATE["name"], "language": {"code": TEMPLATE["language"]}},
                }
                async with http.post(url, json=body, headers=auth) as resp:
                    await resp.read()
                    return resp.status == 200

            lat, errors, elapsed = await many(total, concurrency, direct)
            results["baseline"] = {
                **summary_ms(lat),
                "accepted": len(lat),
                "errors": errors,
                "sends_per_s": round(len(lat) / elapsed, 1),
                "cpu_s": round(cpu_seconds(sim.pid), 2),
                "peak_rss_mb": peak_rss_mb(sim.pid),
            }
        finally:
            stop_process(sim)
            await sink.cleanup()

        # Through the gateway: a channel pointed at a fresh simulator process.
        gw = await deploy(mode, env)
        port = free_port()
        gsim: subprocess.Popen[bytes] | None = None
        try:
            channel = await broadcast_channel(http, gw, port, token, secret, 100_000_000)
            gsim = await start_simulator(port, channel["webhook_url"], token, secret)
            headers = {"Authorization": f"Bearer {gw.token}"}

            async def through(n: int) -> bool:
                body = {"channel_id": channel["id"], "to": recipient(n), "template": TEMPLATE}
                async with http.post(f"{gw.url(n)}/api/v1/messages", json=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status == 201

            chunks = [range(n, min(total, n + BROADCAST_SIZE)) for n in range(0, total, BROADCAST_SIZE)]

            async def broadcast(k: int) -> bool:
                body = {
                    "channel_id": channel["id"],
                    "recipients": [recipient(n) for n in chunks[k]],
                    "template": TEMPLATE,
                }
                async with http.post(f"{gw.url(k)}/api/v1/broadcasts", json=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status == 201

            if via == "audience":
                if gw.database_url is not None:
                    raise ValueError(
                        "via audience: embedded mode only (the contacts go into its SQLite file)"
                    )
                seed_audience(gw.data_dir / "switchboard.sqlite3", total)
            cpu_before = gw.cpu_now()
            profiler = gw.profile("send", 20)
            began = time.monotonic()
            broadcast_id = None
            if via == "messages":
                lat, errors, elapsed = await many(total, concurrency, through)
            elif via == "audience":
                body = {
                    "channel_id": channel["id"],
                    "title": "bench",
                    "audience": {"conditions": [{"tags": {"any": [AUDIENCE_TAG]}}]},
                    "template": TEMPLATE,
                }
                t0 = time.perf_counter()
                created = await api(http, gw, "POST", "/broadcasts", body)
                lat, errors, elapsed = [time.perf_counter() - t0], 0, time.perf_counter() - t0
                broadcast_id = created["id"]
            else:
                # Latencies are per broadcast request; accepted and errors count recipients.
                lat, failed, elapsed = await many(len(chunks), BROADCASTS_IN_FLIGHT, broadcast)
                errors = failed * BROADCAST_SIZE
                results["broadcast_size"] = BROADCAST_SIZE
            if profiler is not None:
                profiler.wait(60)
            # Wait (bounded) for the queue to drain: every send reaches a final status.
            waited = time.monotonic()
            query = "SELECT status, count(*) FROM messages WHERE channel_id = ? AND kind = 'outgoing' GROUP BY status"
            while True:
                counts: dict[str, int] = dict(await gw.rows(query, (channel["id"],)))
                running = broadcast_id is not None and (
                    await gw.rows("SELECT status FROM broadcasts WHERE id = ?", (broadcast_id,))
                )[0][0] in ("expanding", "sending")
                if (not counts.get("queued") and not running) or time.monotonic() - waited > 600:
                    break
                await asyncio.sleep(1)  # polling another process's database: no event to wait on
            drained = time.monotonic() - began
            accepted = len(lat) if via == "messages" else total - errors
            if broadcast_id is not None:  # recipients with a message, each exactly once
                ((accepted, twice),) = await gw.rows(
                    "SELECT count(DISTINCT contact_id), count(*) - count(DISTINCT contact_id)"
                    " FROM broadcast_recipients WHERE broadcast_id = ? AND message_id IS NOT NULL",
                    (broadcast_id,),
                )
                results["recipients_twice"] = twice
            results["gateway"] = {
                **summary_ms(lat),
                "accepted": accepted,
                "errors": errors,
                "api_sends_per_s": round(accepted / elapsed, 1),
                "sends_per_s": round(total / drained, 1),
                "final_statuses": counts,
                "accounted_for": sum(counts.values()),
                "cpu_ms_per_send": gw.cpu_ms_per(cpu_before, total),
                **gw.usage(),
                "simulator_cpu_s": round(cpu_seconds(gsim.pid), 2),
            }
        finally:
            if gsim is not None:
                stop_process(gsim)
            gw.stop()
    results["ratio"] = round(results["gateway"]["sends_per_s"] / results["baseline"]["sends_per_s"], 2)
    results["target"] = ">= 0.5 of the simulator's own rate; all sends accounted for"
    return results


def seed_audience(db_file: Path, total: int) -> None:
    """``total`` contacts with the WhatsApp addresses ``recipient(n)`` and the bench's tag, in one go."""
    con = sqlite3.connect(db_file, isolation_level=None, timeout=60)
    at = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    first = con.execute("SELECT COALESCE(MAX(id), 0) FROM contacts").fetchone()[0] + 1
    ids = range(first, first + total)
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        "INSERT INTO contacts (id, account_id, name, phone, attributes, labels, created_at) VALUES (?,1,?,?,'{}','[]',?)",
        ((cid, f"Bench {n}", recipient(n), at) for n, cid in enumerate(ids)),
    )
    con.executemany(
        "INSERT INTO contact_identities (account_id, kind, address, contact_id) VALUES (1, 'whatsapp', ?, ?)",
        ((recipient(n), cid) for n, cid in enumerate(ids)),
    )
    con.executemany(
        "INSERT INTO contact_tags (contact_id, tag, account_id, source, created_at) VALUES (?, ?, 1, 'manual', ?)",
        ((cid, AUDIENCE_TAG, at) for cid in ids),
    )
    con.execute("COMMIT")
    con.close()


async def broadcast_channel(
    http: aiohttp.ClientSession, gw: Any, sim_port: int, token: str, secret: str, quota: int
) -> dict[str, Any]:
    """A WhatsApp channel for bench sends: simulator at ``sim_port``, an approved template, consent off."""
    inbox_id = (await api(http, gw, "GET", "/inboxes"))["items"][0]["id"]
    channel: dict[str, Any] = await api(
        http,
        gw,
        "POST",
        "/channels",
        {
            "inbox_id": inbox_id,
            "kind": "whatsapp",
            "name": "Bench broadcast",
            "config": {
                "base_url": f"http://127.0.0.1:{sim_port}/simulator/graph",
                "phone_number_id": PNID,
                "waba_id": "100000000000000",
                "display_phone_number": "+15550100009",
                "access_token": token,
                "app_secret": secret,
                "verify_token": "bench",
                "consent": False,  # a broadcast to contacts the bench made up: no opt-in records
            },
        },
    )
    await api(
        http,
        gw,
        "POST",
        f"/channels/{channel['id']}/templates",
        {
            "name": TEMPLATE["name"],
            "language": TEMPLATE["language"],
            "category": "utility",
            "body": "Hello! Thanks for getting in touch with us.",
        },
    )
    await api(http, gw, "PATCH", "/account", {"included_conversations": quota})
    return channel
