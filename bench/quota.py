"""Quota exactness: many concurrent business-initiated sends around the monthly conversation limit.

Each send opens a new conversation with a new contact, so each is billable. Exactly ``limit`` may go
out; the rest must be refused for the quota, and the five tier alerts (70/80/90/95/100 %) must be mailed
once each (to an aiosmtpd sink given as SWITCHBOARD_SMTP_URL).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from email import message_from_bytes
from typing import Any

import aiohttp
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.common import free_port, stop_process, summary_ms
from bench.deployment import deploy
from bench.send import TEMPLATE, broadcast_channel, many, recipient, start_simulator


class _Sink:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.subjects.append(str(message_from_bytes(content).get("Subject", "")))
        return "250 OK"


async def run(
    sends: int = 10_000,
    limit: int = 1_000,
    concurrency: int = 256,
    env: dict[str, str] | None = None,
    mode: str = "embedded",
) -> dict[str, Any]:
    """Concurrent sends around the limit through the gateway(s) of ``mode`` (scale-out: round robin
    over both gateways; the alert mails leave from the workers)."""
    results: dict[str, Any] = {"sends": sends, "limit": limit, "concurrency": concurrency, "mode": mode}
    sink = _Sink()
    smtp_port = free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", smtp_port)
    token, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    gw = await deploy(mode, {**(env or {}), "SWITCHBOARD_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"})
    sim = None
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=300)
        ) as http:
            port = free_port()
            channel = await broadcast_channel(http, gw, port, token, secret, limit)
            sim = await start_simulator(port, channel["webhook_url"], token, secret)
            headers = {"Authorization": f"Bearer {gw.token}"}

            async def one(n: int) -> bool:
                body = {"channel_id": channel["id"], "to": recipient(500_000 + n), "template": TEMPLATE}
                async with http.post(f"{gw.url(n)}/api/v1/messages", json=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status == 201

            lat, errors, elapsed = await many(sends, concurrency, one)
            # Alert mail leaves through the outbox after the commit: wait (bounded) for five.
            waited = time.monotonic()
            while len(sink.subjects) < 5 and time.monotonic() - waited < 60:
                await asyncio.sleep(0.2)  # mail arrives from another process: polled, bounded
            ch = channel["id"]
            statuses = dict(
                await gw.rows(
                    "SELECT coalesce(reason, status), count(*) FROM messages WHERE channel_id = ? AND kind = 'outgoing' GROUP BY 1",
                    (ch,),
                )
            )
            used = await gw.rows("SELECT used FROM quota_usage")
            alerts = await gw.rows("SELECT tier FROM quota_alerts ORDER BY tier")
            conversations = (
                await gw.rows(
                    "SELECT count(DISTINCT m.conversation_id) FROM messages m WHERE m.channel_id = ? AND m.kind = 'outgoing' AND m.status != 'failed'",
                    (ch,),
                )
            )[0][0]
            results.update(
                {
                    **summary_ms(lat),
                    "api_errors": errors,
                    "sends_per_s": round(len(lat) / elapsed, 1),
                    "outcomes": statuses,
                    "conversations_sent": conversations,
                    "quota_used": used[0][0] if used else None,
                    "alert_tiers": [a[0] for a in alerts],
                    "alert_mails": len(sink.subjects),
                    "exact": conversations == limit and (used[0][0] if used else None) == limit,
                    **gw.usage(),
                }
            )
    finally:
        if sim is not None:
            stop_process(sim)
        gw.stop()
        server.close()
    results["target"] = "exactly `limit` conversations, 5 alerts"
    return results
