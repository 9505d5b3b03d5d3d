"""The inbox in Portuguese and English: the browser's language before sign-in, the agent's own setting
after it (PATCH /users/me), the account's language as the default; screenshots of both."""

from __future__ import annotations

import re
from pathlib import Path

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


# Per main page: where it is, and a text it shows in each language (headings, buttons, column names).
MAIN_PAGES = [
    ("inbox", "#/", {"en": ["Unassigned", "Team status"], "pt-BR": ["Sem responsável", "Status da equipe"]}),
    ("admin", "#/admin/channels", {"en": ["Channels", "Opt-in link"], "pt-BR": ["Canais", "Link de aceite"]}),
    ("reports", "#/reports", {"en": ["Reports", "Apply"], "pt-BR": ["Relatórios", "Aplicar"]}),
    ("broadcasts", "#/broadcasts", {"en": ["Broadcasts"], "pt-BR": ["Listas de transmissão"]}),
    ("contacts", "#/contacts", {"en": ["Contacts", "Export CSV"], "pt-BR": ["Contatos", "Exportar CSV"]}),
    ("tickets", "#/tickets", {"en": ["Board", "List"], "pt-BR": ["Quadro", "Lista"]}),
]


async def test_screenshots_of_the_main_pages_in_both_languages(page: Page, gw: Gateway, tmp_path: Path):
    """Every main page and a conversation, in English and in Portuguese, each checked for its texts and
    kept as a screenshot under the test's tmp dir (the test artifacts to look at)."""
    problems = PageProblems(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await sign_in(page, gw)
    for language in ("en", "pt-BR"):
        if language != "en":
            await page.locator("#my-language").select_option(language)
            await expect(page.locator("html")).to_have_attribute("lang", language)
        for name, hash_, texts in MAIN_PAGES:
            await page.goto(f"{gw.base_url}/{hash_}")
            for text in texts[language]:
                await expect(page.get_by_text(text, exact=True).first).to_be_visible()
            await page.screenshot(path=str(tmp_path / f"{language}-{name}.png"))
        await page.goto(f"{gw.base_url}/#/")
        await page.locator("#conversation-list .conversation").first.click()
        send, reply, status = {"en": ("Send", "Reply", "Open"), "pt-BR": ("Enviar", "Responder", "Aberta")}[
            language
        ]
        await expect(page.locator("#send")).to_have_text(send)
        await expect(page.locator("#mode-reply")).to_have_text(reply)
        await expect(page.locator("#thread-status")).to_have_text(status)
        await page.screenshot(path=str(tmp_path / f"{language}-conversation.png"))
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(shots) == 2 * (len(MAIN_PAGES) + 1) and all(
        (tmp_path / s).stat().st_size > 10_000 for s in shots
    )
    assert problems.errors == []
