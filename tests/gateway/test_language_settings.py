"""Languages through the API: the agent's own (PATCH /users/me), the account's (PATCH /account), and the
effective one the pages use (GET /auth/session)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.harness import Gateway, start_gateway


@pytest_asyncio.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = await start_gateway(tmp_path)
    yield gateway
    await gateway.close()


async def test_an_agent_sets_their_language_and_falls_back_to_the_account(gw: Gateway):
    _, token = await gw.user("ana@example.com")
    status, session = await gw.api("GET", "/auth/session", token=token)
    assert (status, session["language"], session["user"]["language"]) == (200, "en", None)

    status, me = await gw.api("PATCH", "/users/me", token=token, json_body={"language": "pt-BR"})
    assert (status, me["language"], me["availability"]) == (200, "pt-BR", "offline")
    status, session = await gw.api("GET", "/auth/session", token=token)
    assert session["language"] == "pt-BR"

    # Back to the account's language, which a super admin sets for everyone who has none of their own.
    status, me = await gw.api("PATCH", "/users/me", token=token, json_body={"language": None})
    assert (status, me["language"]) == (200, None)
    status, account = await gw.api("PATCH", "/account", json_body={"language": "pt-BR"})
    assert (status, account["language"]) == (200, "pt-BR")
    status, session = await gw.api("GET", "/auth/session", token=token)
    assert session["language"] == "pt-BR"


async def test_presence_and_language_in_one_patch(gw: Gateway):
    _, token = await gw.user("bo@example.com")
    status, me = await gw.api(
        "PATCH", "/users/me", token=token, json_body={"availability": "away", "language": "en"}
    )
    assert (status, me["availability"], me["language"]) == (200, "away", "en")


async def test_unsupported_or_missing_values_are_refused_naming_the_field(gw: Gateway):
    _, token = await gw.user("cy@example.com")
    status, body = await gw.api("PATCH", "/users/me", token=token, json_body={"language": "klingon"})
    assert status == 422 and body["error"]["details"][0]["field"] == "language"
    status, body = await gw.api("PATCH", "/users/me", token=token, json_body={})
    assert status == 422 and "language" in body["error"]["message"]
    status, body = await gw.api("PATCH", "/users/me", token=token, json_body={"availability": None})
    assert status == 422 and body["error"]["details"][0]["field"] == "availability"
    status, body = await gw.api("PATCH", "/account", json_body={"language": "fr"})
    assert status == 422 and body["error"]["details"][0]["field"] == "language"


async def test_only_super_admins_change_the_account_language(gw: Gateway):
    _, token = await gw.user("admin2@example.com", role="admin")
    status, _ = await gw.api("PATCH", "/account", token=token, json_body={"language": "pt-BR"})
    assert status == 403
    status, account = await gw.api("GET", "/account", token=token)
    assert account["language"] == "en"
