"""The notification bell in a real browser: a live notice, the unread count, the settings."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


async def test_an_assignment_rings_the_bell_and_settings_are_saved(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    count = page.locator("#bell-count")
    await expect(count).to_be_hidden()

    _, colleague = await gw.user("colleague@example.org", inbox_ids=[1])
    status, _ = await gw.api("PATCH", "/conversations/1", token=colleague, json_body={"assignee_id": 1})
    assert status == 200
    await expect(count).to_have_text("1")

    await page.get_by_role("button", name="Notifications").click()
    panel = page.locator("#bell-panel")
    await expect(panel.get_by_role("link", name="You were assigned conversation #1")).to_be_visible()
    await shot(page, "bell-01-open")
    await panel.get_by_role("link", name="You were assigned conversation #1").click()
    await expect(count).to_be_hidden()
    await expect(page).to_have_url(f"{gw.base_url}/#/conversations/1")

    await page.get_by_role("button", name="Notifications").click()
    await panel.get_by_role("button", name="Notification settings").click()
    email = panel.get_by_label("Assigned to me: Email", exact=True)
    await expect(email).not_to_be_checked()
    async with page.expect_response("**/users/me/notification-preferences") as saved:
        await email.check()
    assert (await saved.value).ok
    status, prefs = await gw.api("GET", "/users/me/notification-preferences")
    assert prefs["preferences"]["assigned"] == {"in_app": True, "email": True}
    assert problems.errors == []
