"""The agent inbox in a real browser (Debian's Chromium) against a running gateway with demo data."""

from __future__ import annotations

import re

import aiohttp
from playwright.async_api import Page, expect

from gateway.demo import AGENT_EMAIL
from gateway.stream import STREAM_HUB
from inbox.model import MessageStatus
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


async def test_sign_in_shows_the_demo_conversation_and_sign_out_ends_the_session(page: Page, gw: Gateway):
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(gw.base_url + "/")
    await page.get_by_label("Email").fill("admin@demo.switchboard.test")
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("The email or the password is wrong.")
    await shot(page, "00-sign-in-refused")

    await sign_in(page, gw)
    row = page.locator("#conversation-list .conversation").first
    await expect(row).to_contain_text("Maria Demo")
    await expect(row).to_contain_text("My order #1234 has not arrived yet")
    await expect(row).to_contain_text("Unassigned")
    await expect(page.locator("#nav [data-view=all] .count")).to_have_text("1")
    await expect(page.locator("#quota-banner")).to_be_hidden()  # no quota endpoint on this server yet
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["sb_session"]["httpOnly"] and cookies["sb_session"]["sameSite"] == "Lax"

    await page.locator("#sign-out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    response = await page.request.get(gw.base_url + "/api/v1/conversations")
    assert response.status == 401


async def test_agent_works_a_conversation_live(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    loop = await gw.loopback()

    # A message arriving appears in the list without a reload.
    received = await loop.customer_writes("+4915123456789", "Is my parcel coming today?", name="Jonas Weber")
    row = page.locator(f"#conversation-list [data-id='{received.conversation_id}']")
    await expect(row).to_contain_text("Jonas Weber")
    await expect(row).to_contain_text("Is my parcel coming today?")
    await expect(row.locator(".unread-badge")).to_have_text("1")
    await expect(page.locator("#conversation-list .conversation").first).to_have_attribute(
        "data-id", str(received.conversation_id)
    )
    await shot(page, "01-list-live")

    await row.click()
    thread = page.locator("#messages")
    await expect(thread).to_contain_text("Is my parcel coming today?")
    await expect(row.locator(".unread-badge")).to_have_count(0)  # reading it clears the badge
    await expect(page.locator("#contact-name")).to_have_text("Jonas Weber")

    # ...and a second message shows in the open thread at once.
    await loop.customer_writes("+4915123456789", "It was due yesterday.", name="Jonas Weber")
    await expect(thread.locator(".message.incoming").last).to_contain_text("It was due yesterday.")

    # The agent replies and watches ✔ → ✔✔ → read.
    await page.locator("#composer-text").fill("It is out for delivery and arrives before 6 pm.")
    await page.locator("#send").click()
    outbound, provider_id = await loop.next_sent()
    assert outbound.text == "It is out for delivery and arrives before 6 pm."
    reply = thread.locator(".message.outgoing").last
    await expect(page.locator("#composer-text")).to_have_value("")
    await expect(reply.locator(".delivery")).to_have_attribute("data-status", "sent")
    await expect(reply.locator(".delivery .mark")).to_have_text("✔")
    assert await loop.report(provider_id, MessageStatus.DELIVERED)
    await expect(reply.locator(".delivery")).to_have_attribute("data-status", "delivered")
    await expect(reply.locator(".delivery .mark")).to_have_text("✔✔")
    assert await loop.report(provider_id, MessageStatus.READ)
    await expect(reply.locator(".delivery")).to_have_attribute("data-status", "read")
    await expect(reply.locator(".delivery")).to_contain_text("Read")
    await expect(row).to_contain_text("You: It is out for delivery")

    # A private note, visibly different, never sent.
    await page.locator("#mode-note").click()
    await page.locator("#composer-text").fill("Customer called twice; escalate if late again.")
    await page.locator("#send").click()
    note = thread.locator(".message.note").last
    await expect(note).to_contain_text("Private note")
    await expect(note).to_contain_text("escalate if late again")
    assert loop.sent.empty()

    # Assign to the agent, then resolve: activity lines appear and the server agrees.
    status, agent = await gw.api("GET", "/users")
    alex = next(u for u in agent["items"] if u["email"] == AGENT_EMAIL)
    await page.locator("#assignee").select_option(str(alex["id"]))
    await expect(thread.locator(".activity").last).to_contain_text("assigned Alex Agent")
    await expect(row).to_contain_text("Alex Agent")
    await page.locator("#resolve").click()
    await expect(page.locator("#thread-status")).to_have_text("Resolved")
    await expect(thread.locator(".activity").last).to_contain_text("set the status to resolved")
    status, conv = await gw.api("GET", f"/conversations/{received.conversation_id}")
    assert conv["assignee_id"] == alex["id"] and conv["status"] == "resolved"
    # The list shows open conversations, so the resolved one leaves it (the thread stays open).
    await expect(row).to_have_count(0)
    await shot(page, "02-thread-1280")

    # Keyboard: reopen with "o" (outside any field).
    await page.locator("#messages").click()
    await page.keyboard.press("o")
    await expect(page.locator("#thread-status")).to_have_text("Open")

    # The same page on a tablet.
    await page.set_viewport_size({"width": 1024, "height": 768})
    await expect(page.locator("#composer-text")).to_be_visible()
    await shot(page, "03-thread-tablet-landscape")
    await page.set_viewport_size({"width": 768, "height": 1024})
    await expect(page.locator("#composer-text")).to_be_visible()
    await shot(page, "04-thread-tablet-portrait")
    # On a portrait tablet list and thread take turns; the back button returns to the list.
    await expect(page.locator("#conversation-list")).to_be_hidden()
    await page.get_by_role("button", name="Back to the list").click()
    await expect(page.locator("#conversation-list")).to_be_visible()
    await expect(page.locator("#composer-text")).to_be_hidden()
    await shot(page, "04b-list-tablet-portrait")
    assert problems.errors == []


async def test_a_refused_send_keeps_the_text_and_says_why(page: Page, gw: Gateway):
    from inbox.model import Reason
    from inbox.outbox import Refusal

    class RefuseAll:
        async def check(self, session, ctx):
            return Refusal(Reason.WINDOW_CLOSED, "last inbound message was over 24 hours ago")

    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    await page.locator("#conversation-list .conversation").first.click()
    gw.container.outbox.policies.append(RefuseAll())
    await page.locator("#composer-text").fill("Are you still there?")
    await page.locator("#send").click()
    error = page.locator("#composer-error")
    await expect(error).to_contain_text("24-hour service window is closed")
    await expect(page.locator("#composer-text")).to_have_value("Are you still there?")
    failed = page.locator("#messages .message.failed").last
    await expect(failed.locator(".reason")).to_contain_text("only an approved template can be sent")
    await expect(failed.get_by_role("button", name="Resend")).to_be_visible()
    await shot(page, "05-refused-send")

    # Once the policy allows it, Resend sends the same text.
    gw.container.outbox.policies.clear()
    await failed.get_by_role("button", name="Resend").click()
    outbound, _ = await (await gw.loopback()).next_sent()
    assert outbound.text == "Are you still there?"


async def test_markup_from_contacts_renders_as_text(page: Page, gw: Gateway):
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    loop = await gw.loopback()
    name = '<img src=x onerror="window.__xss=1">Eve'
    text = '<script>window.__xss=2</script><b>bold?</b> <a href="javascript:window.__xss=3">click</a>'
    received = await loop.customer_writes("+15550009999", text, name=name)
    row = page.locator(f"#conversation-list [data-id='{received.conversation_id}']")
    await expect(row.locator(".contact-name")).to_have_text(name)
    await row.click()
    await expect(page.locator("#messages .message.incoming .text").last).to_have_text(text)
    await expect(page.locator("#contact-name")).to_have_text(name)
    await expect(page.locator("#thread-contact-name")).to_have_text(name)
    assert await page.locator("#app img, #app script:not([type]), #app b, #messages a").count() == 0
    assert await page.evaluate("window.__xss") is None
    await shot(page, "06-xss-as-text")


async def test_cookie_state_change_without_csrf_token_is_refused(page: Page, gw: Gateway):
    await sign_in(page, gw)
    conversation_id = await page.locator("#conversation-list .conversation").first.get_attribute("data-id")
    # What a forged request could do: it carries the cookie but cannot know the token.
    refused = await page.evaluate(
        """async (id) => {
            const r = await fetch(`/api/v1/conversations/${id}`, {method: "PATCH",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify({status: "resolved"})});
            return [r.status, (await r.json()).error.code];
        }""",
        conversation_id,
    )
    assert refused == [403, "csrf_failed"]
    status, conv = await gw.api("GET", f"/conversations/{conversation_id}")
    assert conv["status"] == "open"
    # The page itself (which holds the token) may.
    await page.locator("#conversation-list .conversation").first.click()
    await page.locator("#priority").select_option("high")
    await expect(page.locator("#messages .activity").last).to_contain_text("priority to high")


async def test_presence_is_seen_by_other_agents(page: Page, gw: Gateway):
    await sign_in(page, gw)
    # The admin signed in, so shows as online.
    status, users = await gw.api("GET", "/users")
    admin = next(u for u in users["items"] if u["role"] == "super_admin")
    agent = next(u for u in users["items"] if u["role"] == "agent")
    assert admin["availability"] == "online"
    await expect(page.locator(f"#presence-list [data-user='{agent['id']}']")).to_have_attribute(
        "data-availability", "offline"
    )
    # The agent signs in elsewhere and sets "away": the admin's page shows it live.
    # (aiohttp keeps cookies for IP hosts only with an "unsafe" jar.)
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with browser.post(
        gw.base_url + "/api/v1/auth/sign-in",
        json={"email": AGENT_EMAIL, "password": "switchboard-demo"},
    ) as resp:
        assert resp.status == 200
        csrf = (await resp.json())["csrf_token"]
    await expect(page.locator(f"#presence-list [data-user='{agent['id']}']")).to_have_attribute(
        "data-availability", "online"
    )
    async with browser.patch(
        gw.base_url + "/api/v1/users/me",
        json={"availability": "away"},
        headers={"X-CSRF-Token": csrf},
    ) as resp:
        assert resp.status == 200
    await browser.close()
    await expect(page.locator(f"#presence-list [data-user='{agent['id']}']")).to_have_attribute(
        "data-availability", "away"
    )
    await page.locator("#my-presence").select_option("away")
    await expect(page.locator("#my-presence-dot")).to_have_class(re.compile("presence-away"))


async def test_the_page_resumes_the_stream_after_a_disconnect(page: Page, gw: Gateway):
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await sign_in(page, gw)
    assert len(sockets) == 1 and "after=" not in sockets[0]
    loop = await gw.loopback()

    # The server drops every stream (as it does for a client that fell behind)...
    gw.runner.app[STREAM_HUB].give_up()
    # ...and a message arrives around the time the page is disconnected.
    received = await loop.customer_writes("+15550008080", "sent while you were away", name="Kim")
    row = page.locator(f"#conversation-list [data-id='{received.conversation_id}']")
    await expect(row).to_contain_text("sent while you were away")
    await expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    assert len(sockets) == 2 and re.search(r"after=\d+", sockets[1])
    # And it keeps going live on the new connection.
    await loop.customer_writes("+15550008080", "and after you came back", name="Kim")
    await expect(row).to_contain_text("and after you came back")
