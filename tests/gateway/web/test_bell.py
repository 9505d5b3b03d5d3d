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


# Records what the page hands the browser's Notification API (the real one is still called) and lets
# the test say whether the tab is hidden, as it is when the agent is in another tab.
NOTIFICATION_SPY = """
window.__shown = [];
window.__hidden = false;
const Real = window.Notification;
class Recorded extends Real {
  constructor(title, options) {
    window.__shown.push({ title, body: (options || {}).body || "" });
    super(title, options);
  }
}
window.Notification = Recorded;
Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
"""


async def test_a_notice_shows_as_a_browser_notification_only_while_the_tab_is_hidden(page: Page, gw: Gateway):
    await page.context.grant_permissions(["notifications"], origin=gw.base_url)
    await page.add_init_script(NOTIFICATION_SPY)
    await sign_in(page, gw)
    assert await page.evaluate("Notification.permission") == "granted"
    count = page.locator("#bell-count")
    _, colleague = await gw.user("colleague@example.org", inbox_ids=[1])

    status, _ = await gw.api("PATCH", "/conversations/1", token=colleague, json_body={"assignee_id": 1})
    assert status == 200
    await expect(count).to_have_text("1")
    assert await page.evaluate("window.__shown") == []  # the agent is looking: the bell is enough

    await page.evaluate("window.__hidden = true")
    status, _ = await gw.api("PATCH", "/conversations/1", token=colleague, json_body={"assignee_id": None})
    status, _ = await gw.api("PATCH", "/conversations/1", token=colleague, json_body={"assignee_id": 1})
    assert status == 200
    await expect(count).to_have_text("2")
    await page.wait_for_function("window.__shown.length === 1")
    assert await page.evaluate("window.__shown") == [
        {"title": "You were assigned conversation #1", "body": ""}
    ]
