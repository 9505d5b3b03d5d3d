"""The Reports page in a real browser: the scenario's known timings in the totals, the charts and the
tables, filters, the CSV download, and an agent who sees only their own row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.async_api import Page, expect

from gateway.demo import AGENT_EMAIL
from tests.gateway.policy_support import LOOPBACK, configure_channel
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import ManualClock, start_gateway
from tests.reports.scenario import drive


def total(page: Page, metric: str):
    return page.locator(f'#reports-totals [data-metric="{metric}"] dd')


async def test_a_lead_reads_the_week_and_an_agent_their_own_numbers(
    page: Page, tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await drive(gw, clock)
        problems = PageProblems(page)
        await page.set_viewport_size({"width": 1400, "height": 1000})
        await sign_in(page, gw)
        await page.get_by_role("link", name="Reports", exact=True).click()

        # The default period: the account's last 30 days (São Paulo), ending on the scenario's day.
        await expect(page.locator("#reports-to")).to_have_value("2026-03-10")
        await expect(page.locator("#reports-from")).to_have_value("2026-02-09")
        await expect(total(page, "opened")).to_have_text("5")
        # Replies after 5 and 15 minutes: median 10, p90 14; A resolved after 90 min, the bot's at once.
        await expect(total(page, "first_response_median")).to_have_text("10 min")
        await expect(total(page, "first_response_p90")).to_have_text("14 min")
        await expect(total(page, "resolution_median")).to_have_text("45 min")
        await expect(total(page, "reopened")).to_have_text("1")
        await expect(total(page, "handoff_rate")).to_have_text("50%")

        columns = page.locator("#reports-series-chart .chart-column")
        await expect(columns).to_have_count(30)
        await expect(columns.last).to_have_attribute("data-value", "5")
        bars = page.locator("#reports-agents-chart .chart-bar")
        await expect(bars.first).to_have_attribute("data-label", "Alex Agent")
        await expect(bars.first).to_have_attribute("data-value", "2")
        await expect(bars.nth(1)).to_have_attribute("data-label", "Ada Admin")
        await expect(bars.nth(1)).to_have_attribute("data-value", "1")
        bots = page.locator('table[data-report="bots"] tbody tr')
        await expect(bots).to_have_count(1)
        await expect(bots.first.locator('[data-col="handoff_rate"]')).to_have_text("50%")
        await shot(page, "reports-01-month")

        # Three days, business hours only: A waited none of them, B 10 minutes (median 5 min).
        await page.get_by_label("From").fill("2026-03-09")
        await page.get_by_label("To", exact=True).fill("2026-03-11")
        await page.get_by_label("Business hours only").check()
        await page.get_by_role("button", name="Apply").click()
        await expect(columns).to_have_count(3)
        await expect(total(page, "first_response_median")).to_have_text("5 min")
        assert [await c.get_attribute("data-value") for c in await columns.all()] == ["0", "5", "0"]

        # Another metric over time: the first response median of that day.
        await page.locator("#reports-series-metric").select_option("first_response_median")
        await expect(columns.nth(1)).to_have_attribute("data-value", "300")
        await expect(columns.nth(0)).to_have_attribute("data-value", "")

        # The agents table as CSV, with the filters of the page.
        async with page.expect_download() as info:
            await page.locator("#reports-table-agents a.csv-link").click()
        download = await info.value
        assert download.suggested_filename == "switchboard-agents-2026-03-09-2026-03-11.csv"
        rows = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8"))))
        by_name = {r["name"]: r for r in rows}
        assert by_name["Alex Agent"]["first_response_median"] == "0.0"  # business time
        assert by_name["Ada Admin"]["first_response_median"] == "600.0"
        assert by_name["Alex Agent"]["replies"] == "2"

        # A filter the API refuses is said on the page, naming the field.
        await page.get_by_label("From").fill("2026-03-12")
        await page.get_by_role("button", name="Apply").click()
        await expect(page.locator("#reports-error")).to_contain_text("from")
        # Then a broadcast to two contacts who never opted in: both refused by the consent gate.
        await configure_channel(gw, consent=True)
        broadcast = {"channel_id": LOOPBACK, "recipients": ["+15550300001", "+15550300002"], "text": "Sale!"}
        status, created = await gw.api("POST", "/broadcasts", json_body=broadcast)
        assert status == 201, created
        await page.get_by_label("From").fill("2026-03-10")
        await page.get_by_role("button", name="Apply").click()
        sale = page.locator('table[data-report="broadcasts"] tbody tr')
        await expect(sale).to_have_count(1)
        await expect(sale.first.locator('[data-col="title"]')).to_have_text("Sale!")
        await expect(sale.first.locator('[data-col="failed"]')).to_have_text("2")
        await expect(sale.first.locator('[data-col="failed_by_reason"]')).to_have_text(
            "2 \u00d7 The contact has not opted in to messages on this channel."
        )
        # No survey in the scenario: the CSAT section says so.
        await expect(page.locator('#reports-csat [data-metric="sent"] dd')).to_have_text("0")
        await expect(page.locator("#reports-csat")).to_contain_text("Nothing in this period.")
        await page.locator("#reports-table-broadcasts").scroll_into_view_if_needed()
        await shot(page, "reports-03-broadcasts-csat")
        assert problems.errors == []
    finally:
        await gw.close()


async def test_an_agent_sees_only_their_own_row(page: Page, tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await drive(gw, clock)
        problems = PageProblems(page)
        await page.set_viewport_size({"width": 1400, "height": 1000})
        await sign_in(page, gw, AGENT_EMAIL)
        await page.get_by_role("link", name="Reports", exact=True).click()
        await expect(page.locator("#reports-own")).to_have_text("You see your own numbers.")
        await expect(page.locator("#reports-agent-id")).to_have_count(0)
        bars = page.locator("#reports-agents-chart .chart-bar")
        await expect(bars).to_have_count(1)
        await expect(bars.first).to_have_attribute("data-label", "Alex Agent")
        await expect(page.locator('table[data-report="agents"] tbody tr')).to_have_count(1)
        await expect(total(page, "agent_replies")).to_have_text("2")
        await expect(total(page, "resolved")).to_have_text("1")  # A, which Alex resolved
        await expect(total(page, "first_response_median")).to_have_text("5 min")
        await shot(page, "reports-02-agent")
        assert problems.errors == []
    finally:
        await gw.close()
