"""The Contacts page: an admin imports a CSV (bad rows by line), filters the list, exports what it shows."""

from __future__ import annotations

import csv
import io

from playwright.async_api import FilePayload, Page, expect

from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway

FILE = (
    "Name,Email,Phone,Plan,Tags\n"
    "Gil Souza,gil@example.org,11 98765-0101,gold,vip\n"
    "Broken,broken@,,gold,\n"
    "Hana,hana@example.org,,silver,\n"
)


async def test_an_admin_imports_contacts_sees_bad_rows_by_line_filters_and_exports(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 900})
    await sign_in(page, gw)
    await page.locator("#contacts-link").click()
    await expect(page.locator("#contacts-page h1")).to_have_text("Contacts")

    await page.locator("#contacts-import summary").click()
    await page.locator("#import-file").set_input_files(
        files=[FilePayload(name="people.csv", mimeType="text/csv", buffer=FILE.encode())]
    )
    plan = page.locator('#import-mapping select[data-column="Plan"]')
    await expect(plan).to_have_value("attributes.plan")
    await expect(page.locator('#import-mapping select[data-column="Email"]')).to_have_value("email")
    await page.locator("#import-region").fill("br")
    await page.locator("#import-go").click()
    await expect(page.locator("#import-summary")).to_have_text("2 created, 0 updated, 1 rows with problems.")
    error = page.locator('#import-errors tr[data-line="3"]')
    await expect(error).to_contain_text("email")
    await expect(error).to_contain_text("not an email address")
    await shot(page, "contacts-import")

    await page.locator("#contacts-tag").fill("vip")
    await page.locator("#contacts-tag").press("Enter")
    rows = page.locator("#contacts-body .contact-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Gil Souza")
    await expect(rows.first).to_contain_text("+5511987650101")

    href = await page.locator("#contacts-export").get_attribute("href")
    assert href is not None and "tag=vip" in href and "format=csv" in href
    response = await page.request.get(gw.base_url + href)
    assert response.ok
    [row] = list(csv.DictReader(io.StringIO(await response.text())))
    assert (row["name"], row["attributes.plan"], row["tags"]) == ("Gil Souza", "gold", "vip")
    assert problems.errors == []
