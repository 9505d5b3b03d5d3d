"""The website chat speaks the visitor's language: Portuguese for a pt-BR browser, English otherwise,
the channel's own title and messages as the admin wrote them. In a real browser (Debian's Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.gateway.widget_tabs import add_webchat_channel
from tests.harness import Gateway, start_gateway

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webchat"
CHAT = "[data-switchboard-chat]"


@pytest.fixture
async def gw(tmp_path: Path):
    gateway = await start_gateway(tmp_path)
    yield gateway
    await gateway.close()


async def open_widget(browser: Browser, gw: Gateway, locale: str, query: str = ""):
    context = await browser.new_context(locale=locale, viewport={"width": 1000, "height": 760})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{gw.base_url}/demo/{query}")
    launcher = page.locator(f"{CHAT} .launcher")
    await launcher.click()
    await expect(page.locator(f"{CHAT} .panel")).to_be_visible()
    return context, page, errors


async def test_a_visitor_whose_browser_says_pt_br_sees_the_widget_in_portuguese(
    browser: Browser, gw: Gateway
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page, errors = await open_widget(browser, gw, "pt-BR")
    await expect(page.locator(f"{CHAT} h2")).to_have_text("Fale conosco")
    await expect(page.locator(f"{CHAT} .row.system .bubble")).to_have_text("Olá! Como podemos ajudar?")
    await expect(page.locator(f"{CHAT} .presence-text")).to_have_text("Offline")
    await expect(page.locator(f"{CHAT} .notice p")).to_have_text(
        "Não estamos disponíveis agora. Deixe seu e-mail e responderemos por lá."
    )
    await expect(page.locator(f"{CHAT} .launcher")).to_have_attribute("aria-label", "Fechar o chat")
    box = page.locator(f"{CHAT} textarea")
    await expect(box).to_have_attribute("placeholder", "Escreva uma mensagem…")
    await expect(page.locator(f"{CHAT} .composer button[type=submit]")).to_have_text("Enviar")

    await box.fill("x" * 4001)  # over the limit: said in Portuguese, the number as Brazilians write it
    await box.press("Enter")
    await expect(page.locator(f"{CHAT} .error")).to_have_text(
        "As mensagens podem ter no máximo 4.000 caracteres."
    )
    await box.fill("Oi, meu pedido chegou?")
    await box.press("Enter")
    await expect(page.locator(f"{CHAT} .row.visitor .meta")).to_have_text("Enviada")
    await expect(page.locator(f"{CHAT} .error")).to_be_hidden()
    await page.screenshot(path=ARTIFACTS / "widget-pt-BR.png")
    assert errors == []
    await context.close()


async def test_other_browsers_get_english_and_the_channel_keeps_its_own_words(browser: Browser, gw: Gateway):
    context, page, errors = await open_widget(browser, gw, "de-DE")  # no German: English
    await expect(page.locator(f"{CHAT} h2")).to_have_text("Chat with us")
    await expect(page.locator(f"{CHAT} .composer button[type=submit]")).to_have_text("Send")
    await page.screenshot(path=ARTIFACTS / "widget-en.png")
    await context.close()

    await add_webchat_channel(gw, "loja-ana", title="Loja Ana")
    context, page, errors = await open_widget(browser, gw, "pt-BR", "?channel=loja-ana")
    await expect(page.locator(f"{CHAT} h2")).to_have_text("Loja Ana")  # what the admin wrote, as written
    await expect(page.locator(f"{CHAT} .composer button[type=submit]")).to_have_text("Enviar")
    assert errors == []
    await context.close()


async def test_the_served_widget_carries_only_the_widget_texts(gw: Gateway):
    async with gw.http.get(f"{gw.base_url}/widget.js") as response:
        assert response.status == 200
        source = await response.text()
    assert '"widget.send":"Enviar"' in source and '"widget.send":"Send"' in source
    assert "shell.sign_out" not in source  # the inbox's texts stay out of every visitor's download
