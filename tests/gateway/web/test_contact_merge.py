"""Merging a contact from the sidebar: the suggestion, the preview with its conflicts, one sidebar after."""

from __future__ import annotations

from playwright.async_api import Page, expect

from inbox import tables as t
from inbox.model import InboundMessage
from tests.gateway.test_uploads import channel_of_kind
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


async def test_an_agent_merges_the_suggested_email_contact_and_sees_both_histories(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1400, "height": 900})
    by_mail = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=await channel_of_kind(gw, "email"),
            provider_message_id="<merge-1@example.org>",
            sender="bia@example.org",
            sender_name="Bia Souza",
            text="Where is my refund?",
        )
    )
    by_phone = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=await channel_of_kind(gw, "whatsapp"),
            provider_message_id="wamid.merge-2",
            sender="+5511987650777",
            sender_name="Bia",
            text="Oi, sobre o reembolso",
        )
    )
    _, phone_conv = await gw.api("GET", f"/conversations/{by_phone.conversation_id}")
    async with gw.container.db.write() as session:
        contact = await session.get(t.Contact, phone_conv["contact_id"])
        assert contact is not None
        contact.email = "bia@example.org"

    await sign_in(page, gw)
    await page.goto(f"{gw.base_url}/#/conversations/{by_phone.conversation_id}")
    suggestion = page.locator("#merge-suggestions .merge-candidate")
    await expect(suggestion).to_contain_text("Bia Souza")
    await suggestion.locator(".merge-open").click()
    preview = page.locator("#merge-preview")
    await expect(preview.locator(".merge-conflicts li[data-field=name]")).to_contain_text("Bia Souza")
    await expect(preview.locator(".merge-moves")).to_contain_text("1 conversation moves here")
    await shot(page, "contact-merge-preview")
    await preview.locator("#merge-confirm").click()

    pane = page.locator("#contact-pane")
    await expect(pane.locator(".past li")).to_have_count(2)
    await expect(pane).to_contain_text("bia@example.org")
    await expect(pane).to_contain_text("+5511987650777")
    await expect(page.locator("#merge-suggestions")).to_contain_text("No other contact shares")
    await pane.locator(f'.past a[href="#/conversations/{by_mail.conversation_id}"]').click()
    await expect(page.locator("#messages")).to_contain_text("Where is my refund?")
    assert problems.errors == []
