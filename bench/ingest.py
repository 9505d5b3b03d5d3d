"""Inbound ingest: signed WhatsApp webhooks (one message each) straight at the gateway's webhook URL.

Closed loop on ``connections`` keep-alive connections for ``duration`` s gives the top rate; a second,
paced run at half the baseline's rate gives the latency a user would see at a sustainable load. The
baseline is a bare aiohttp handler that parses the JSON and inserts one SQLite row per request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp

from bench.common import (
    api,
    closed_loop,
    cpu_seconds,
    free_port,
    peak_rss_mb,
    stop_process,
    summary_ms,
    wait_http,
)
from bench.deployment import deploy
from channels.whatsapp.signature import HEADER, sign

BASELINE_SERVER = r"""
import json, sqlite3, sys
from aiohttp import web
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS m (id INTEGER PRIMARY KEY, wamid TEXT UNIQUE, sender TEXT, body TEXT)")
async def hook(request):
    data = json.loads(await request.read())
    item = data["entry"][0]["changes"][0]["value"]["messages"][0]
    db.execute("INSERT OR IGNORE INTO m (wamid, sender, body) VALUES (?, ?, ?)", (item["id"], item["from"], item["text"]["body"]))
    return web.Response(text="ok")
async def ok(request): return web.Response(text="ok")
app = web.Application(); app.router.add_post("/hook", hook); app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def webhook_body(pnid: str, n: int, contacts: int, run: str) -> bytes:
    wa_id = f"1555{n % contacts:07d}"
    item = {
        "from": wa_id,
        "id": f"wamid.bench-{run}-{n}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": f"bench ingest {n}"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100001", "phone_number_id": pnid},
        "contacts": [{"profile": {"name": f"Bench {n % contacts}"}, "wa_id": wa_id}],
        "messages": [item],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000000", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


async def _phase(
    http: aiohttp.ClientSession,
    urls: list[str],
    secret: str,
    pnid: str,
    connections: int,
    duration: float,
    run: str,
    rate: float | None = None,
    contacts: int = 5000,
) -> dict[str, Any]:
    async def one(n: int) -> bool:
        body = webhook_body(pnid, n, contacts, run)
        headers = {HEADER: sign(secret, body), "Content-Type": "application/json"}
        async with http.post(urls[n % len(urls)], data=body, headers=headers) as resp:
            await resp.read()
            return resp.status == 200

    lat, errors, elapsed = await closed_loop(connections, duration, one, rate)
    return {**summary_ms(lat), "errors": errors, "req_per_s": round(len(lat) / elapsed, 1)}


async def run(
    connections: int = 64, duration: float = 20, env: dict[str, str] | None = None, mode: str = "embedded"
) -> dict[str, Any]:
    """Baseline, then the gateway(s) of ``mode`` (scale-out: webhooks round robin over both)."""
    results: dict[str, Any] = {"connections": connections, "duration_s": duration, "mode": mode}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
        port = free_port()
        db = tempfile.mktemp(suffix=".sqlite3", prefix="sb-bench-ingest-")
        base = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port), db])
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz", base)
            url = [f"http://127.0.0.1:{port}/hook"]
            top = await _phase(http, url, "x", "1", connections, duration, "b1")
            half = top["req_per_s"] / 2
            paced = await _phase(http, url, "x", "1", connections, duration, "b2", rate=half)
            results["baseline"] = {
                "max": top,
                "at_half_baseline": paced,
                "cpu_s": round(cpu_seconds(base.pid), 2),
                "peak_rss_mb": peak_rss_mb(base.pid),
            }
        finally:
            stop_process(base)

        gw = await deploy(mode, env)
        try:
            channel = next(
                ch for ch in (await api(http, gw, "GET", "/channels"))["items"] if ch["kind"] == "whatsapp"
            )
            secret, pnid = channel["config"]["app_secret"], channel["config"]["phone_number_id"]
            url = [f"{gw.url(i)}/webhooks/whatsapp/{channel['id']}" for i in range(len(gw.gateways))]
            cpu_before = gw.cpu_now()
            profiler = gw.profile("ingest", duration)
            top = await _phase(http, url, secret, pnid, connections, duration, "g1")
            if profiler is not None:
                profiler.wait(60)
            paced = await _phase(http, url, secret, pnid, connections, duration, "g2", rate=half)
            # Also at half the gateway's own top rate: the latency at a load it can carry.
            own = await _phase(
                http, url, secret, pnid, connections, duration, "g3", rate=top["req_per_s"] / 2
            )
            stored = await gw.rows(
                "SELECT count(*) FROM messages WHERE provider_message_id LIKE 'wamid.bench-%'"
            )
            results["gateway"] = {
                "max": top,
                "at_half_baseline": paced,
                "at_half_own": own,
                "stored": stored[0][0],
                "cpu_ms_per_message": gw.cpu_ms_per(cpu_before, stored[0][0]),
                **gw.usage(),
            }
        finally:
            gw.stop()
    results["ratio_req_per_s"] = round(
        results["gateway"]["max"]["req_per_s"] / results["baseline"]["max"]["req_per_s"], 2
    )
    results["target"] = ">= 0.30 of baseline req/s; p99 <= 50 ms at half the baseline rate"
    return results
