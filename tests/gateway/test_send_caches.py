"""Sends read templates and profiles from the process's cache: a change through the API is seen at once."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.policy_support import LOOPBACK, configure_channel, send_to
from tests.harness import Gateway, start_gateway


async def test_a_template_changed_through_the_api_governs_the_next_send(tmp_path: Path):
    gw = await start_gateway(tmp_path)
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
        assert code == 201, template
        ref = {"name": "order_update", "language": "en_US", "params": ["A1"]}
        first = await send_to(gw, "+15550700001", None, template=ref)
        assert (first["status"], first["text"]) == ("queued", "Order A1.")

        path = f"/channels/{LOOPBACK}/templates/{template['id']}"
        code, _ = await gw.api("PATCH", path, json_body={"status": "rejected"})
        assert code == 200
        refused = await send_to(gw, "+15550700002", None, template=ref)
        assert (refused["status"], refused["reason"]) == ("failed", "template_required")
        assert "rejected" in refused["error_detail"]

        code, _ = await gw.api(
            "PATCH", path, json_body={"status": "approved", "body": "Order {{1}} ships {{2}}."}
        )
        assert code == 200
        short = await send_to(gw, "+15550700003", None, template=ref)
        assert (short["status"], short["reason"]) == ("failed", "template_required")
        both = await send_to(gw, "+15550700004", None, template={**ref, "params": ["A2", "today"]})
        assert (both["status"], both["text"]) == ("queued", "Order A2 ships today.")

        code, _ = await gw.api("DELETE", path)
        assert code == 204
        gone = await send_to(gw, "+15550700005", None, template={**ref, "params": ["A3", "today"]})
        assert (gone["status"], gone["reason"]) == ("failed", "template_required")
        assert "no template" in gone["error_detail"]
    finally:
        await gw.close()


async def _new_conversation_notices(gw: Gateway, token: str) -> list[int]:
    status, body = await gw.api("GET", "/notifications", token=token)
    assert status == 200, body
    return sorted(n["conversation_id"] for n in body["items"] if n["kind"] == "new_conversation")


async def test_new_members_and_changed_preferences_govern_the_next_notice(tmp_path: Path):
    """Inbox members and notification preferences are cached for the notices: changes are seen at once."""
    gw = await start_gateway(tmp_path)
    try:
        loop = await gw.loopback()
        wanted = {"preferences": {"new_conversation": {"in_app": True}}}
        _, ana = await gw.user("ana@example.org", inbox_ids=[1])
        status, _ = await gw.api("PUT", "/users/me/notification-preferences", token=ana, json_body=wanted)
        assert status == 200
        first = (await loop.customer_writes("+15550730001", "Hello")).conversation_id
        assert await _new_conversation_notices(gw, ana) == [first]

        _, bea = await gw.user("bea@example.org", inbox_ids=[1])  # a new member of the inbox
        status, _ = await gw.api("PUT", "/users/me/notification-preferences", token=bea, json_body=wanted)
        assert status == 200
        second = (await loop.customer_writes("+15550730002", "Hello")).conversation_id
        assert await _new_conversation_notices(gw, bea) == [second]

        off = {"preferences": {"new_conversation": {"in_app": False}}}
        status, _ = await gw.api("PUT", "/users/me/notification-preferences", token=ana, json_body=off)
        assert status == 200
        await loop.customer_writes("+15550730003", "Hello")
        assert await _new_conversation_notices(gw, ana) == [first, second]
    finally:
        await gw.close()
