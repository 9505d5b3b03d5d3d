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
    await expect(banner).to_contain_text("72% of this month's conversations used")
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
    await expect(body).to_contain_text("1,000 of 1,000 conversations used this period (100%)")
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
    await body.get_by_label("Definition").fill(
        '{"name": "Tag refunds", "conditions": [{"type": "text", "op": "contains", "value": "refund"}],'
        ' "actions": [{"type": "add_label", "label": "refund"}]}'
    )
    await body.get_by_role("button", name="Create").click()
    await expect(body.locator("table")).to_contain_text("Tag refunds")

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


async def test_email_html_shows_in_a_sandboxed_frame_and_cannot_script(page: Page, gw: Gateway):
    await page.set_viewport_size({"width": 1280, "height": 800})
    _, channels = await gw.api("GET", "/channels")
    email = next(c for c in channels["items"] if c["kind"] == "email")
    # Even HTML that slipped past the sanitizer (here: none ran) can do nothing in the frame.
    html = (
        "<p>Hello <b>team</b>, the invoice is attached.</p>"
        "<script>parent.__xss = 1</script><img src=x onerror='parent.__xss = 2'>"
        "<form action='/api/v1/auth/sign-out' method='post'><button id=f>go</button></form>"
    )
    result = await gw.container.pipeline.receive(
        InboundMessage(
            channel_id=email["id"],
            provider_message_id="<m1@example.com>",
            sender="Pat@Example.com",
            sender_name="Pat Payer",
            text="Hello team, the invoice is attached.",
            raw={"html": html, "subject": "Invoice"},
        )
    )
    await sign_in(page, gw)
    await page.goto(f"{gw.base_url}/#/conversations/{result.conversation_id}")
    message = page.locator("#messages .message.incoming").last
    await expect(message.locator(".text")).to_have_text("Hello team, the invoice is attached.")
    await message.get_by_role("button", name="Show formatted email").click()
    frame_el = message.locator("iframe.email-html")
    await expect(frame_el).to_have_attribute("sandbox", "")
    frame = page.frame_locator("iframe.email-html")
    await expect(frame.locator("b")).to_have_text("team")
    assert await page.evaluate("window.__xss") is None
    await shot(page, "12-email-html")
    # Served on its own it carries a sandbox policy too, and only to those who may see it.
    async with gw.http.get(
        f"{gw.base_url}/api/v1/messages/{result.message_id}/html",
        headers={"Authorization": f"Bearer {gw.admin_token}"},
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Security-Policy"].startswith("sandbox")
    _, outsider = await gw.user("outsider3@demo.switchboard.test")
    status, _ = await gw.api("GET", f"/messages/{result.message_id}/html", token=outsider)
    assert status == 404


async def test_consent_panel_shows_history_and_explains_a_refused_opt_in(page: Page, gw: Gateway):
    await page.set_viewport_size({"width": 1280, "height": 800})
    consent = {
        "contact_id": 1,
        "channels": [
            {
                "channel_id": 1,
                "channel_name": "Demo loopback",
                "kind": "loopback",
                "state": "opted_out",
                "history": [
                    {
                        "previous": "opted_in",
                        "state": "opted_out",
                        "source": "keyword",
                        "evidence": "message:7",
                        "at": "2026-11-20T10:00:00+00:00",
                    }
                ],
            },
            {
                "channel_id": 4,
                "channel_name": "Demo whatsapp",
                "kind": "whatsapp",
                "state": "unknown",
                "history": [],
            },
        ],
    }
    posted: list[dict] = []

    async def handle(route: Route) -> None:
        if route.request.method == "POST":
            posted.append(json.loads(route.request.post_data or "{}"))
            assert route.request.headers.get("x-csrf-token")
            await route.fulfill(
                status=409,
                content_type="application/json",
                body=json.dumps(
                    {"error": {"code": "no_prior_contact", "message": "no prior contact", "details": None}}
                ),
            )
        else:
            await route.fulfill(status=200, content_type="application/json", body=json.dumps(consent))

    await page.route("**/api/v1/contacts/1/consent", handle)
    page.on("dialog", lambda dialog: dialog.accept())
    await sign_in(page, gw)
    await page.locator("#conversation-list .conversation").first.click()
    panel = page.locator("#contact-pane .consent")
    await expect(panel.locator("[data-channel='1']")).to_contain_text("Opted out")
    await panel.locator("[data-channel='1'] summary").click()
    await expect(panel.locator("[data-channel='1'] .history")).to_contain_text("keyword (message:7)")
    await expect(panel.locator("[data-channel='4']")).to_contain_text("Not asked yet")
    await shot(page, "13-contact-consent")
    await panel.locator("[data-channel='4']").get_by_role("button", name="Record opt-in").click()
    await expect(page.locator("#toasts")).to_contain_text(
        "only allowed for a contact who has already written"
    )
    assert posted == [{"channel_id": 4, "state": "opted_in"}]
