"""Notifications: preferences, in-app notices on the stream, batched mail at an SMTP sink, hand-offs,
mentions in notes."""

from __future__ import annotations

import asyncio
import email.policy
import json
from email import message_from_bytes
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from inbox import tables as t
from tests.conftest import SmtpSink
from tests.harness import Gateway, ManualClock, StreamClient, jobs_done, start_gateway
from tests.routing.support import create, online_agent

CONVERSATION = 1  # the demo's first conversation, in inbox 1


async def notification(stream: StreamClient, timeout: float = 10) -> dict[str, Any]:
    """The next ``notification`` frame on a stream (events in between are skipped)."""

    async def read() -> dict[str, Any]:
        while True:
            msg = await stream.ws.receive()
            frame = json.loads(msg.data)
            if frame.get("type") == "notification":
                return frame["notification"]

    return await asyncio.wait_for(read(), timeout)


async def mails_sent(gw: Gateway) -> list[t.OutgoingMail]:
    await gw.container.mail.deliver_due()  # what is due goes out now (the queue also runs on its own)
    async with gw.container.db.read() as session:
        return list(await session.scalars(select(t.OutgoingMail).order_by(t.OutgoingMail.id)))


async def test_email_on_assignment_one_mail_per_window_and_the_notice_on_the_stream(
    tmp_path: Path, smtp_sink: SmtpSink, clock: ManualClock
):
    gw = await start_gateway(
        tmp_path,
        clock=clock,
        settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}", "notification_mail_minutes": 10},
    )
    try:
        agent, token = await gw.user("sam@example.org", inbox_ids=[1])
        status, prefs = await gw.api(
            "PUT",
            "/users/me/notification-preferences",
            token=token,
            json_body={"preferences": {"assigned": {"email": True}, "new_message": {"email": True}}},
        )
        assert status == 200, prefs
        assert prefs["preferences"]["assigned"] == {"in_app": True, "email": True}
        stream = await gw.stream(token=token)
        await stream.ready()

        status, _ = await gw.api("PATCH", f"/conversations/{CONVERSATION}", json_body={"assignee_id": agent})
        assert status == 200
        notice = await notification(stream)
        assert notice["kind"] == "assigned" and notice["conversation_id"] == CONVERSATION
        (mail,) = await smtp_sink.wait_for(1)
        assert mail.rcpt_tos == ["sam@example.org"]
        assert "You were assigned conversation #1" in mail.content.decode()

        # The contact writes again within the window: in the page at once, by mail only later.
        loop = await gw.loopback()
        await loop.customer_writes("+15550123456", "Any news?")
        notice = await notification(stream)
        assert notice["kind"] == "new_message" and notice["body"] == "Any news?"
        assert len(await mails_sent(gw)) == 1
        assert await gw.container.notifier.flush_due(gw.container.db, clock()) == 0  # the window is open
        assert len(smtp_sink.messages) == 1

        clock.advance(minutes=11)
        assert await gw.container.notifier.flush_due(gw.container.db, clock()) == 1
        await mails_sent(gw)
        (_, second) = await smtp_sink.wait_for(2)
        assert "New message in conversation #1" in second.content.decode()
        assert "Any news?" in second.content.decode()
        assert await gw.container.notifier.flush_due(gw.container.db, clock()) == 0  # nothing held back now

        status, listed = await gw.api("GET", "/notifications", token=token)
        assert [n["kind"] for n in listed["items"]] == ["new_message", "assigned"]
        assert listed["unread_count"] == 2
        status, read = await gw.api(
            "POST", "/notifications/read", token=token, json_body={"ids": [listed["items"][1]["id"]]}
        )
        assert read == {"unread_count": 1}
        status, read = await gw.api("POST", "/notifications/read", token=token, json_body={"all": True})
        assert read == {"unread_count": 0}
    finally:
        await gw.close()


HANDOFF_BOT = """
name: Intake
start: welcome
states:
  welcome:
    say: Hi! Type anything, or ask for a human.
    buttons:
      - {label: People, next: to_people}
  to_people:
    handoff: {message: Connecting you with an agent now.}
"""


async def _bot_on_loopback(gw: Gateway) -> None:
    bot = await create(gw, "/bots", {"name": "Intake", "kind": "flow", "source": HANDOFF_BOT})
    await create(
        gw,
        "/rules",
        {
            "name": "Everyone meets the bot",
            "triggers": ["conversation_created"],
            "conditions": [{"type": "channel_kind", "kinds": ["loopback"]}],
            "actions": [{"type": "start_bot", "flow_id": bot["id"]}],
        },
    )


async def test_a_hand_off_notifies_the_assigned_agent(gateway: Gateway):
    gw = gateway
    await create(gw, "/assignment-policies", {"inbox_id": 1})
    agent, token = await online_agent(gw, "kim@example.org")
    await _bot_on_loopback(gw)
    stream = await gw.stream(token=token)
    await stream.ready()
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550700001", "hello")
    await jobs_done(gw)
    await loop.customer_writes("+15550700001", "I want a human")
    notice = await notification(stream)
    assert notice["kind"] == "handoff" and notice["conversation_id"] == got.conversation_id
    status, conv = await gw.api("GET", f"/conversations/{got.conversation_id}")
    assert conv["assignee_id"] == agent


async def test_a_hand_off_nobody_is_assigned_reaches_the_teams_online_members(gateway: Gateway):
    gw = gateway
    _, outsider = await online_agent(gw, "lee@example.org")  # online, in the inbox, not in the team
    status, _ = await gw.api("PATCH", "/users/me", json_body={"availability": "online"})  # Ada, in the team
    await _bot_on_loopback(gw)
    admin_stream = await gw.stream()
    await admin_stream.ready()
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550700002", "hello")
    await jobs_done(gw)
    await loop.customer_writes("+15550700002", "human please")
    notice = await notification(admin_stream)
    assert notice["kind"] == "handoff" and notice["conversation_id"] == got.conversation_id
    status, listed = await gw.api("GET", "/notifications", token=outsider)
    assert [n["kind"] for n in listed["items"]] == []


async def test_mentions_in_notes(gateway: Gateway):
    gw = gateway
    _, member = await gw.user("rita@example.org", inbox_ids=[1])
    await gw.user("otto@example.org")  # in the account, not in the inbox
    stream = await gw.stream(token=member)
    await stream.ready()
    status, note = await gw.api(
        "POST",
        f"/conversations/{CONVERSATION}/messages",
        json_body={"text": "@rita can you check?", "private": True},
    )
    assert status == 201, note
    notice = await notification(stream)
    assert notice["kind"] == "mention" and notice["body"] == "@rita can you check?"

    async with gw.container.db.read() as session:
        before = await session.scalar(select(func.count()).select_from(t.Message))
    status, error = await gw.api(
        "POST", f"/conversations/{CONVERSATION}/messages", json_body={"text": "ask @otto", "private": True}
    )
    assert status == 422 and error["error"]["details"][0]["field"] == "text", error
    assert "not in this inbox" in error["error"]["message"]
    async with gw.container.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(t.Message)) == before
    # A word that names nobody is plain text; a reply (not a note) mentions nobody.
    status, _ = await gw.api(
        "POST", f"/conversations/{CONVERSATION}/messages", json_body={"text": "mail @nobody", "private": True}
    )
    assert status == 201


async def test_preferences_refuse_unknown_kinds_and_keep_what_is_left_out(gateway: Gateway):
    gw = gateway
    _, token = await gw.user("pat@example.org", inbox_ids=[1])
    status, prefs = await gw.api("GET", "/users/me/notification-preferences", token=token)
    assert set(prefs["preferences"]) == {
        "new_conversation",
        "assigned",
        "new_message",
        "mention",
        "handoff",
        "ticket_assigned",
        "quota_tier",
    }
    assert prefs["preferences"]["new_conversation"] == {"in_app": False, "email": False}
    for body, field in [
        ({"preferences": {"birthday": {"email": True}}}, "preferences.birthday"),
        ({"preferences": {"assigned": {"sms": True}}}, "preferences.assigned.sms"),
        ({"preferences": {"assigned": {"email": "yes please"}}}, "preferences.assigned.email"),
    ]:
        status, error = await gw.api("PUT", "/users/me/notification-preferences", token=token, json_body=body)
        assert status == 422 and error["error"]["details"][0]["field"] == field, error
    await gw.api(
        "PUT",
        "/users/me/notification-preferences",
        token=token,
        json_body={"preferences": {"mention": {"in_app": False}}},
    )
    status, prefs = await gw.api(
        "PUT",
        "/users/me/notification-preferences",
        token=token,
        json_body={"preferences": {"mention": {"email": True}}},
    )
    assert prefs["preferences"]["mention"] == {"in_app": False, "email": True}


async def test_a_ticket_assigned_notifies_its_owner(gateway: Gateway):
    gw = gateway
    owner, token = await gw.user("olga@example.org", inbox_ids=[1])
    stream = await gw.stream(token=token)
    await stream.ready()
    status, ticket = await gw.api("POST", "/tickets", json_body={"title": "Refund", "inbox_id": 1})
    status, _ = await gw.api("PATCH", f"/tickets/{ticket['id']}", json_body={"owner_id": owner})
    notice = await notification(stream)
    assert notice["kind"] == "ticket_assigned" and notice["ticket_id"] == ticket["id"]


async def test_notices_and_their_mail_are_in_the_agents_language(
    tmp_path: Path, smtp_sink: SmtpSink, clock: ManualClock
):
    gw = await start_gateway(
        tmp_path,
        clock=clock,
        settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}", "notification_mail_minutes": 10},
    )
    try:
        agent, token = await gw.user("rui@example.org", inbox_ids=[1])
        status, _ = await gw.api("PATCH", "/users/me", token=token, json_body={"language": "pt-BR"})
        assert status == 200
        prefs = {"assigned": {"email": True}, "new_message": {"email": True}}
        status, _ = await gw.api(
            "PUT", "/users/me/notification-preferences", token=token, json_body={"preferences": prefs}
        )
        assert status == 200
        stream = await gw.stream(token=token)
        await stream.ready()

        status, _ = await gw.api("PATCH", f"/conversations/{CONVERSATION}", json_body={"assignee_id": agent})
        assert status == 200
        notice = await notification(stream)
        assert notice["title"] == "A conversa #1 foi atribuída a você"
        (mail,) = await smtp_sink.wait_for(1)
        message = message_from_bytes(mail.content, policy=email.policy.default)
        assert message["Subject"] == "A conversa #1 foi atribuída a você"
        plain = message.get_body(preferencelist=("plain",))
        assert plain is not None
        body = plain.get_content()
        assert "Abrir: " in body and "Mude o que você recebe" in body and "Open:" not in body

        # Two notices held back by the window go out in one mail whose subject counts them in Portuguese.
        loop = await gw.loopback()
        await loop.customer_writes("+15550123456", "Alguma novidade?")
        await loop.customer_writes("+15550123456", "Oi?")
        for _ in range(2):
            assert (await notification(stream))["title"] == "Nova mensagem na conversa #1"
        clock.advance(minutes=11)
        assert await gw.container.notifier.flush_due(gw.container.db, clock()) == 1
        await mails_sent(gw)
        (_, second) = await smtp_sink.wait_for(2)
        subject = message_from_bytes(second.content, policy=email.policy.default)["Subject"]
        assert subject == "2 notificações: Nova mensagem na conversa #1"

        # The admin, who reads English, gets the same kind of notice in English.
        status, _ = await gw.api("PATCH", f"/conversations/{CONVERSATION}", json_body={"assignee_id": 1})
        status, listed = await gw.api("GET", "/notifications")
        assert listed["items"][0]["title"] == "You were assigned conversation #1"
    finally:
        await gw.close()
