"""The Broadcasts page in a real browser: filters with the live count, exclusions, compose with replies
off, send, live progress, every recipient's outcome, and "Replies" on a recipient's conversation."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.gateway.policy_support import configure_channel
from tests.gateway.test_audiences import seed_contacts
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


async def test_a_broadcast_from_filters_to_each_recipients_outcome(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1400, "height": 900})
    await configure_channel(gw, consent=False, service_window=False, metered=False)
    await seed_contacts(
        gw,
        [
            {
                "phone": f"+1555400{k:04d}",
                "name": f"Affiliate {k:02d}",
                "attributes": {"sales_count": k},
                "tags": ["affiliate"],
            }
            for k in range(30)
        ],
    )
    await sign_in(page, gw)
    await page.get_by_role("link", name="Broadcasts", exact=True).click()
    await expect(page.locator("#broadcasts-empty")).to_be_visible()
    await page.get_by_role("link", name="New broadcast").click()

    await page.get_by_role("button", name="Add a condition").click()
    first = page.locator("#broadcast-conditions .condition").nth(0)
    await first.get_by_label("Condition", exact=True).select_option(label="Has any tag")
    await first.get_by_label("Value", exact=True).fill("affiliate")
    await expect(page.locator("#broadcast-count")).to_have_text("30 contacts in this audience")
    await page.get_by_role("button", name="Add a condition").click()
    second = page.locator("#broadcast-conditions .condition").nth(1)
    await second.get_by_label("Attribute", exact=True).fill("sales_count")
    await second.get_by_label("Operator", exact=True).select_option(label="at least")
    await second.get_by_label("Value", exact=True).fill("10")
    await expect(page.locator("#broadcast-count")).to_have_text("20 contacts in this audience")
    await expect(page.locator("#broadcast-sendable")).to_have_text("20 would be sent")
    # Leave one out by hand.
    sample = page.locator("#broadcast-sample li")
    await sample.filter(has_text="Affiliate 10").get_by_role("button", name="Exclude").click()
    await expect(page.locator("#broadcast-count")).to_have_text("19 contacts in this audience")
    await expect(page.locator("#broadcast-excluded")).to_contain_text("1 contact excluded by hand.")
    await shot(page, "broadcasts-01-new")

    await page.get_by_label("Title").fill("Launch week")
    await page.get_by_label("Text").fill("Hi {{name}}, launch week starts now")
    await page.get_by_label("Allow replies").uncheck()
    await page.get_by_role("button", name="Send broadcast").click()

    await expect(page.locator("#broadcast-title")).to_have_text("Launch week")
    await expect(page.locator("#broadcast-status")).to_have_attribute("data-status", "done")
    await expect(page.locator('#broadcast-progress [data-metric="sent"] dd')).to_have_text("19")
    await expect(page.locator('#broadcast-progress [data-metric="total"] dd')).to_have_text("19")
    rows = page.locator("#broadcast-recipients tbody tr")
    await expect(rows).to_have_count(19)
    await expect(rows.filter(has_text="Affiliate 10")).to_have_count(0)
    await expect(page.get_by_label("Allow replies")).not_to_be_checked()
    await shot(page, "broadcasts-02-detail")

    _, listed = await gw.api("GET", "/broadcasts")
    (broadcast,) = listed["items"]
    assert (broadcast["title"], broadcast["total"], broadcast["allow_replies"]) == ("Launch week", 19, False)
    loop = await gw.loopback()
    texts = set()
    while not loop.sent.empty():
        texts.add(loop.sent.get_nowait()[0].text)
    assert "Hi Affiliate 11, launch week starts now" in texts and len(texts) == 19

    # A recipient's conversation says replies are off, and one click turns them on for it.
    await rows.filter(has_text="Affiliate 11").get_by_role("link").click()
    replies = page.locator("#replies-section")
    await expect(replies).to_have_attribute("data-disabled", "true")
    await replies.get_by_role("button", name="Allow replies").click()
    await expect(replies).to_have_attribute("data-disabled", "false")

    await page.get_by_role("link", name="Broadcasts", exact=True).click()
    row = page.locator("#broadcast-list tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Done")
    await expect(row).to_contain_text("19 of 19")
    assert problems.errors == []
