"""Contact tags by hand, automatic tags only rules change, tag and attribute filters, the contact limit."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from inbox import tables as t
from inbox.attributes import attribute_condition
from inbox.tags import add_tag, tag_filter
from tests.gateway.policy_support import FLAGS_OFF, configure_channel, send_to
from tests.harness import Gateway, jobs_done, start_gateway


async def _contact_id(gw: Gateway, phone: str) -> int:
    loop = await gw.loopback()
    await loop.customer_writes(phone, "hello")
    await jobs_done(gw)
    status, page = await gw.api("GET", f"/contacts?q={phone.lstrip('+')}")
    assert status == 200 and len(page["items"]) == 1, page
    return int(page["items"][0]["id"])


async def test_tags_by_hand_and_automatic_tags_that_only_rules_remove(gateway: Gateway):
    contact_id = await _contact_id(gateway, "+15550300100")
    stream = await gateway.stream()
    await stream.ready()

    status, tags = await gateway.api("POST", f"/contacts/{contact_id}/tags", json_body={"tag": " VIP "})
    assert status == 200, tags
    assert [(x["tag"], x["source"]) for x in tags["items"]] == [("vip", "manual")]
    added = await stream.next(lambda e: e["type"] == "contact.tag_added")
    assert added["data"] == {"contact_id": contact_id, "tag": "vip", "source": "manual"}
    # Adding it again changes nothing.
    status, tags = await gateway.api("POST", f"/contacts/{contact_id}/tags", json_body={"tag": "vip"})
    assert status == 200 and len(tags["items"]) == 1

    async with gateway.container.db.write() as session:
        contact = await session.get(t.Contact, contact_id)
        assert contact is not None
        await add_tag(session, contact, "product:7:buyer", source="auto", now=gateway.clock())

    status, shown = await gateway.api("GET", f"/contacts/{contact_id}")
    assert [(x["tag"], x["source"]) for x in shown["tags"]] == [
        ("product:7:buyer", "auto"),
        ("vip", "manual"),
    ]
    status, counts = await gateway.api("GET", "/tags")
    assert status == 200
    assert {(c["tag"], c["source"], c["contacts"]) for c in counts["items"]} == {
        ("product:7:buyer", "auto", 1),
        ("vip", "manual", 1),
    }

    status, err = await gateway.api("DELETE", f"/contacts/{contact_id}/tags/product:7:buyer")
    assert status == 422 and err["error"]["details"][0]["field"] == "tag"
    assert "automatic" in err["error"]["message"]
    status, tags = await gateway.api("DELETE", f"/contacts/{contact_id}/tags/vip")
    assert status == 200 and [x["tag"] for x in tags["items"]] == ["product:7:buyer"]
    removed = await stream.next(lambda e: e["type"] == "contact.tag_removed")
    assert removed["data"]["tag"] == "vip"

    status, err = await gateway.api("POST", f"/contacts/{contact_id}/tags", json_body={"tag": "   "})
    assert status == 422 and err["error"]["details"][0]["field"] == "tag"


async def test_agents_tag_only_contacts_they_can_see_and_do_not_list_the_accounts_tags(gateway: Gateway):
    contact_id = await _contact_id(gateway, "+15550300200")
    _, outsider = await gateway.user("outsider@example.com", inbox_ids=[])
    status, _ = await gateway.api(
        "POST", f"/contacts/{contact_id}/tags", json_body={"tag": "x"}, token=outsider
    )
    assert status == 404
    status, _ = await gateway.api("GET", "/tags", token=outsider)
    assert status == 403


async def test_tag_and_attribute_filters_select_contacts(tmp_path: Path, database_url: str | None):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        ids = {}
        for name, phone, attrs, tags in [
            ("ana", "+15550300301", {"plan": "gold", "spent": 120, "city": "São Paulo"}, ["buyer", "vip"]),
            ("bia", "+15550300302", {"plan": "silver", "spent": 40}, ["buyer"]),
            ("caio", "+15550300303", {"spent": "7.5"}, ["refunded"]),
        ]:
            ids[name] = cid = await _contact_id(gw, phone)
            status, body = await gw.api("PATCH", f"/contacts/{cid}", json_body={"attributes": attrs})
            assert status == 200, body
            for tag in tags:
                await gw.api("POST", f"/contacts/{cid}/tags", json_body={"tag": tag})
        # A removed attribute leaves the index too.
        await gw.api("PATCH", f"/contacts/{ids['bia']}", json_body={"attributes": {"plan": None}})

        async def names(*conditions) -> set[str]:
            async with gw.container.db.read() as session:
                found = set(
                    await session.scalars(select(t.Contact.id).where(t.Contact.account_id == 1, *conditions))
                )
            return {n for n, i in ids.items() if i in found}

        assert await names(tag_filter(any_of=["vip", "refunded"])) == {"ana", "caio"}
        assert await names(tag_filter(all_of=["buyer", "vip"])) == {"ana"}
        assert await names(tag_filter(any_of=["buyer"], none_of=["VIP"])) == {"bia"}
        assert await names(attribute_condition("spent", "gte", 40)) == {"ana", "bia"}
        assert await names(attribute_condition("spent", "lt", 10)) == {"caio"}
        assert await names(attribute_condition("plan", "eq", "gold")) == {"ana"}
        assert await names(attribute_condition("plan", "exists")) == {"ana"}
        assert await names(attribute_condition("city", "contains", "PAULO")) == {"ana"}
        assert await names(attribute_condition("spent", "in", [40, 120])) == {"ana", "bia"}
    finally:
        await gw.close()


async def test_contacts_over_the_limit_are_shown_and_refused_business_sends(gateway: Gateway):
    await configure_channel(gateway, **FLAGS_OFF)
    inside = await _contact_id(gateway, "+15550300401")
    async with gateway.container.db.read() as session:
        existing = len(list(await session.scalars(select(t.Contact.id).where(t.Contact.account_id == 1))))
    status, account = await gateway.api("PATCH", "/account", json_body={"contact_limit": existing})
    assert status == 200 and account["contact_limit"] == existing

    over = await _contact_id(gateway, "+15550300402")
    status, shown = await gateway.api("GET", f"/contacts/{over}")
    assert shown["over_limit"] is True
    status, shown = await gateway.api("GET", f"/contacts/{inside}")
    assert shown["over_limit"] is False

    refused = await send_to(gateway, "+15550300402", "Our sale")
    assert (refused["status"], refused["reason"]) == ("failed", "contact_limit")
    assert refused["text"] == "Our sale"
    allowed = await send_to(gateway, "+15550300401", "Our sale")
    assert allowed["status"] == "queued"
    # A reply by an agent to the contact who wrote still goes.
    status, reply = await gateway.api(
        "POST", f"/conversations/{refused['conversation_id']}/messages", json_body={"text": "Happy to help"}
    )
    assert status == 201 and reply["status"] == "queued"

    status, account = await gateway.api("PATCH", "/account", json_body={"contact_limit": None})
    assert account["contact_limit"] is None
    status, shown = await gateway.api("GET", f"/contacts/{over}")
    assert shown["over_limit"] is False
