"""Attaching files to a reply in the web inbox: pick or paste, see the upload, send, see it in the thread."""

from __future__ import annotations

from playwright.async_api import FilePayload, Page, expect

from inbox.model import InboundMessage
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
GIF = b"GIF89a" + b"\x00" * 40


async def test_an_agent_attaches_an_image_sees_it_upload_and_sends_it(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    loop = await gw.loopback()
    result = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=loop.channel_id, provider_message_id="att-1", sender="+15550001111", text="hi"
        )
    )
    await sign_in(page, gw)
    await page.goto(f"{gw.base_url}/#/conversations/{result.conversation_id}")
    await page.locator("#composer-file").set_input_files(
        files=[FilePayload(name="receipt.png", mimeType="image/png", buffer=PNG)]
    )
    chip = page.locator("#composer-files .composer-file")
    await expect(chip).to_have_attribute("data-ready", "true")
    await expect(chip.locator(".file-preview")).to_be_visible()
    await expect(chip).to_contain_text("receipt.png")
    await page.locator("#composer-text").fill("Here is your receipt")
    await shot(page, "attachments-ready")
    await page.locator("#send").click()
    sent = page.locator("#messages .message.outgoing").last
    await expect(sent).to_contain_text("Here is your receipt")
    await expect(sent.locator("a.attachment-image")).to_have_count(1)
    await expect(page.locator("#composer-files .composer-file")).to_have_count(0)
    _, messages = await gw.api("GET", f"/conversations/{result.conversation_id}/messages")
    [attachment] = messages["items"][-1]["attachments"]
    assert (attachment["filename"], attachment["content_type"]) == ("receipt.png", "image/png")
    assert problems.errors == []


async def test_a_file_the_channel_refuses_says_why_and_the_text_stays(page: Page, gw: Gateway):
    _, channels = await gw.api("GET", "/channels")
    whatsapp = next(c for c in channels["items"] if c["kind"] == "whatsapp")
    result = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=whatsapp["id"], provider_message_id="wamid.att", sender="+5511987650123", text="oi"
        )
    )
    await sign_in(page, gw)
    await page.goto(f"{gw.base_url}/#/conversations/{result.conversation_id}")
    await page.locator("#composer-file").set_input_files(
        files=[FilePayload(name="funny.gif", mimeType="image/gif", buffer=GIF)]
    )
    await expect(page.locator("#composer-files .composer-file")).to_have_attribute("data-ready", "true")
    await page.locator("#composer-text").fill("look at this")
    await page.locator("#send").click()
    await expect(page.locator("#composer-error")).to_contain_text("WhatsApp does not take image/gif")
    await expect(page.locator("#composer-text")).to_have_value("look at this")
    _, messages = await gw.api("GET", f"/conversations/{result.conversation_id}/messages")
    assert [m["text"] for m in messages["items"]] == ["oi"]
