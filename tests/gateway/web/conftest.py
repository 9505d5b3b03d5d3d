"""A running gateway with the demo seeded, and helpers to drive the inbox page like an agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, expect

from gateway.demo import ADMIN_EMAIL, DEMO_PASSWORD
from tests.harness import Gateway, start_gateway

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

# CI machines are small and shared: allow slow moments without making a wrong page pass.
expect.set_options(timeout=15_000)


@pytest_asyncio.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = await start_gateway(tmp_path)
    yield gateway
    await gateway.close()


class PageProblems:
    """Uncaught script errors and Content-Security-Policy refusals seen on a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )


async def sign_in(page: Page, gw: Gateway, email: str = ADMIN_EMAIL) -> None:
    await page.goto(gw.base_url + "/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    # The list loads once the stream is live, so nothing that happens after this can be missed.
    await expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    await expect(page.locator("#conversation-list .conversation").first).to_be_visible()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
