"""The inbox in Portuguese and English: the browser's language before sign-in, the agent's own setting
after it (PATCH /users/me), the account's language as the default; screenshots of both."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from gateway.demo import ADMIN_EMAIL, AGENT_EMAIL, DEMO_PASSWORD
from inbox import tables as t
from tests.gateway.web.conftest import PageProblems, shot, sign_in
from tests.harness import Gateway


async def sign_in_as(page: Page, gw: Gateway, email: str, button: str) -> None:
    await page.goto(gw.base_url + "/")
    await page.locator("input[name=email]").fill(email)
    await page.locator("input[name=password]").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name=button).click()
    await expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    await expect(page.locator("#conversation-list .conversation").first).to_be_visible()


async def test_a_portuguese_browser_gets_the_sign_in_page_in_portuguese(browser: Browser, gw: Gateway):
    context = await browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    problems = PageProblems(page)
    await page.goto(gw.base_url + "/")
    await expect(page.get_by_role("button", name="Entrar")).to_be_visible()
    await expect(page.get_by_label("Senha")).to_be_visible()
    assert await page.locator("html").get_attribute("lang") == "pt-BR"
    await page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    await page.get_by_label("Senha").fill("wrong password")
    await page.get_by_role("button", name="Entrar").click()
    await expect(page.get_by_role("alert")).to_have_text("O e-mail ou a senha estão incorretos.")
    await shot(page, "i18n-pt-BR-sign-in")
    # The admin has no language of their own and the account speaks English: the inbox is in English.
    await page.get_by_label("Senha").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Entrar").click()
    await expect(page.locator("#sign-out")).to_have_text("Sign out")
    assert await page.locator("html").get_attribute("lang") == "en"
    assert problems.errors == []
    await context.close()


async def test_an_agent_with_language_pt_br_sees_the_inbox_in_portuguese(page: Page, gw: Gateway):
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    async with gw.container.db.write() as session:
        await session.execute(update(t.User).where(t.User.email == AGENT_EMAIL).values(language="pt-BR"))
    await sign_in_as(page, gw, AGENT_EMAIL, "Sign in")  # an English browser: the sign-in page is English
    await expect(page.locator("#sign-out")).to_have_text("Sair")
    await expect(page.get_by_label("Seu status")).to_be_visible()
    await expect(page.locator("#nav [data-view=unassigned]")).to_contain_text("Sem responsável")
    await expect(page.locator("#search")).to_have_attribute("placeholder", "Buscar contatos e mensagens")
    await expect(page.locator("#nav")).to_contain_text("Status da equipe")
    await expect(page.locator("#list-title")).to_have_text(
        re.compile("^(Minhas|Sem responsável|Todas as conversas)$")
    )
    await page.locator("#conversation-list .conversation").first.click()
    await expect(page.locator("#resolve, #reopen")).to_have_text(re.compile("^(Resolver|Reabrir)$"))
    await expect(page.locator(".contact-toggle")).to_have_text("Contato")
    assert await page.locator("html").get_attribute("lang") == "pt-BR"
    await shot(page, "i18n-pt-BR-inbox")
    assert problems.errors == []


async def test_the_agent_switches_language_from_the_top_bar(page: Page, gw: Gateway):
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    await shot(page, "i18n-en-inbox")
    await page.get_by_label("Language").select_option("pt-BR")
    await expect(page.locator("#sign-out")).to_have_text("Sair")  # reloaded in the new language
    status, me = await gw.api("GET", "/users/me")
    assert (status, me["language"]) == (200, "pt-BR")
    await page.get_by_label("Idioma").select_option("en")
    await expect(page.locator("#sign-out")).to_have_text("Sign out")


async def test_the_account_language_is_the_default_for_its_users(page: Page, gw: Gateway):
    status, account = await gw.api("PATCH", "/account", json_body={"language": "pt-BR"})
    assert (status, account["language"]) == (200, "pt-BR")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    await expect(page.locator("#sign-out")).to_have_text("Sair")
