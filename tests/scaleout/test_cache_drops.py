"""Two gateways: a template changed through one governs the next send through the other (the change
reaches the other's cache over Redis); while Redis is unreachable a gateway keeps nothing cached."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from tests.gateway.policy_support import LOOPBACK, configure_channel, send_to
from tests.harness import Gateway, start_gateway
from tests.services import free_port

REF = {"name": "order_update", "language": "en_US", "params": ["A1"]}


async def _subscribed(gw: Gateway) -> None:
    assert gw.container.cache_drops is not None
    async with asyncio.timeout(10):
        await gw.container.cache_drops.subscribed.wait()


async def test_a_template_changed_on_one_gateway_governs_the_next_send_on_the_other(
    tmp_path: Path, redis_db: str
):
    cluster = {"redis_url": redis_db}  # both gateways share the SQLite file in tmp_path
    a = await start_gateway(tmp_path, settings=cluster)
    b = await start_gateway(tmp_path, settings=cluster)
    try:
        await _subscribed(a)
        await _subscribed(b)
        await configure_channel(a, service_window=True, metered=False, consent=False)
        code, template = await a.api(
            "POST",
            f"/channels/{LOOPBACK}/templates",
            json_body={
                "name": "order_update",
                "language": "en_US",
                "category": "utility",
                "body": "Order {{1}}.",
            },
        )
        assert code == 201, template
        numbers = iter(range(100))

        caches = b.container.caches

        async def send_on_b() -> dict:
            return await send_to(b, f"+155507100{next(numbers):02d}", None, template=REF)

        async def until(refused: bool) -> dict:
            """Send through b until the outcome is as wanted; each try waits for the next drop on b
            (one that lands during a send counts: it may have come after the send's read)."""
            async with asyncio.timeout(10):
                while True:
                    seen = caches.drops
                    sent = await send_on_b()
                    if (sent["status"] == "failed") is refused:
                        return sent
                    await caches.wait_drops(seen + 1)

        assert (await until(refused=False))["status"] == "queued"  # b reads the template, then keeps it

        code, _ = await a.api(
            "PATCH", f"/channels/{LOOPBACK}/templates/{template['id']}", json_body={"status": "paused"}
        )
        assert code == 200
        refused = await until(refused=True)
        assert (refused["reason"], "paused" in refused["error_detail"]) == ("template_required", True)
    finally:
        await b.close()
        await a.close()


async def test_without_redis_nothing_is_kept(tmp_path: Path):
    gw = await start_gateway(tmp_path, settings={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        await configure_channel(gw, service_window=True, metered=False, consent=False)
        code, template = await gw.api(
            "POST",
            f"/channels/{LOOPBACK}/templates",
            json_body={
                "name": "order_update",
                "language": "en_US",
                "category": "utility",
                "body": "Order {{1}}.",
            },
        )
        assert code == 201
        first = await send_to(gw, "+15550720001", None, template=REF)
        assert first["status"] == "queued"
        # Changed behind the gateway's back (as another process would, unheard): seen all the same.
        async with gw.container.db.write() as session:
            await session.execute(
                text("UPDATE message_templates SET status = 'paused' WHERE id = :id"),
                {"id": template["id"]},
            )
        second = await send_to(gw, "+15550720002", None, template=REF)
        assert (second["status"], second["reason"]) == ("failed", "template_required")
    finally:
        await gw.close()
