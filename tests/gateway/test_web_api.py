"""The API the web inbox relies on: cookie sessions with CSRF, the stream by cookie, the list's extra
fields, unread counts and read markers, canned responses, attachments, a contact's conversations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.demo import ADMIN_EMAIL, AGENT_EMAIL, DEMO_PASSWORD
from inbox.model import Attachment, InboundMessage
from tests.harness import Gateway, start_gateway


class Browser:
    """A client that behaves like a browser: keeps cookies, sends what the page would send."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None

    async def sign_in(self, email: str = ADMIN_EMAIL, password: str = DEMO_PASSWORD) -> tuple[int, dict]:
        status, body = await self.call("POST", "/auth/sign-in", {"email": email, "password": password})
        if status == 200:
            self.csrf = body["csrf_token"]
        return status, body

    async def call(self, method: str, path: str, body=None, *, csrf: bool = True, headers=None):
        hdrs = dict(headers or {})
        if csrf and self.csrf and method != "GET":
            hdrs["X-CSRF-Token"] = self.csrf
        kwargs: dict[str, Any] = {"headers": hdrs}
        if body is not None:
            kwargs["json"] = body
        async with self.http.request(method, f"{self.gw.base_url}/api/v1{path}", **kwargs) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def gw(tmp_path: Path):
    gateway = await start_gateway(tmp_path)
    yield gateway
    await gateway.close()


@pytest.fixture
async def browser(gw: Gateway):
    b = Browser(gw)
    yield b
    await b.close()


async def test_sign_in_sets_a_safe_cookie_and_wrong_passwords_are_refused(gw: Gateway, browser: Browser):
    status, body = await browser.sign_in(password="not the password")
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    status, body = await browser.sign_in(email="nobody@demo.switchboard.test")
    assert status == 401 and body["error"]["message"] == "the email or the password is wrong"

    async with browser.http.post(
        f"{gw.base_url}/api/v1/auth/sign-in", json={"email": ADMIN_EMAIL, "password": DEMO_PASSWORD}
    ) as resp:
        assert resp.status == 200
        cookie = resp.headers["Set-Cookie"]
        browser.csrf = (await resp.json())["csrf_token"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    status, me = await browser.call("GET", "/auth/session")
    assert status == 200 and me["user"]["email"] == ADMIN_EMAIL and me["csrf_token"] == browser.csrf


async def test_cookie_state_changes_need_the_csrf_token(gw: Gateway, browser: Browser):
    await browser.sign_in()
    status, page = await browser.call("GET", "/conversations")  # reading needs no token
    assert status == 200
    conv = page["items"][0]

    status, body = await browser.call(
        "PATCH", f"/conversations/{conv['id']}", {"status": "resolved"}, csrf=False
    )
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    status, body = await browser.call(
        "PATCH",
        f"/conversations/{conv['id']}",
        {"status": "resolved"},
        csrf=False,
        headers={"X-CSRF-Token": "guessed"},
    )
    assert status == 403
    status, body = await browser.call(
        "POST", f"/conversations/{conv['id']}/messages", {"text": "forged"}, csrf=False
    )
    assert status == 403
    _, after = await gw.api("GET", f"/conversations/{conv['id']}/messages")
    assert [m["text"] for m in after["items"] if m["kind"] == "outgoing"] == []
    _, same = await gw.api("GET", f"/conversations/{conv['id']}")
    assert same["status"] == "open"

    status, body = await browser.call("PATCH", f"/conversations/{conv['id']}", {"status": "resolved"})
    assert status == 200 and body["status"] == "resolved"


async def test_bearer_tokens_work_as_before_and_need_no_csrf(gw: Gateway):
    status, page = await gw.api("GET", "/conversations")
    conv = page["items"][0]
    status, body = await gw.api("PATCH", f"/conversations/{conv['id']}", json_body={"priority": "high"})
    assert status == 200 and body["priority"] == "high"
    status, body = await gw.api("GET", "/auth/session")
    assert status == 200 and body["csrf_token"] is None
    status, body = await gw.api("GET", "/conversations", token="sb_wrong")
    assert status == 401


async def test_sign_out_ends_the_session(gw: Gateway, browser: Browser):
    await browser.sign_in()
    stolen = {c.key: c.value for c in browser.http.cookie_jar}["sb_session"]
    status, _ = await browser.call("POST", "/auth/sign-out", csrf=False)
    assert status == 403  # signing out is a state change too
    status, _ = await browser.call("POST", "/auth/sign-out")
    assert status == 204
    # The old cookie value is dead on the server, not only deleted in this browser.
    async with gw.http.get(
        f"{gw.base_url}/api/v1/conversations", headers={"Cookie": f"sb_session={stolen}"}
    ) as resp:
        assert resp.status == 401
    _, users = await gw.api("GET", "/users")
    assert next(u for u in users["items"] if u["email"] == ADMIN_EMAIL)["availability"] == "offline"


async def test_the_stream_accepts_the_cookie_from_our_own_origin_only(gw: Gateway, browser: Browser):
    await browser.sign_in()
    ws = await browser.http.ws_connect(f"{gw.base_url}/api/v1/stream", headers={"Origin": gw.base_url})
    ready = json.loads((await ws.receive()).data)
    assert ready["type"] == "stream.ready"
    loop = await gw.loopback()
    await loop.customer_writes("+15550001212", "over the cookie stream")
    while True:
        event = json.loads((await ws.receive(timeout=10)).data)
        if event["type"] == "message.created":
            break
    assert event["data"]["message"]["text"] == "over the cookie stream"
    await ws.close()

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await browser.http.ws_connect(
            f"{gw.base_url}/api/v1/stream", headers={"Origin": "http://evil.example"}
        )
    assert refused.value.status == 403


async def test_list_items_carry_contact_preview_unread_and_waiting(tmp_path: Path, database_url: str | None):
    gw = await start_gateway(tmp_path, database_url=database_url)
    browser = Browser(gw)
    try:
        await _list_items(gw, browser)
    finally:
        await browser.close()
        await gw.close()


async def _list_items(gw: Gateway, browser: Browser) -> None:
    loop = await gw.loopback()
    first = await loop.customer_writes("+15550003030", "first question", name="Ana Lima")
    await loop.customer_writes("+15550003030", "second question " + "x" * 300, name="Ana Lima")
    await browser.sign_in()
    status, page = await browser.call("GET", "/conversations")
    item = next(c for c in page["items"] if c["id"] == first.conversation_id)
    assert item["contact_name"] == "Ana Lima"
    assert item["channel_kind"] == "loopback"
    assert item["last_message"]["text"].startswith("second question x")
    assert len(item["last_message"]["text"]) == 140 and item["last_message"]["text"].endswith("…")
    assert item["unread_count"] == 2
    assert item["waiting_since"] is not None
    assert item["service_window_ends_at"] is None  # loopback has no 24 h window
    # The old fields are all still there.
    for key in (
        "id",
        "inbox_id",
        "channel_id",
        "contact_id",
        "status",
        "assignee_id",
        "labels",
        "last_activity_at",
    ):
        assert key in item

    status, counts = await browser.call("GET", "/unread-counts")
    assert counts["all"] == 2 and counts["unassigned"] == 2 and counts["mine"] == 0
    assert counts["inboxes"] == {"1": 2}

    status, marker = await browser.call("POST", f"/conversations/{first.conversation_id}/read")
    assert status == 200 and marker["unread_count"] == 0
    _, item = await browser.call("GET", f"/conversations/{first.conversation_id}")
    assert item["unread_count"] == 0
    _, counts = await browser.call("GET", "/unread-counts")
    assert counts["all"] == 1
    # Read markers are per user: the admin's token user is the same admin, the agent has its own.
    agent = Browser(gw)
    await agent.sign_in(AGENT_EMAIL)
    _, agent_counts = await agent.call("GET", "/unread-counts")
    assert agent_counts["all"] == 2
    await agent.close()

    # A reply ends the wait; a new message makes it unread again.
    await browser.call("POST", f"/conversations/{first.conversation_id}/messages", {"text": "on it"})
    await loop.next_sent()
    _, item = await browser.call("GET", f"/conversations/{first.conversation_id}")
    assert item["waiting_since"] is None and item["last_message"]["text"] == "on it"
    await loop.customer_writes("+15550003030", "thanks", name="Ana Lima")
    _, item = await browser.call("GET", f"/conversations/{first.conversation_id}")
    assert item["unread_count"] == 1 and item["waiting_since"] is not None


async def test_filters_by_priority_and_channel_kind(gw: Gateway):
    loop = await gw.loopback()
    a = await loop.customer_writes("+15550004040", "urgent one")
    await gw.api("PATCH", f"/conversations/{a.conversation_id}", json_body={"priority": "urgent"})
    _, page = await gw.api("GET", "/conversations?priority=urgent")
    assert [c["id"] for c in page["items"]] == [a.conversation_id]
    _, page = await gw.api("GET", "/conversations?channel_kind=loopback")
    assert len(page["items"]) == 2
    _, page = await gw.api("GET", "/conversations?channel_kind=whatsapp")
    assert page["items"] == []
    status, body = await gw.api("GET", "/conversations?channel_kind=fax")
    assert status == 422 and "channel_kind" in body["error"]["message"]


async def test_canned_responses_admins_write_agents_read(gw: Gateway, browser: Browser):
    await browser.sign_in()
    status, created = await browser.call(
        "POST", "/canned-responses", {"short_code": "thanks", "text": "Thank you for waiting!"}
    )
    assert status == 201
    status, body = await browser.call("POST", "/canned-responses", {"short_code": "thanks", "text": "again"})
    assert status == 409 and body["error"]["details"][0]["field"] == "short_code"
    status, body = await browser.call("POST", "/canned-responses", {"short_code": "has space", "text": "x"})
    assert status == 422 and "short_code" in body["error"]["message"]
    agent = Browser(gw)
    await agent.sign_in(AGENT_EMAIL)
    _, listed = await agent.call("GET", "/canned-responses")
    assert [r["short_code"] for r in listed["items"]] == ["thanks"]
    status, _ = await agent.call("POST", "/canned-responses", {"short_code": "mine", "text": "x"})
    assert status == 403
    await agent.close()
    status, _ = await browser.call("DELETE", f"/canned-responses/{created['id']}")
    assert status == 204


async def test_attachments_download_only_for_those_who_may_see_them(gw: Gateway, browser: Browser):
    loop = await gw.loopback()
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    result = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=loop.channel_id,
            provider_message_id="with-files",
            sender="+15550005050",
            text="photo and a drawing",
            attachments=(
                Attachment(content_type="image/png", filename="photo.png", data=png),
                Attachment(content_type="image/svg+xml", filename="drawing.svg", data=svg),
            ),
        )
    )
    await browser.sign_in()
    async with browser.http.get(f"{gw.base_url}/api/v1/messages/{result.message_id}/attachments/0") as resp:
        assert resp.status == 200 and resp.content_type == "image/png" and await resp.read() == png
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    async with browser.http.get(f"{gw.base_url}/api/v1/messages/{result.message_id}/attachments/1") as resp:
        # An SVG could run script on our origin: it downloads, never renders.
        assert resp.status == 200 and resp.content_type == "application/octet-stream"
        assert resp.headers["Content-Disposition"].startswith("attachment;")
    async with browser.http.get(f"{gw.base_url}/api/v1/messages/{result.message_id}/attachments/2") as resp:
        assert resp.status == 404
    # A user outside the inbox cannot fetch it.
    _, outsider_token = await gw.user("outsider@demo.switchboard.test")
    status, _ = await gw.api("GET", f"/messages/{result.message_id}/attachments/0", token=outsider_token)
    assert status == 404


async def test_a_contacts_past_conversations(gw: Gateway):
    loop = await gw.loopback()
    first = await loop.customer_writes("+15550006060", "one", name="Bo")
    await gw.api("PATCH", f"/conversations/{first.conversation_id}", json_body={"status": "resolved"})
    _, conv = await gw.api("GET", f"/conversations/{first.conversation_id}")
    status, page = await gw.api("GET", f"/contacts/{conv['contact_id']}/conversations")
    assert status == 200 and [c["id"] for c in page["items"]] == [first.conversation_id]
    assert page["items"][0]["status"] == "resolved"
    _, outsider_token = await gw.user("outsider2@demo.switchboard.test")
    status, _ = await gw.api("GET", f"/contacts/{conv['contact_id']}/conversations", token=outsider_token)
    assert status == 404


async def test_presence_changes_are_validated_and_streamed(gw: Gateway, browser: Browser):
    await browser.sign_in()
    stream = await gw.stream()
    await stream.ready()
    status, body = await browser.call("PATCH", "/users/me", {"availability": "busy"})
    assert status == 422 and "availability" in body["error"]["message"]
    status, body = await browser.call("PATCH", "/users/me", {"availability": "away"})
    assert status == 200 and body["availability"] == "away"
    event = await stream.next(lambda e: e["type"] == "user.presence")
    assert event["data"]["user"]["availability"] == "away"


async def test_password_guessing_is_slowed_down_after_ten_failures(tmp_path: Path):
    """Ten wrong passwords for one email, then even the right one waits; time heals it (injected clock)."""
    from tests.harness import ManualClock

    clock = ManualClock()
    gateway = await start_gateway(tmp_path, clock=clock)
    browser = Browser(gateway)
    try:
        for _ in range(10):
            status, body = await browser.sign_in(password="not-the-password")
            assert status == 401
        status, body = await browser.sign_in()
        assert status == 429 and body["error"]["code"] == "too_many_attempts"
        assert 0 < body["error"]["details"]["retry_after"] <= 15 * 60 + 1
        clock.advance(minutes=16)
        status, body = await browser.sign_in()
        assert status == 200, body
    finally:
        await browser.close()
        await gateway.close()
