"""Visitors see who answers them: the agent's display name, title, avatar and a meeting-link button.

The avatar reaches the visitor by a signed link of the channel (no API token, nothing guessable), and
nothing else of the agent's account (email, full name) is in what the widget gets.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Page, expect

from tests.gateway.widget_tabs import Tab, add_webchat_channel, open_tab
from tests.harness import Gateway, start_gateway

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webchat"
CHAT = "[data-switchboard-chat]"
TOKEN = "card-token-0123456789"
MEETING = "https://cal.example.org/ada/30min"


@pytest.fixture
async def gw(tmp_path: Path):
    gateway = await start_gateway(tmp_path)
    yield gateway
    await gateway.close()


def green_square() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), (0, 160, 0)).save(out, format="JPEG")
    return out.getvalue()


async def set_profile(gw: Gateway, **fields: Any) -> dict[str, Any]:
    status, uploaded = await gw.upload(green_square(), "me.jpg")
    assert status == 201, uploaded
    body = {"avatar_upload_id": uploaded["id"], **fields}
    status, profile = await gw.api("PUT", "/users/me/profile", json_body=body)
    assert status == 200, profile
    return dict(profile)


async def agent_reply(gw: Gateway, tab: Tab, text: str) -> dict[str, Any]:
    """The agent answers the visitor's conversation; the frame the visitor's tab shows for it."""
    conversation_id = next(f["conversation_id"] for f in tab.frames if f["type"] == "message")
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": text}
    )
    assert status == 201, reply
    while (frame := await tab.next("message"))["id"] != reply["id"]:
        pass
    return frame


async def test_a_reply_carries_the_agents_card_and_nothing_private(gw: Gateway):
    await add_webchat_channel(gw, TOKEN)
    await set_profile(gw, display_name="Ada from Support", title="Support lead", meeting_url=MEETING)
    status, me = await gw.api("GET", "/users/me")
    assert status == 200, me

    tab = await open_tab(gw.http, gw.base_url, TOKEN, "visitorCARDCARDCARDCARDCARD1")
    await tab.ws.send_json({"type": "message", "client_id": "c1", "text": "Can we talk?"})
    await tab.next("ack")
    await tab.next("message")
    frame = await agent_reply(gw, tab, "Sure, book a slot.")

    card = frame["agent"]
    assert set(card) == {"name", "title", "meeting_url", "avatar_url"}
    assert (card["name"], card["title"], card["meeting_url"]) == ("Ada from Support", "Support lead", MEETING)
    everything = json.dumps(tab.frames)
    assert me["email"] not in everything and gw.admin_token not in everything

    # The avatar link works without any token: the resized PNG. A changed signature finds nothing.
    async with gw.http.get(gw.base_url + card["avatar_url"]) as resp:
        assert resp.status == 200
        avatar = Image.open(io.BytesIO(await resp.read()))
        assert (avatar.format, avatar.size) == ("PNG", (256, 256))
    forged = card["avatar_url"][:-4] + ("0000" if not card["avatar_url"].endswith("0000") else "1111")
    async with gw.http.get(gw.base_url + forged) as resp:
        assert resp.status == 404

    # A changed profile shows on the next reply (the widget's card of the agent is not kept stale).
    status, _ = await gw.api(
        "PUT", "/users/me/profile", json_body={"display_name": "Ada L.", "meeting_url": None, "title": None}
    )
    assert status == 200
    frame = await agent_reply(gw, tab, "Or write here.")
    assert frame["agent"] == {"name": "Ada L.", "avatar_url": card["avatar_url"]}
    await tab.ws.close()


async def test_the_widget_shows_the_agents_avatar_name_and_meeting_button(gw: Gateway, page: Page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await set_profile(gw, display_name="Ada from Support", title="Support lead", meeting_url=MEETING)
    stream = await gw.stream()
    await stream.ready()

    await page.goto(f"{gw.base_url}/demo/")
    await page.locator(f"{CHAT} .launcher").click()
    box = page.locator(f"{CHAT} textarea")
    await box.fill("Could we have a call about my order?")
    await box.press("Enter")
    created = await stream.next(
        lambda e: e["type"] == "message.created" and e["data"]["message"]["kind"] == "incoming"
    )
    card = page.locator(f"{CHAT} .agent-card")
    await expect(card).to_be_hidden()  # nobody has answered yet

    status, _ = await gw.api(
        "POST",
        f"/conversations/{created['conversation_id']}/messages",
        json_body={"text": "Of course, pick a time that suits you."},
    )
    assert status == 201
    row = page.locator(f"{CHAT} .row.agent")
    await expect(row.locator(".bubble")).to_have_text("Of course, pick a time that suits you.")
    await expect(row.locator(".agent-name")).to_have_text("Ada from Support")
    for avatar in (row.locator("img.avatar"), card.locator("img.avatar")):
        await expect(avatar).to_be_visible()
        # Loaded from the server, not a broken image: the 256-pixel square.
        assert await avatar.evaluate("img => img.complete && img.naturalWidth") == 256

    await expect(card).to_be_visible()
    await expect(card.locator(".card-name")).to_have_text("Ada from Support")
    await expect(card.locator(".card-title")).to_have_text("Support lead")
    button = card.get_by_role("link", name="Book a meeting with Ada from Support")
    await expect(button).to_have_text("Book a meeting")
    await expect(button).to_have_attribute("href", MEETING)
    await expect(button).to_have_attribute("target", "_blank")
    await expect(button).to_have_attribute("rel", "noopener noreferrer")
    await page.screenshot(path=ARTIFACTS / "agent-card.png")
