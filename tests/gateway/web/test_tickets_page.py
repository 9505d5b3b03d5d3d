"""The Tickets page and a conversation's tickets, in a real browser."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


async def test_create_a_ticket_from_a_conversation_and_move_it_on_the_board(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1400, "height": 900})
    await sign_in(page, gw)
    await page.locator("#conversation-list .conversation").first.click()
    sidebar = page.locator("#conversation-tickets")
    await sidebar.get_by_role("button", name="Create ticket").click()
    await sidebar.get_by_label("Title").fill("Parcel #1234 lost")
    await sidebar.get_by_label("Owner").select_option(label="Alex Agent")
    await sidebar.get_by_role("button", name="Create ticket").click()
    await expect(sidebar.get_by_role("link", name="Parcel #1234 lost")).to_be_visible()
    await expect(sidebar).to_contain_text("New")
    await shot(page, "tickets-01-sidebar")

    status, listed = await gw.api("GET", "/tickets")
    (ticket,) = listed["items"]
    assert ticket["owner_id"] == 2 and ticket["conversation_ids"] == [1]

    await page.get_by_role("link", name="Tickets", exact=True).click()
    board = page.locator("#ticket-board")
    new_column = board.locator('[data-stage="new"]')
    await expect(new_column.locator(".ticket-card")).to_have_count(1)
    await expect(new_column).to_contain_text("Alex Agent")
    await new_column.get_by_label("Stage of Parcel #1234 lost").select_option(label="Waiting on us")
    await expect(board.locator('[data-stage="waiting_on_us"] .ticket-card')).to_have_count(1)
    await expect(new_column.locator(".ticket-card")).to_have_count(0)
    await shot(page, "tickets-02-board")

    # A change made elsewhere (another agent, the API) shows up live.
    await gw.api("PATCH", f"/tickets/{ticket['id']}", json_body={"stage": "closed"})
    await expect(board.locator('[data-stage="closed"] .ticket-card')).to_have_count(1)

    await page.get_by_role("button", name="List").click()
    rows = page.locator("#ticket-list tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Closed")
    await rows.first.get_by_role("link", name="Parcel #1234 lost").click()
    history = page.locator("#ticket-history li")
    await expect(history).to_have_count(3)
    await expect(history.nth(0)).to_contain_text("opened in New")
    await expect(history.nth(1)).to_contain_text("Stage: New → Waiting on us")
    await expect(history.nth(2)).to_contain_text("Stage: Waiting on us → Closed")
    await page.get_by_role("link", name="Conversation #1").click()
    await expect(page.locator("#conversation-tickets")).to_contain_text("Closed")
    assert problems.errors == []
