"""Bad input gets a 4xx with the error shape, names the problem, and writes nothing."""

from __future__ import annotations

import aiohttp

from tests.harness import Gateway


async def count_messages(gw: Gateway, conversation_id: int) -> int:
    status, page = await gw.api("GET", f"/conversations/{conversation_id}/messages?limit=200")
    assert status == 200
    return len(page["items"])


def assert_error(body, code: str, mentions: str | None = None) -> None:
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if mentions:
        assert mentions in body["error"]["message"], body


async def test_missing_and_wrong_tokens_are_401(gateway: Gateway):
    async with gateway.http.get(f"{gateway.base_url}/api/v1/conversations") as resp:
        assert resp.status == 401
        assert_error(await resp.json(), "unauthenticated", "missing bearer token")
    status, body = await gateway.api("GET", "/conversations", token="sb_not-a-real-token")
    assert status == 401
    assert_error(body, "unauthenticated", "not valid")


async def test_malformed_json_wrong_types_and_unknown_ids(gateway: Gateway):
    loop = await gateway.loopback()
    conv = (await loop.customer_writes("+15551110000", "hi")).conversation_id
    before = await count_messages(gateway, conv)

    status, body = await gateway.api(
        "POST",
        f"/conversations/{conv}/messages",
        data=b'{"text": "unterminated',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert_error(body, "invalid_json")

    status, body = await gateway.api("POST", f"/conversations/{conv}/messages", json_body={"text": ["a"]})
    assert status == 422
    assert_error(body, "validation_error", "text")
    assert body["error"]["details"][0]["field"] == "text"

    status, body = await gateway.api("POST", f"/conversations/{conv}/messages", json_body={})
    assert status == 422
    assert_error(body, "validation_error", "give text, a template or attachments")

    status, body = await gateway.api("POST", "/conversations/999999/messages", json_body={"text": "hello"})
    assert status == 404
    assert_error(body, "not_found", "999999")

    status, body = await gateway.api("GET", "/conversations/abc")
    assert status == 400
    assert_error(body, "bad_id")

    status, body = await gateway.api("GET", "/conversations?status=sleeping")
    assert status == 422
    assert_error(body, "validation_error", "status")

    status, body = await gateway.api("GET", "/conversations?cursor=garbage!")
    assert status == 400
    assert_error(body, "bad_cursor")

    status, body = await gateway.api("GET", "/no/such/endpoint")
    assert status == 404
    assert_error(body, "not_found")

    assert await count_messages(gateway, conv) == before  # nothing was written


async def test_unknown_references_in_a_body_are_named(gateway: Gateway):
    status, body = await gateway.api("POST", "/inboxes", json_body={"name": "Sales", "member_ids": [4242]})
    assert status == 422
    assert_error(body, "validation_error", "member_ids")
    status, inboxes = await gateway.api("GET", "/inboxes")
    assert [i["name"] for i in inboxes["items"]] == ["Support"]  # the failed create left nothing

    status, body = await gateway.api("POST", "/messages", json_body={"channel_id": 1, "to": "", "text": "x"})
    assert status == 422 and "to" in body["error"]["message"]


async def test_an_agent_sees_only_inboxes_it_belongs_to(gateway: Gateway):
    loop = await gateway.loopback()
    conv = (await loop.customer_writes("+15551112222", "private matter")).conversation_id
    status, sales = await gateway.api("POST", "/inboxes", json_body={"name": "Sales"})
    assert status == 201
    _, outsider = await gateway.user("outsider@example.com", inbox_ids=[sales["id"]])
    _, member = await gateway.user("member@example.com", inbox_ids=[1])

    status, page = await gateway.api("GET", "/conversations", token=outsider)
    assert status == 200 and page["items"] == []
    status, body = await gateway.api("GET", f"/conversations/{conv}", token=outsider)
    assert status == 404
    status, body = await gateway.api(
        "POST", f"/conversations/{conv}/messages", token=outsider, json_body={"text": "sneaky"}
    )
    assert status == 404
    assert await count_messages(gateway, conv) == 1

    status, page = await gateway.api("GET", "/conversations", token=member)
    assert [c["id"] for c in page["items"]] == [conv] or conv in [c["id"] for c in page["items"]]

    # Agents cannot administer.
    status, body = await gateway.api("POST", "/inboxes", token=member, json_body={"name": "Mine"})
    assert status == 403
    assert_error(body, "forbidden")
    status, body = await gateway.api("POST", "/users", token=member, json_body={"email": "x@example.com"})
    assert status == 403


async def test_stream_shows_an_agent_only_its_inboxes(gateway: Gateway):
    status, sales = await gateway.api("POST", "/inboxes", json_body={"name": "Sales"})
    status, ch = await gateway.api(
        "POST", "/channels", json_body={"inbox_id": sales["id"], "kind": "loopback", "name": "Sales line"}
    )
    assert status == 201 and ch["config"]["webhook_secret"]
    _, support_agent = await gateway.user("support-agent@example.com", inbox_ids=[1])
    stream = await gateway.stream(token=support_agent)
    await stream.ready()
    sales_line = await gateway.container.adapters.get(ch["id"])
    await sales_line.customer_writes("+15551113333", "for sales only")  # type: ignore[attr-defined]
    support = await gateway.loopback()
    await support.customer_writes("+15551114444", "for support")
    event = await stream.next(lambda e: e["type"] == "message.created")
    assert event["data"]["message"]["text"] == "for support"
    assert all(e["inbox_id"] == 1 for e in stream.received)


async def test_stream_rejects_bad_after_and_missing_token(gateway: Gateway):
    status, body = await gateway.api("GET", "/stream?after=yesterday")
    assert status == 400
    assert_error(body, "bad_after")
    try:
        await gateway.http.ws_connect(f"{gateway.base_url}/api/v1/stream")
        raise AssertionError("connected without a token")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401


async def test_pagination_walks_every_conversation_once(gateway: Gateway):
    loop = await gateway.loopback()
    made = {(await loop.customer_writes(f"+1555222{i:04d}", f"hello {i}")).conversation_id for i in range(7)}
    seen: list[int] = []
    cursor = None
    while True:
        path = "/conversations?limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = await gateway.api("GET", path)
        assert status == 200 and len(page["items"]) <= 3
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert made <= set(seen) and len(seen) == len(set(seen))


async def test_search_finds_contacts_and_message_text(gateway: Gateway):
    loop = await gateway.loopback()
    a = await loop.customer_writes("+15553330001", "my invoice is wrong", name="Zoë Invoice")
    b = await loop.customer_writes("+15553330002", "hello there", name="Bob")
    status, page = await gateway.api("GET", "/conversations?q=invoice")
    assert {c["id"] for c in page["items"]} == {a.conversation_id}
    status, page = await gateway.api("GET", "/conversations?q=BOB")
    assert {c["id"] for c in page["items"]} == {b.conversation_id}
    status, page = await gateway.api("GET", "/contacts?q=zo")
    assert [c["name"] for c in page["items"]] == ["Zoë Invoice"]


async def test_conversation_patch_leaves_activity_and_validates(gateway: Gateway):
    loop = await gateway.loopback()
    conv = (await loop.customer_writes("+15554440000", "hi")).conversation_id
    agent_id, _ = await gateway.user("helper@example.com", inbox_ids=[1])
    status, body = await gateway.api(
        "PATCH",
        f"/conversations/{conv}",
        json_body={
            "assignee_id": agent_id,
            "priority": "high",
            "labels": ["Billing", "vip"],
            "status": "pending",
        },
    )
    assert status == 200, body
    assert body["assignee_id"] == agent_id and body["priority"] == "high"
    assert body["labels"] == ["billing", "vip"] and body["status"] == "pending"
    status, page = await gateway.api("GET", "/conversations?label=vip")
    assert [c["id"] for c in page["items"]] == [conv]
    status, msgs = await gateway.api("GET", f"/conversations/{conv}/messages")
    activity = [m["text"] for m in msgs["items"] if m["kind"] == "activity"]
    assert any("assigned helper" in line for line in activity)

    _, outsider_inbox = await gateway.api("POST", "/inboxes", json_body={"name": "Other"})
    stranger_id, _ = await gateway.user("stranger@example.com", inbox_ids=[outsider_inbox["id"]])
    status, body = await gateway.api(
        "PATCH", f"/conversations/{conv}", json_body={"assignee_id": stranger_id}
    )
    assert status == 422 and "not a member" in body["error"]["message"]
    status, body = await gateway.api(
        "PATCH", f"/conversations/{conv}", json_body={"snoozed_until": "2030-01-01"}
    )
    assert status == 422


async def test_ids_in_paths_that_only_look_like_digits_are_4xx_not_500(gateway: Gateway):
    """'²'.isdigit() is true but int('²') fails: such ids are refused, not a server error."""
    loop = await gateway.loopback()
    message_id = (await loop.customer_writes("+15551110001", "hi")).message_id
    async with gateway.http.post(f"{gateway.base_url}/webhooks/whatsapp/%C2%B2", data=b"{}") as resp:
        assert resp.status == 404
        assert_error(await resp.json(), "not_found", "²")
    status, body = await gateway.api("GET", f"/messages/{message_id}/attachments/%C2%B2")
    assert status == 400
    assert_error(body, "bad_id", "²")
