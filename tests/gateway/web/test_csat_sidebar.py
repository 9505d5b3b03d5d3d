"""A conversation's satisfaction survey in its sidebar, in a real browser."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway, jobs_done


async def test_the_sidebar_shows_the_rating_the_contact_gave(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1400, "height": 900})
    await sign_in(page, gw)
    await gw.api("PUT", "/inboxes/1/csat", json_body={"enabled": True})
    await gw.api("PATCH", "/conversations/1", json_body={"status": "resolved"})
    await gw.container.csat.send_due()
    await jobs_done(gw)
    loopback = await gw.loopback()
    await loopback.customer_writes("+15550123456", "4")  # the demo contact answers the survey

    await page.goto(f"{gw.base_url}/#/conversations/1")
    section = page.locator("#conversation-csat")
    await expect(section).to_be_visible()
    await expect(section).to_contain_text("Satisfaction")
    await expect(section).to_contain_text("Answered")
    await expect(section.get_by_label("Rated 4 of 5")).to_have_text("★★★★☆")
    await shot(page, "csat-01-sidebar")
    assert problems.errors == []
