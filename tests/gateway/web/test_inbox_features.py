"""Admin pages, saved replies, the quota banner and the template picker in a real browser.

The quota and template endpoints belong to the policy issue; until they are on this server the page
hides those panels, so the banner and picker tests answer those two GETs in the browser with the
documented shapes (DESIGN.md §6) to check what the page does with them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, Route, expect

from gateway.demo import AGENT_EMAIL
from inbox.model import InboundMessage
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


def quota(used: int, limit: int = 1000, tier: int | None = None, blocked: bool = False) -> dict:
    return {
        "period_start": "2026-11-01T00:00:00+00:00",
        "period_end": "2026-12-01T00:00:00+00:00",
        "limit": limit,
        "used": used,
        "percent": 100 * used / limit,
        "tier": tier,
        "blocked": blocked,
    }


async def serve_json(page: Page, pattern: str, body: dict) -> None:
    async def handle(route: Route) -> None:
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    await page.route(pattern, handle)


async def test_quota_banner_tiers_and_the_block_message(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await serve_json(page, "**/api/v1/quota", quota(650))
    await sign_in(page, gw)
    await expect(page.locator("#quota-banner")).to_be_hidden()  # below 70 %: nothing

    await page.unroute("**/api/v1/quota")
    await serve_json(page, "**/api/v1/quota", quota(720, tier=70))
    await page.reload()
    banner = page.locator("#quota-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_have_class("quota-banner tier-70")
    await expect(banner).to_contain_text("72 % of this month's conversations used")
    await shot(page, "07-quota-70")

    await page.unroute("**/api/v1/quota")
    await serve_json(page, "**/api/v1/quota", quota(1000, tier=100, blocked=True))
    await page.reload()
    await expect(banner).to_have_class("quota-banner tier-100")
    await expect(banner).to_contain_text("Sends that would open a new conversation are blocked")
    # The demo admin is a super admin, so a billing admin: the banner links to buying packs.
    await expect(banner.get_by_role("link", name="Buy more conversations")).to_have_attribute(
        "href", "#/admin/billing"
    )
    await shot(page, "08-quota-100")

    # Billing: the meter, opened conversations per day, and the pack form for billing admins.
    await serve_json(
        page,
        "**/api/v1/billing/conversations*",
        {
            "items": [
                {"opened_at": "2026-11-03T10:00:00+00:00", "released_at": None},
                {"opened_at": "2026-11-03T11:00:00+00:00", "released_at": None},
                {"opened_at": "2026-11-04T09:00:00+00:00", "released_at": None},
                {"opened_at": "2026-11-05T09:00:00+00:00", "released_at": "2026-11-05T09:01:00+00:00"},
            ],
            "next_cursor": None,
        },
    )
    await banner.get_by_role("link", name="Buy more conversations").click()
    body = page.locator("#admin-body")
    await expect(body).to_contain_text("1,000 of 1,000 conversations used this period (100 %)")
    bars = body.locator(".usage-chart .bar")
    await expect(bars).to_have_count(30)  # every day of November
    await expect(bars.nth(2)).to_have_attribute("title", "2026-11-03: 2")
    await expect(bars.nth(4)).to_have_attribute("title", "2026-11-05: 0")  # released: not counted
    assert await bars.nth(2).evaluate("b => b.getBoundingClientRect().height") > 50
    assert await bars.nth(3).evaluate("b => b.getBoundingClientRect().height") < 70
    await expect(body.get_by_role("button", name="Buy")).to_be_visible()
    await shot(page, "11-billing")

    # Agents see the block too, but no link to buying (they cannot) and no settings.
    await page.locator("#sign-out").click()
    await sign_in(page, gw, AGENT_EMAIL)
    await expect(banner).to_contain_text("blocked")
    await expect(banner).to_contain_text("Ask a billing admin")
    await expect(banner.get_by_role("link")).to_have_count(0)
    await expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    assert problems.errors == []


async def test_closed_window_offers_the_template_picker(page: Page, gw: Gateway):
    await page.set_viewport_size({"width": 1280, "height": 800})
    _, channels = await gw.api("GET", "/channels")
    whatsapp = next(c for c in channels["items"] if c["kind"] == "whatsapp")
    long_ago = datetime.now(UTC) - timedelta(hours=25)
    result = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=whatsapp["id"],
            provider_message_id="wamid.old",
            sender="+5511987654321",
            sender_name="Maria Souza",
            text="Can you tell me when it ships?",
            received_at=long_ago,
        )
    )
    await serve_json(
        page,
        f"**/api/v1/channels/{whatsapp['id']}/templates",
        {
            "items": [
                {
                    "name": "order_update",
                    "language": "pt_BR",
                    "category": "utility",
                    "status": "approved",
                    "body": "Olá {{1}}, o pedido {{2}} sai hoje.",
                },
                {"name": "draft_one", "language": "en_US", "status": "pending", "body": "never shown"},
            ]
        },
    )
    await sign_in(page, gw)
    await page.goto(f"{gw.base_url}/#/conversations/{result.conversation_id}")
    notice = page.locator(".window-notice")
    await expect(notice).to_contain_text("24-hour service window closed")
    await notice.get_by_role("button", name="Choose a template").click()
    picker = page.locator("#template-picker")
    await expect(picker.locator("#template-name option")).to_have_count(1)  # approved ones only
    await picker.get_by_label("Parameter 1").fill("Maria")
    await picker.get_by_label("Parameter 2").fill("#1234")
    await expect(picker.locator(".template-preview")).to_have_text("Olá Maria, o pedido #1234 sai hoje.")
    await shot(page, "09-template-picker")
    await picker.get_by_role("button", name="Send template").click()
    sent = page.locator("#messages .message.outgoing").last
    await expect(sent).to_contain_text("Template order_update (pt_BR)")
    await expect(sent).to_contain_text("Maria · #1234")
    _, messages = await gw.api("GET", f"/conversations/{result.conversation_id}/messages")
    assert messages["items"][-1]["template"] == {
        "name": "order_update",
        "language": "pt_BR",
        "params": ["Maria", "#1234"],
    }


async def test_admin_pages_and_saved_replies_in_the_composer(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    await page.get_by_role("link", name="Settings").click()
    body = page.locator("#admin-body")
    await expect(body.locator("table")).to_contain_text("Support")

    await page.get_by_role("link", name="Channels").click()
    _, channels = await gw.api("GET", "/channels")
    whatsapp = next(c for c in channels["items"] if c["kind"] == "whatsapp")
    await expect(body).to_contain_text(f"{gw.base_url}/webhooks/whatsapp/{whatsapp['id']}")
    await expect(body).to_contain_text("https://wa.me/15550100001?text=START")
    await shot(page, "10-admin-channels")

    await page.get_by_role("link", name="Routing rules").click()
    await expect(body).to_contain_text("not available on this server yet")

    await page.get_by_role("link", name="Saved replies").click()
    await body.get_by_label("Short code").fill("shipping")
    await body.get_by_label("Text").fill("Orders ship within 2 working days.")
    await body.get_by_role("button", name="Create").click()
    await expect(body.locator("table")).to_contain_text("/shipping")

    await page.get_by_role("link", name="Users and roles").click()
    await body.get_by_label("Email").fill("new.agent@demo.switchboard.test")
    await body.get_by_label("Name").fill("Nia New")
    await body.get_by_role("button", name="Create").click()
    await expect(body.locator("table")).to_contain_text("Nia New")
    await expect(body.locator(".notice")).to_contain_text("API token (shown once)")

    await page.get_by_role("link", name="← Inbox").click()
    await page.locator("#conversation-list .conversation").first.click()
    await page.locator("#composer-text").press_sequentially("/sh")
    await expect(page.locator("#canned-menu")).to_contain_text("/shipping")
    await page.locator("#composer-text").press("Enter")
    await expect(page.locator("#composer-text")).to_have_value("Orders ship within 2 working days.")
    assert problems.errors == []
