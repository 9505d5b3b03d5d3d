"""The website chat's visitor endpoints without a browser: Origin check, signed identities, rate and
size limits, uploads, presence and offline email capture, chat flows — against a running gateway."""

from __future__ import annotations

import email.policy
import json
import logging
import struct
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.webchat.identity import sign_identifier
from tests.gateway.widget_tabs import add_webchat_channel
from tests.harness import Gateway, ManualClock, start_gateway

TOKEN = "shop-token-0123456789"
SHOP = "https://shop.example"
SECRET = "site-secret-for-hmac"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 1, 1) + b"\x08\x06\x00\x00\x00"
KEY_A = "visitorAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "visitorBBBBBBBBBBBBBBBBBBBBBB"


@pytest.fixture
async def gw(tmp_path: Path, clock: ManualClock):
    gateway = await start_gateway(tmp_path, clock=clock)
    status, channel = await gateway.api(
        "POST",
        "/channels",
        json_body={
            "inbox_id": 1,
            "kind": "webchat",
            "name": "Shop chat",
            "config": {
                "token": TOKEN,
                "allowed_origins": [SHOP],
                "identity_secret": SECRET,
                "prechat_fields": ["email"],
                "limits": {
                    "visitor_per_minute": 3,
                    "ip_per_minute": 5,
                    "max_text": 50,
                    "frames_per_minute": 30,
                    "max_upload_bytes": 2048,
                },
                "flows": [
                    {
                        "name": "pricing",
                        "url": {"op": "contains", "value": "/pricing"},
                        "action": "greeting",
                        "message": "Questions about plans?",
                        "after_seconds": 5,
                    },
                    {
                        "name": "returns",
                        "url": {"op": "regex", "value": "/orders/[0-9]+/return"},
                        "action": "bot",
                        "bot": "returns",
                    },
                ],
            },
        },
    )
    assert status == 201, channel
    gateway.channel_id = channel["id"]  # type: ignore[attr-defined]
    yield gateway
    await gateway.close()


class Visitor:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def next(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            self.frames.append(frame)
            if frame["type"] == type_:
                return frame

    async def say(self, client_id: str, text: str, **extra: Any) -> dict[str, Any]:
        await self.ws.send_json({"type": "message", "client_id": client_id, "text": text, **extra})
        while True:
            frame = await self._ack_or_error()
            if frame.get("client_id") == client_id:
                return frame

    async def _next_any(self) -> dict[str, Any]:
        msg = await self.ws.receive(10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame: dict[str, Any] = json.loads(msg.data)
        self.frames.append(frame)
        return frame

    async def _ack_or_error(self) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            self.frames.append(frame)
            if frame["type"] in ("ack", "error"):
                return frame


async def connect(gw: Gateway, *, origin: str | None = SHOP, after: int = 0, **params: str) -> Visitor:
    query = {"after": str(after), **params}
    headers = {"Origin": origin} if origin else {}
    ws = await gw.http.ws_connect(f"{gw.base_url}/webchat/{TOKEN}/ws", params=query, headers=headers)
    visitor = Visitor(ws)
    await visitor.next("ready")
    return visitor


def hello(visitor: Visitor) -> dict[str, Any]:
    return next(f for f in visitor.frames if f["type"] == "hello")


# -- Origin ---------------------------------------------------------------------------------------------


async def test_only_allowed_sites_and_the_gateway_itself_may_use_the_chat(gw: Gateway, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.webchat.endpoints")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(gw, origin="https://evil.example", key=KEY_A)
    assert refused.value.status == 403
    async with gw.http.get(
        f"{gw.base_url}/webchat/{TOKEN}/config", headers={"Origin": "https://evil.example"}
    ) as r:
        assert r.status == 403
        body = await r.json()
        assert body["error"]["code"] == "origin_refused" and "evil.example" in body["error"]["message"]
    form = aiohttp.FormData({"key": KEY_A, "client_id": "u1"})
    form.add_field("file", PNG, filename="a.png")
    async with gw.http.post(
        f"{gw.base_url}/webchat/{TOKEN}/upload",
        data=form,
        headers={"Origin": "http://127.0.0.1.evil.example"},
    ) as r:
        assert r.status == 403
    assert "refused origin https://evil.example" in caplog.text

    visitor = await connect(gw, origin=SHOP, key=KEY_A)
    assert hello(visitor)["verified"] is False
    async with gw.http.get(f"{gw.base_url}/webchat/{TOKEN}/config", headers={"Origin": SHOP}) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == SHOP
    await connect(gw, origin=gw.base_url, key=KEY_B)  # the gateway's own /demo/ page
    with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
        await gw.http.ws_connect(f"{gw.base_url}/webchat/no-such-token/ws?key={KEY_A}")
    assert unknown.value.status == 404


# -- identity -------------------------------------------------------------------------------------------


async def test_a_signed_identity_follows_the_user_and_a_forged_one_is_refused(gw: Gateway, caplog):
    caplog.set_level(logging.WARNING, logger="channels.webchat.adapter")
    signature = sign_identifier(SECRET, "alice@example.com")
    laptop = await connect(gw, key=KEY_A, identifier="alice@example.com", signature=signature)
    assert hello(laptop)["verified"] is True
    ack = await laptop.say("m1", "my invoice is wrong", context={"page_url": f"{SHOP}/billing"})
    assert ack["type"] == "ack"

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(
            gw,
            key=KEY_B,
            identifier="alice@example.com",
            signature=sign_identifier("guess", "alice@example.com"),
        )
    assert refused.value.status == 403
    assert "identity_refused" in caplog.text

    # Another browser with the site's signature sees Alice's history; an anonymous one does not.
    phone = await connect(gw, key=KEY_B, identifier="alice@example.com", signature=signature)
    assert [f["text"] for f in phone.frames if f["type"] == "message"] == ["my invoice is wrong"]
    stranger = await connect(gw, key=KEY_B)
    assert [f for f in stranger.frames if f["type"] == "message"] == []

    status, conv = await gw.api("GET", "/conversations?inbox_id=1")
    mine = [c for c in conv["items"] if c["channel_id"] == gw.channel_id]  # type: ignore[attr-defined]
    status, contact = await gw.api("GET", f"/contacts/{mine[0]['contact_id']}")
    assert contact["identities"] == [{"kind": "webchat", "address": "user:alice@example.com"}]
    assert contact["attributes"]["webchat"]["verified"] is True


# -- limits ---------------------------------------------------------------------------------------------


async def test_size_and_rate_limits_refuse_clearly_and_recover(gw: Gateway, clock: ManualClock, caplog):
    caplog.set_level(logging.WARNING, logger="channels.webchat.adapter")
    a = await connect(gw, key=KEY_A)
    too_long = await a.say("long", "x" * 51)
    assert too_long["type"] == "error" and too_long["code"] == "message_too_long"
    assert "50 characters" in too_long["message"]

    for i in range(3):
        assert (await a.say(f"a{i}", f"hello {i}"))["type"] == "ack"
    limited = await a.say("a3", "one too many")
    assert limited["code"] == "rate_limited" and limited["retry_after"] == pytest.approx(60)
    assert "too fast" in limited["message"]

    # Another visitor from the same IP: the per-IP limit (5 a minute) stops them after two.
    b = await connect(gw, key=KEY_B)
    assert (await b.say("b0", "hi"))["type"] == "ack"
    assert (await b.say("b1", "hi again"))["type"] == "ack"
    assert (await b.say("b2", "and again"))["code"] == "rate_limited"
    assert caplog.text.count("refused rate_limited") == 2

    clock.advance(seconds=61)
    assert (await a.say("a3", "one too many"))["type"] == "ack"  # the same client id, now accepted

    # A re-send of an acknowledged message (a reconnect) is stored once and acknowledged again.
    again = await a.say("a0", "hello 0")
    assert again["type"] == "ack" and again["duplicate"] is True


# -- uploads --------------------------------------------------------------------------------------------


async def upload(
    gw: Gateway, data: bytes, filename: str, client_id: str, key: str = KEY_A
) -> tuple[int, Any]:
    form = aiohttp.FormData({"key": key, "client_id": client_id, "context": json.dumps({"page_url": SHOP})})
    form.add_field("file", data, filename=filename, content_type="image/png")
    async with gw.http.post(
        f"{gw.base_url}/webchat/{TOKEN}/upload", data=form, headers={"Origin": SHOP}
    ) as r:
        return r.status, await r.json()


async def test_uploads_are_checked_by_content_and_size_and_served_safely(gw: Gateway):
    visitor = await connect(gw, key=KEY_A)
    status, body = await upload(gw, PNG, "photo.png", "f1")
    assert status == 201, body
    shown = await visitor.next("message")
    assert shown["id"] == body["id"] and shown["from"] == "visitor"
    [attachment] = shown["attachments"]
    assert attachment["content_type"] == "image/png" and attachment["filename"] == "photo.png"
    async with gw.http.get(gw.base_url + attachment["url"]) as r:
        assert r.status == 200 and await r.read() == PNG
        assert r.headers["Content-Type"] == "image/png" and r.headers["X-Content-Type-Options"] == "nosniff"
    async with gw.http.get(gw.base_url + attachment["url"].replace("t=image", "t=text")) as r:
        assert r.status == 404  # the link is signed with its type: no re-typing a file as HTML

    status, body = await upload(gw, b"<html><script>alert(1)</script></html>\x00", "cute.png", "f2")
    assert status == 422 and body["error"]["code"] == "file_type_refused"
    status, body = await upload(gw, b"MZ\x90\x00" + bytes(100), "invoice.pdf", "f3")
    assert status == 422 and body["error"]["code"] == "file_type_refused"
    status, body = await upload(gw, PNG + bytes(3000), "huge.png", "f4")
    assert status == 413 and body["error"]["code"] == "file_too_large"

    status, messages = await gw.api("GET", f"/conversations/{shown['conversation_id']}/messages")
    assert [m["content_type"] for m in messages["items"]] == ["image"]  # refused files left no trace


# -- presence, offline capture, flows -------------------------------------------------------------------


async def config(gw: Gateway, page_url: str = SHOP, first_visit: bool = False) -> dict[str, Any]:
    params = {"page_url": page_url, "first_visit": "1" if first_visit else "0"}
    async with gw.http.get(
        f"{gw.base_url}/webchat/{TOKEN}/config", params=params, headers={"Origin": SHOP}
    ) as r:
        assert r.status == 200
        return await r.json()


async def test_presence_follows_agents_and_offline_visitors_leave_an_email(gw: Gateway):
    body = await config(gw)
    # No offline_message of the channel's own: the widget says its default in the visitor's language.
    assert body["presence"] == "offline" and body["channel"]["offline_message"] is None
    assert body["channel"]["prechat_fields"] == ["email"] and "identity_secret" not in body["channel"]

    visitor = await connect(gw, key=KEY_A)
    assert hello(visitor)["presence"] == "offline"
    await gw.api("PATCH", "/users/me", json_body={"availability": "away"})
    assert (await visitor.next("presence"))["presence"] == "away"
    await gw.api("PATCH", "/users/me", json_body={"availability": "online"})
    assert (await visitor.next("presence"))["presence"] == "online"
    assert (await config(gw))["presence"] == "online"
    status, body = await gw.api("PATCH", "/users/me", json_body={"availability": "busy"})
    assert status == 422 and "availability" in body["error"]["message"]

    # The email from the offline form lands on the contact.
    ack = await visitor.say("q1", "Do you ship to Norway?", profile={"email": "Ola@Example.NO"})
    await gw.api("PATCH", "/users/me", json_body={"availability": "offline"})
    await visitor.ws.send_json({"type": "profile", "email": "ola.nordmann@example.no"})
    assert (await visitor.next("profile_saved"))["stored"] is True
    status, messages = await gw.api("GET", "/conversations?inbox_id=1")
    conv = next(c for c in messages["items"] if c["channel_id"] == gw.channel_id)  # type: ignore[attr-defined]
    status, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["email"] == "ola.nordmann@example.no"
    assert ack["type"] == "ack"


async def test_business_hours_closed_means_offline_even_with_agents_online(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)  # the clock says Tuesday 12:00 UTC
    try:
        await gw.api("PATCH", "/users/me", json_body={"availability": "online"})
        await gw.api(
            "POST",
            "/channels",
            json_body={
                "inbox_id": 1,
                "kind": "webchat",
                "name": "Mondays",
                "config": {
                    "token": TOKEN,
                    "allowed_origins": [SHOP],
                    "business_hours": {"timezone": "UTC", "days": {"mon": [["09:00", "17:00"]]}},
                },
            },
        )
        assert (await config(gw))["presence"] == "offline"
        clock.advance(days=6)  # Monday 12:00
        assert (await config(gw))["presence"] == "online"
    finally:
        await gw.close()


async def test_chat_flows_pick_greeting_bot_or_live_by_page_and_are_recorded(gw: Gateway):
    pricing = await config(gw, f"{SHOP}/pricing")
    assert pricing["flow"] == {
        "action": "greeting",
        "message": "Questions about plans?",
        "bot": None,
        "after_seconds": 5,
        "rule": "pricing",
    }
    returns = await config(gw, f"{SHOP}/orders/42/return")
    assert returns["flow"]["action"] == "bot" and returns["flow"]["bot"] == "returns"
    assert (await config(gw, f"{SHOP}/about"))["flow"]["action"] == "live"

    visitor = await connect(gw, key=KEY_A)
    context = {
        "page_url": f"{SHOP}/orders/42/return",
        "flow": "bot",
        "bot": "returns",
        "referrer": "https://search.example/?q=tent",
        "language": "nb-NO",
        "user_agent": "TestBrowser/1.0",
        "time_on_page": 12,
        "evil": "x" * 10,
    }
    await visitor.say("r1", "I want to return my tent", context=context)
    status, convs = await gw.api("GET", "/conversations?inbox_id=1")
    conv = next(c for c in convs["items"] if c["channel_id"] == gw.channel_id)  # type: ignore[attr-defined]
    status, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
    recorded = contact["attributes"]["webchat"]
    assert recorded == {**{k: v for k, v in context.items() if k != "evil"}, "verified": False}


async def test_replies_receipts_and_other_tabs_arrive_through_the_event_log_too(gw: Gateway):
    """As if replies were sent by a worker in another process: this process's sockets never get a push."""
    tab1 = await connect(gw, key=KEY_A)
    ack = await tab1.say("c1", "hello from tab one")
    adapter = await gw.container.adapters.get(gw.channel_id)  # type: ignore[attr-defined]

    async def elsewhere(address: str, frame: Any) -> int:
        return 0

    adapter.push = elsewhere  # type: ignore[attr-defined]
    tab2 = await connect(gw, key=KEY_A)
    [first] = [f for f in tab2.frames if f["type"] == "message"]
    conversation_id = first["conversation_id"]

    await tab1.say("c2", "and again")
    assert (await tab2.next("message"))["text"] == "and again"
    await gw.api("POST", f"/conversations/{conversation_id}/typing", json_body={"typing": True})
    assert (await tab2.next("typing")) == {"type": "typing", "typing": True, "name": "Ada"}
    status, read = await gw.api("POST", f"/conversations/{conversation_id}/read", json_body={})
    assert (await tab1.next("read"))["up_to"] == read["up_to"] > ack["id"]
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "Hello from a worker"}
    )
    for tab in (tab1, tab2):
        shown = await tab.next("message")
        while shown["id"] != reply["id"]:
            shown = await tab.next("message")
        assert shown["text"] == "Hello from a worker" and shown["agent"] == {"name": "Ada"}


async def test_a_socket_flooding_frames_is_refused(gw: Gateway, caplog):
    caplog.set_level(logging.WARNING, logger="channels.webchat.adapter")
    visitor = await connect(gw, key=KEY_B)
    for _ in range(31):
        await visitor.ws.send_json({"type": "ping"})
    answers = [await visitor._next_any() for _ in range(31)]
    assert [a["type"] for a in answers].count("pong") == 30
    assert answers[-1]["type"] == "error" and answers[-1]["code"] == "rate_limited"
    assert "refused rate_limited" in caplog.text


def status_is(message_id: int, status: str) -> Callable[[dict[str, Any]], bool]:
    def match(e: dict[str, Any]) -> bool:
        m = e["data"].get("message") or {}
        return e["type"] == "message.updated" and m.get("id") == message_id and m.get("status") == status

    return match


async def test_resume_after_a_drop_gets_exactly_what_was_missed(tmp_path: Path, database_url: str | None):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        await add_webchat_channel(gw, TOKEN, "Resume")
        visitor = await connect(gw, origin=None, key=KEY_A)
        first = await visitor.say("r1", "before the drop")
        echo = await visitor.next("message")
        conversation_id = echo["conversation_id"]
        await visitor.ws.close()

        replies = []
        for text in ("reply one", "reply two"):
            status, reply = await gw.api(
                "POST", f"/conversations/{conversation_id}/messages", json_body={"text": text}
            )
            replies.append(reply["id"])
        # A private note is never shown to the visitor.
        await gw.api(
            "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "VIP", "private": True}
        )
        stream = await gw.stream(after=0)
        for reply_id in replies:  # wait until both went out through the outbox
            await stream.next(status_is(reply_id, "sent"))

        again = await connect(gw, origin=None, key=KEY_A, after=first["id"])
        resumed = [f for f in again.frames if f["type"] == "message"]
        assert [(f["id"], f["text"], f["from"]) for f in resumed] == [
            (replies[0], "reply one", "agent"),
            (replies[1], "reply two", "agent"),
        ]
        assert again.frames[-1] == {"type": "ready", "last_id": replies[1]}
        # The message whose ack was lost in the drop is sent again: stored once, acknowledged again.
        ack = await again.say("r1", "before the drop")
        assert ack == {"type": "ack", "client_id": "r1", "id": first["id"], "duplicate": True}
        # The widget reports both replies read: the agent sees read receipts.
        await again.ws.send_json({"type": "read", "ids": [f["provider_id"] for f in resumed]})
        for reply_id in replies:
            await stream.next(status_is(reply_id, "read"))
        status, messages = await gw.api("GET", f"/conversations/{conversation_id}/messages")
        assert [m["text"] for m in messages["items"]] == ["before the drop", "reply one", "reply two", "VIP"]
    finally:
        await gw.close()


@pytest.mark.parametrize(
    ("language", "subject"), [("en", "Your chat with Support"), ("pt-BR", "Sua conversa com Support")]
)
async def test_a_reply_to_a_visitor_who_left_goes_by_email(tmp_path: Path, smtp_sink, language, subject):
    """Offline capture end to end: the visitor leaves an email and closes the tab; the agent's answer
    reaches that address through the inbox's email channel (the subject in the account's language),
    and the chat says where it went."""
    gateway = await start_gateway(tmp_path, settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}"})
    try:
        status, _ = await gateway.api("PATCH", "/account", json_body={"language": language})
        assert status == 200
        await add_webchat_channel(gateway, TOKEN, "Shop chat", allowed_origins=[SHOP])
        visitor = await connect(gateway, key=KEY_A)
        ack = await visitor.say("q1", "Do you ship to Norway?", profile={"email": "Ola@Example.NO"})
        assert ack["type"] == "ack"
        await visitor.ws.close()  # the visitor leaves

        status, page = await gateway.api("GET", "/conversations?inbox_id=1")
        chat = (
            next(c for c in page["items"] if c["id"] == ack["conversation_id"])
            if "conversation_id" in ack
            else None
        )
        if chat is None:
            chat = next(c for c in page["items"] if c["channel_id"] != 1 and c["last_inbound_at"])
        status, reply = await gateway.api(
            "POST", f"/conversations/{chat['id']}/messages", json_body={"text": "Yes, in 3 to 5 days."}
        )
        assert status == 201

        (mail,) = await smtp_sink.wait_for(1)
        assert mail.rcpt_tos == ["ola@example.no"]
        message = message_from_bytes(mail.content, policy=email.policy.default)
        assert message["Subject"] == subject
        plain = message.get_body(("plain",))
        assert plain is not None and "Yes, in 3 to 5 days." in plain.get_content()

        stream = await gateway.stream(after=0)
        await stream.next(
            lambda e: (
                e["type"] == "message.created"
                and e["conversation_id"] == chat["id"]
                and "emailed to ola@example.no" in (e["data"]["message"]["text"] or "")
            )
        )
    finally:
        await gateway.close()
