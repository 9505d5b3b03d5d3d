"""Widget tabs on one gateway hear what happens on another: the event log, woken through Redis, is read
by each gateway's widget hub and routed to the visitor's own tabs there (and nobody else's)."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.widget_tabs import add_webchat_channel, open_tab
from tests.harness import start_gateway

TOKEN = "cluster-chat-0123456789"
KEY_A = "visitorAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "visitorBBBBBBBBBBBBBBBBBBBBBB"


async def test_a_visitors_tab_on_one_gateway_hears_another_gateways_events(tmp_path: Path, redis_db: str):
    cluster = {"redis_url": redis_db}  # both gateways share the SQLite file in tmp_path
    a = await start_gateway(tmp_path, settings=cluster)
    b = await start_gateway(tmp_path, settings=cluster)
    try:
        await add_webchat_channel(a, TOKEN)
        on_a = await open_tab(a.http, a.base_url, TOKEN, KEY_A)
        stranger_on_a = await open_tab(a.http, a.base_url, TOKEN, KEY_B)
        on_b = await open_tab(b.http, b.base_url, TOKEN, KEY_A)  # the same visitor's other tab

        # Gateway a never saw this conversation: its hub looks up whose it is once.
        await on_b.ws.send_json({"type": "message", "client_id": "m1", "text": "hello from tab two"})
        ack = await on_b.next("ack")
        shown = await on_a.next("message")
        assert (shown["id"], shown["text"], shown["from"]) == (ack["id"], "hello from tab two", "visitor")

        conversation_id = shown["conversation_id"]
        await b.api("POST", f"/conversations/{conversation_id}/typing", json_body={"typing": True})
        assert (await on_a.next("typing"))["typing"] is True
        status, read = await b.api("POST", f"/conversations/{conversation_id}/read", json_body={})
        assert status == 200
        assert (await on_a.next("read"))["up_to"] == read["up_to"] == ack["id"]

        assert await stranger_on_a.everything_until_pong() == []
    finally:
        await b.close()
        await a.close()
