"""The profile editor in a real browser: name, title, meeting link, an avatar with its preview."""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image
from playwright.async_api import Page, expect

from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


def picture(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (400, 300)) -> Path:
    Image.new("RGB", size, color).save(path, format="JPEG")
    return path


async def test_an_agent_edits_their_profile_and_sees_the_avatar_before_and_after_saving(
    page: Page, gw: Gateway, tmp_path: Path
):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    await page.locator("#profile-link").click()
    await expect(page).to_have_url(f"{gw.base_url}/#/profile")
    await expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    await expect(page.get_by_role("img", name="No avatar yet")).to_be_visible()

    await page.get_by_label("Display name").fill("Ada from Support")
    await page.get_by_label("Title").fill("Support lead")
    await page.get_by_label("Meeting link").fill("javascript:alert(1)")
    await page.get_by_role("button", name="Save profile").click()
    await expect(page.get_by_role("alert")).to_contain_text("meeting_url")
    status, profile = await gw.api("GET", "/users/me/profile")
    assert profile["display_name"] is None  # a refused save changes nothing

    await page.get_by_label("Meeting link").fill("https://cal.example.org/ada")
    async with page.expect_response("**/api/v1/uploads") as uploaded:
        await page.get_by_label("Avatar", exact=True).set_input_files(
            picture(tmp_path / "me.jpg", (200, 30, 30))
        )
    assert (await uploaded.value).status == 201
    preview = page.get_by_role("img", name="Your avatar")
    await expect(preview).to_have_attribute("src", re.compile("^blob:" + re.escape(gw.base_url) + "/"))
    await shot(page, "profile-01-preview")
    async with page.expect_response("**/api/v1/users/me/profile") as saved:
        await page.get_by_role("button", name="Save profile").click()
    assert (await saved.value).ok
    await expect(page.get_by_role("alert").filter(has_text="Profile saved.")).to_be_visible()

    # After saving, the preview is the server's avatar: the square it made of the photo.
    await expect(preview).to_have_attribute("src", re.compile(r"^/api/v1/users/me/avatar\?v="))
    status, profile = await gw.api("GET", "/users/me/profile")
    assert (profile["display_name"], profile["title"], profile["meeting_url"], profile["has_avatar"]) == (
        "Ada from Support",
        "Support lead",
        "https://cal.example.org/ada",
        True,
    )
    assert await preview.evaluate("img => img.complete && [img.naturalWidth, img.naturalHeight]") == [
        256,
        256,
    ]
    await shot(page, "profile-02-saved")

    # A file over 1 MB is refused in the page, before anything is uploaded.
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (620, 620), os.urandom(620 * 620 * 3)).save(big)
    assert big.stat().st_size > 1024 * 1024
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.url.endswith("/api/v1/uploads") else None)
    await page.get_by_label("Avatar", exact=True).set_input_files(big)
    await expect(page.locator("#profile-error")).to_have_text("The avatar may be at most 1 MB.")
    assert uploads == []

    # Remove the avatar and reload: the page shows what the server kept.
    await page.get_by_role("button", name="Remove avatar").click()
    await page.get_by_role("button", name="Save profile").click()
    await expect(page.get_by_role("img", name="No avatar yet")).to_be_visible()
    await page.reload()
    await expect(page.get_by_label("Display name")).to_have_value("Ada from Support")
    await expect(page.get_by_role("img", name="No avatar yet")).to_be_visible()
    status, profile = await gw.api("GET", "/users/me/profile")
    assert profile["has_avatar"] is False
    assert problems.errors == []
