"""Satisfaction surveys: a rating card in the web chat after resolution, the rating in the report, and
a WhatsApp survey outside the service window recorded as not sent."""

from __future__ import annotations

from pathlib import Path

from inbox.model import InboundMessage
from tests.gateway.widget_tabs import Tab, add_webchat_channel, open_tab
from tests.harness import Gateway, ManualClock, jobs_done, start_gateway


async def _from_us(tab: Tab) -> dict:
    """The next message the visitor's tab shows from our side (its own messages come back too)."""
    while (frame := await tab.next("message"))["from"] == "visitor":
        pass
    return frame


async def _enable(gw: Gateway, inbox_id: int = 1, **settings: object) -> dict:
    status, body = await gw.api("PUT", f"/inboxes/{inbox_id}/csat", json_body={"enabled": True, **settings})
    assert status == 200, body
    return body


async def test_a_resolved_web_chat_gets_a_rating_card_and_the_rating_lands_in_the_report(gateway: Gateway):
    gw = gateway
    await add_webchat_channel(gw, "shop-token")
    await _enable(gw)
    tab = await open_tab(gw.http, gw.base_url, "shop-token", "visitor-csat-key-0123456789abc")
    await tab.ws.send_json({"type": "message", "client_id": "c1", "text": "Where is my parcel?"})
    await tab.next("ack")
    status, page = await gw.api("GET", "/conversations?channel_kind=webchat")
    (conversation,) = page["items"]

    status, _ = await gw.api(
        "PATCH", f"/conversations/{conversation['id']}", json_body={"assignee_id": 1, "status": "resolved"}
    )
    assert status == 200
    card = await _from_us(tab)
    assert card["text"] == "How would you rate the help you got? 1 is poor, 5 is excellent."
    assert card["buttons"] == ["1", "2", "3", "4", "5"]

    # The visitor taps 5: the widget sends the label as their message.
    await tab.ws.send_json({"type": "message", "client_id": "c2", "text": "5"})
    thanks = await _from_us(tab)
    assert thanks["text"] == "Thank you for your feedback!"

    status, surveys = await gw.api("GET", f"/conversations/{conversation['id']}/csat")
    (survey,) = surveys["items"]
    assert (survey["status"], survey["rating"], survey["agent_id"]) == ("answered", 5, 1)
    # Answering the survey did not reopen the conversation.
    status, again = await gw.api("GET", f"/conversations/{conversation['id']}")
    assert again["status"] == "resolved"

    status, report = await gw.api("GET", "/reports/csat")
    assert status == 200, report
    assert (report["sent"], report["answered"], report["median"]) == (1, 1, 5.0)
    assert report["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
    assert [(a["agent_id"], a["answered"], a["median"]) for a in report["agents"]] == [(1, 1, 5.0)]
    assert report["satisfied_percent"] == 100.0

    # A history replay shows the card's buttons too (a reload of the page).
    fresh = await open_tab(gw.http, gw.base_url, "shop-token", "visitor-csat-key-0123456789abc")
    replayed = [f for f in fresh.frames if f["type"] == "message" and f.get("buttons")]
    assert replayed and replayed[0]["buttons"] == ["1", "2", "3", "4", "5"]


async def _whatsapp_conversation(gw: Gateway) -> tuple[int, int]:
    status, channels = await gw.api("GET", "/channels")
    whatsapp = next(c for c in channels["items"] if c["kind"] == "whatsapp")
    received = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=whatsapp["id"],
            provider_message_id="wamid.csat-1",
            sender="+5511987654321",
            sender_name="Joana",
            text="Meu pedido chegou quebrado",
        )
    )
    return whatsapp["id"], received.conversation_id


async def test_a_whatsapp_survey_outside_the_window_is_recorded_as_not_sent(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await _enable(gw, scale="emoji")
        channel_id, conversation_id = await _whatsapp_conversation(gw)
        # Opted in, so consent does not stand in the way: only the window does.
        _, conversation = await gw.api("GET", f"/conversations/{conversation_id}")
        status, body = await gw.api(
            "POST",
            f"/contacts/{conversation['contact_id']}/consent",
            json_body={"channel_id": channel_id, "state": "opted_in"},
        )
        assert status in (200, 201), body
        clock.advance(hours=25)  # the contact wrote more than 24 h ago
        status, _ = await gw.api(
            "PATCH", f"/conversations/{conversation_id}", json_body={"status": "resolved"}
        )
        assert status == 200
        await gw.container.csat.send_due()
        await jobs_done(gw)
        status, surveys = await gw.api("GET", f"/conversations/{conversation_id}/csat")
        (survey,) = surveys["items"]
        assert (survey["status"], survey["reason"]) == ("not_sent", "window_closed")
        status, messages = await gw.api("GET", f"/conversations/{conversation_id}/messages")
        (refused,) = [m for m in messages["items"] if m["id"] == survey["message_id"]]
        assert (refused["status"], refused["reason"]) == ("failed", "window_closed")
        status, report = await gw.api("GET", "/reports/csat")
        assert (report["sent"], report["not_sent"], report["not_sent_reasons"]) == (
            0,
            1,
            {"window_closed": 1},
        )
    finally:
        await gw.close()


async def test_inside_the_window_the_whatsapp_survey_goes_with_buttons_and_a_follow_up_takes_a_comment(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await _enable(gw, follow_up=True, question="Como foi o atendimento?")
        channel_id, conversation_id = await _whatsapp_conversation(gw)
        await gw.api("PATCH", f"/conversations/{conversation_id}", json_body={"status": "resolved"})
        await gw.container.csat.send_due()
        status, surveys = await gw.api("GET", f"/conversations/{conversation_id}/csat")
        (survey,) = surveys["items"]
        assert survey["status"] == "sent"
        status, messages = await gw.api("GET", f"/conversations/{conversation_id}/messages")
        (question,) = [m for m in messages["items"] if m["id"] == survey["message_id"]]
        # Five choices are more than WhatsApp's three reply buttons: numbered text instead.
        assert question["text"].startswith("Como foi o atendimento?\n\n1. 1")

        for n, text in enumerate(("4", "Rápido, mas a caixa veio amassada"), start=2):
            await gw.container.pipeline.receive(
                InboundMessage(
                    channel_id=channel_id,
                    provider_message_id=f"wamid.csat-{n}",
                    sender="+5511987654321",
                    text=text,
                )
            )
        status, surveys = await gw.api("GET", f"/conversations/{conversation_id}/csat")
        (survey,) = surveys["items"]
        assert (survey["status"], survey["rating"], survey["comment"]) == (
            "answered",
            4,
            "Rápido, mas a caixa veio amassada",
        )
        status, conversation = await gw.api("GET", f"/conversations/{conversation_id}")
        assert conversation["status"] == "resolved"
    finally:
        await gw.close()


async def test_settings_are_admin_only_and_checked(gateway: Gateway):
    _, agent_token = await gateway.user("agent-csat@example.org", "agent", inbox_ids=[1])
    status, _ = await gateway.api("PUT", "/inboxes/1/csat", json_body={"enabled": True}, token=agent_token)
    assert status == 403
    status, body = await gateway.api("PUT", "/inboxes/1/csat", json_body={"enabled": True, "scale": "stars"})
    assert status == 422 and body["error"]["details"][0]["field"] == "scale"
    status, body = await gateway.api("GET", "/inboxes/1/csat")
    assert (status, body["enabled"]) == (200, False)
    status, body = await gateway.api("GET", "/reports/csat?agent_id=1", token=agent_token)
    assert status == 403
