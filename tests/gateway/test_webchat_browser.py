"""The website chat in a real browser (Debian's Chromium) against a running gateway.

A visitor opens the demo page and writes; the agent (REST API + live stream) sees it, types, reads and
answers; the visitor sees all of it. A reload keeps the history; a dropped socket loses nothing and
doubles nothing. Screenshots go to test-artifacts/webchat/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from tests.harness import Gateway, start_gateway

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webchat"
CHAT = "[data-switchboard-chat]"  # the widget's host; Playwright's CSS pierces its open shadow root


@pytest.fixture
async def gw(tmp_path: Path):
    gateway = await start_gateway(tmp_path)
    yield gateway
    await gateway.close()


def incoming(text: str):
    def match(e: dict[str, Any]) -> bool:
        return (
            e["type"] == "message.created"
            and e["data"]["message"]["kind"] == "incoming"
            and e["data"]["message"]["text"] == text
        )

    return match


async def open_widget(page: Page, gw: Gateway) -> None:
    await page.goto(f"{gw.base_url}/demo/")
    await page.locator(f"{CHAT} .launcher").click()
    await expect(page.locator(f"{CHAT} .panel")).to_be_visible()


async def write(page: Page, text: str) -> None:
    box = page.locator(f"{CHAT} textarea")
    await box.fill(text)
    await box.press("Enter")


async def test_visitor_and_agent_talk_live_with_typing_and_read_receipts(gw: Gateway, page: Page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    status, _ = await gw.api("PATCH", "/users/me", json_body={"availability": "online"})
    assert status == 200
    stream = await gw.stream()
    await stream.ready()

    await open_widget(page, gw)
    await expect(page.locator(f"{CHAT} .presence-text")).to_have_text("Online")
    await expect(page.locator(f"{CHAT} .notice")).to_be_hidden()

    # The visitor types: the agent's stream hears it once a conversation exists, so write first.
    await write(page, "Hi! Is order 1234 shipped? https://shop.example/orders/1234")
    created = await stream.next(incoming("Hi! Is order 1234 shipped? https://shop.example/orders/1234"))
    conversation_id = created["conversation_id"]
    visitor_row = page.locator(f"{CHAT} .row.visitor").last
    await expect(visitor_row.locator(".meta")).to_have_text("Sent")
    link = visitor_row.locator("a")
    await expect(link).to_have_attribute("href", "https://shop.example/orders/1234")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")

    await page.locator(f"{CHAT} textarea").press_sequentially("still th")
    typing = await stream.next(lambda e: e["type"] == "conversation.typing")
    assert typing["conversation_id"] == conversation_id and typing["data"]["typing"] is True
    assert typing["data"]["who"] == "contact"

    # The page URL, language and user agent are on the contact for the agent to see.
    status, conv = await gw.api("GET", f"/conversations/{conversation_id}")
    status, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
    seen = contact["attributes"]["webchat"]
    assert seen["page_url"] == f"{gw.base_url}/demo/"
    assert seen["language"] and "Chrome" in seen["user_agent"]

    # The agent types, then reads: the visitor sees both.
    status, body = await gw.api(
        "POST", f"/conversations/{conversation_id}/typing", json_body={"typing": True}
    )
    assert status == 200 and body["delivered"] == 1
    await expect(page.locator(f"{CHAT} .typing")).to_have_text("Ada is typing…")
    status, body = await gw.api("POST", f"/conversations/{conversation_id}/read", json_body={})
    assert status == 200 and body["up_to"] == created["data"]["message"]["id"]
    await expect(visitor_row.locator(".meta")).to_have_text("Seen")

    # The agent answers; the visitor sees it with the agent's name, and the agent sees it was read.
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "Yes, it left today."}
    )
    assert status == 201
    agent_row = page.locator(f"{CHAT} .row.agent")
    await expect(agent_row.locator(".bubble")).to_have_text("Yes, it left today.")
    await expect(agent_row.locator(".agent-name")).to_have_text("Ada")
    await expect(page.locator(f"{CHAT} .typing")).to_have_text("")
    read = await stream.next(
        lambda e: (
            e["type"] == "message.updated"
            and e["data"]["message"]["id"] == reply["id"]
            and e["data"]["message"]["status"] == "read"
        )
    )
    assert read["conversation_id"] == conversation_id
    await page.screenshot(path=ARTIFACTS / "conversation.png")

    # A reload keeps the history, in order, once.
    await page.reload()
    await page.locator(f"{CHAT} .panel").wait_for(state="visible")  # it stays open across reloads
    bubbles = page.locator(f"{CHAT} .row[data-id] .bubble")
    await expect(bubbles).to_have_text(
        ["Hi! Is order 1234 shipped? https://shop.example/orders/1234", "Yes, it left today."]
    )
    await expect(page.locator(f"{CHAT} .row.visitor .meta")).to_have_text("Seen")

    # A new tab of the same browser is the same visitor, in the same conversation.
    second = await page.context.new_page()
    await second.goto(f"{gw.base_url}/demo/")
    await expect(second.locator(f"{CHAT} .row[data-id] .bubble")).to_have_count(2)
    await second.close()


async def test_a_dropped_socket_loses_nothing_and_doubles_nothing(gw: Gateway, page: Page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    links: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    mode = {"state": "pass"}  # pass | swallow_acks | refuse

    async def route(ws: WebSocketRoute) -> None:
        if mode["state"] == "refuse":
            await ws.close(code=4001, reason="test: network down")
            return
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            # Swallowing what the server says plays a connection that died after the server stored a
            # message but before the widget heard so (neither the ack nor the echo of the stored
            # message arrives): the widget must re-send, the server must store it once.
            if mode["state"] == "swallow_acks":
                return
            ws.send(message)

        server.on_message(to_page)
        ws.on_message(lambda message: server.send(message))
        links.append((ws, server))

    await page.route_web_socket("**/webchat/*/ws*", route)
    stream = await gw.stream()
    await stream.ready()
    await open_widget(page, gw)
    await write(page, "first")
    created = await stream.next(incoming("first"))
    conversation_id = created["conversation_id"]
    await expect(page.locator(f"{CHAT} .row.visitor .meta")).to_have_text("Sent")

    # The server stores the next message but the ack never reaches the page; then the link drops.
    mode["state"] = "swallow_acks"
    await write(page, "second, acked too late")
    await stream.next(incoming("second, acked too late"))
    await expect(page.locator(f"{CHAT} .row.visitor .meta").last).to_have_text("Sending…")
    mode["state"] = "refuse"
    page_side, server_side = links[-1]
    await server_side.close()
    await page_side.close(code=4001, reason="test: network down")
    await expect(page.locator(f"{CHAT} .presence-text")).to_have_text("Reconnecting…")

    # While it is down: the agent answers, and the visitor types a message that waits in the widget.
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "Answer while you were away"}
    )
    assert status == 201
    await stream.next(
        lambda e: (
            e["type"] == "message.updated"
            and e["data"]["message"]["id"] == reply["id"]
            and e["data"]["message"]["status"] == "sent"
        )
    )
    await write(page, "third, typed offline")
    await page.screenshot(path=ARTIFACTS / "offline.png")

    # The network comes back: the widget resumes from its last id and re-sends what was not acked.
    mode["state"] = "pass"
    await stream.next(incoming("third, typed offline"))
    bubbles = page.locator(f"{CHAT} .row .bubble")
    expected = ["first", "second, acked too late", "Answer while you were away", "third, typed offline"]
    await expect(page.locator(f"{CHAT} .row[data-id] .bubble")).to_have_text(expected, timeout=15_000)
    await expect(page.locator(f"{CHAT} .row.visitor .meta")).to_have_text(["Sent", "Sent", "Sent"])
    await expect(bubbles).to_have_count(5)  # the welcome line plus the four, nothing twice
    await page.screenshot(path=ARTIFACTS / "resumed.png")

    status, messages = await gw.api("GET", f"/conversations/{conversation_id}/messages")
    assert [m["text"] for m in messages["items"]] == expected


async def test_the_widget_works_by_keyboard_on_a_phone_and_leaks_no_globals(gw: Gateway, page: Page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.set_viewport_size({"width": 375, "height": 667})
    await page.goto(f"{gw.base_url}/demo/")
    launcher = page.locator(f"{CHAT} .launcher")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    # Offline (no agent online): the widget says so and asks for an email.
    await launcher.focus()
    await page.keyboard.press("Enter")
    panel = page.locator(f"{CHAT} .panel")
    await expect(panel).to_be_visible()
    await expect(page.locator(f"{CHAT} textarea")).to_be_focused()
    await expect(page.locator(f"{CHAT} .notice")).to_contain_text("Leave your email")
    box = await panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["height"] <= 667
    await page.keyboard.type("Sent from the keyboard")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"{CHAT} .row.visitor .meta")).to_have_text("Sent")
    await page.screenshot(path=ARTIFACTS / "phone.png")
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(launcher).to_be_focused()

    leaked = await page.evaluate(
        """() => {
            const frame = document.createElement('iframe');
            document.body.appendChild(frame);
            const clean = new Set(Object.keys(frame.contentWindow));
            const extra = Object.keys(window).filter(k => !clean.has(k) && !/^\\d+$/.test(k));
            frame.remove();
            return extra;
        }"""
    )
    assert leaked == []
    # Untrusted text is shown as text: markup in a message stays inert.
    await page.keyboard.press("Enter")
    await page.locator(f"{CHAT} textarea").fill('<img src=x onerror="window.pwned=1">')
    await page.locator(f"{CHAT} textarea").press("Enter")
    await expect(page.locator(f"{CHAT} .row.visitor .bubble").last).to_have_text(
        '<img src=x onerror="window.pwned=1">'
    )
    assert await page.evaluate("() => window.pwned === undefined && !document.querySelector('img[src=x]')")


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


async def test_greeting_flow_prechat_form_and_uploads(gw: Gateway, page: Page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    token = "tent-shop-chat-token"
    status, _ = await gw.api(
        "POST",
        "/channels",
        json_body={
            "inbox_id": 1,
            "kind": "webchat",
            "name": "Tent shop",
            "config": {
                "token": token,
                "prechat_fields": ["name", "email"],
                "flows": [
                    {"url": {"op": "contains", "value": "/about"}, "action": "live"},
                    {
                        "url": {"op": "contains", "value": "/demo/"},
                        "first_visit": True,
                        "after_seconds": 1,
                        "action": "greeting",
                        "message": "Looking for a tent?",
                    },
                ],
            },
        },
    )
    assert status == 201
    stream = await gw.stream()
    await stream.ready()
    await page.goto(f"{gw.base_url}/demo/?channel={token}")

    # The first visit to this page gets the greeting after a second on the page.
    teaser = page.locator(f"{CHAT} .teaser")
    await expect(teaser).to_have_text("Looking for a tent?")
    await teaser.click()
    await expect(page.locator(f"{CHAT} .composer")).to_be_hidden()
    await page.locator(f"{CHAT} .prechat input[name=name]").fill("Kari")
    await page.locator(f"{CHAT} .prechat input[name=email]").fill("kari@example.no")
    await page.locator(f"{CHAT} .prechat button").click()
    await write(page, "Do you have 2-person tents?")
    created = await stream.next(incoming("Do you have 2-person tents?"))
    status, conv = await gw.api("GET", f"/conversations/{created['conversation_id']}")
    status, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["name"] == "Kari" and contact["email"] == "kari@example.no"
    assert contact["attributes"]["webchat"]["flow"] == "greeting"

    # An image goes up and shows; a program dressed as an image is refused with a clear reason.
    files = page.locator(f"{CHAT} input[type=file]")
    await files.set_input_files({"name": "tent.png", "mimeType": "image/png", "buffer": PNG})
    image = page.locator(f"{CHAT} .row.visitor img")
    await expect(image).to_have_attribute("alt", "tent.png")
    # decode() waits for the signed media link to load (it rejects if the image is broken).
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1
    await files.set_input_files(
        {"name": "cute.png", "mimeType": "image/png", "buffer": b"MZ\x90\x00" + bytes(64)}
    )
    await expect(page.locator(f"{CHAT} .error")).to_have_text("This type of file cannot be sent here.")
    await page.screenshot(path=ARTIFACTS / "prechat-upload.png")
    status, messages = await gw.api("GET", f"/conversations/{created['conversation_id']}/messages")
    assert [m["content_type"] for m in messages["items"]] == ["text", "image"]

    # The next visit is not a first one: the flow rules give plain live chat, no greeting.
    await page.keyboard.press("Escape")
    async with page.expect_response(lambda r: f"/webchat/{token}/config" in r.url) as answer:
        await page.reload()
    response = await answer.value
    assert "first_visit=0" in response.url and (await response.json())["flow"]["action"] == "live"
    await page.locator(f"{CHAT} .launcher").click()
    await expect(page.locator(f"{CHAT} .row[data-id]")).to_have_count(2)
    await expect(page.locator(f"{CHAT} .prechat")).to_be_hidden()  # asked once, remembered
