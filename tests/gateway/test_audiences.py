"""Audiences: filters over contact attributes, list items, tags, channel, consent and recency, with
exclusions; the preview names what the gate would refuse before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inbox import tables as t
from inbox.attributes import set_attributes
from inbox.contacts import resolve_contact
from inbox.tags import add_tag
from tests.gateway.policy_support import LOOPBACK, configure_channel, count_rows, seed_usage
from tests.harness import Gateway, ManualClock, start_gateway


async def seed_contacts(gw: Gateway, specs: list[dict[str, Any]]) -> list[int]:
    """Contacts with a loopback address (``phone``), attributes and tags, by the inbox's own functions."""
    ids: list[int] = []
    async with gw.container.db.write() as session:
        now = gw.clock()
        for spec in specs:
            contact = await resolve_contact(session, 1, "loopback", spec["phone"], spec.get("name"), now)
            if spec.get("attributes"):
                await set_attributes(session, contact, spec["attributes"])
            for tag in spec.get("tags", []):
                await add_tag(session, contact, tag, source="manual", now=now)
            ids.append(contact.id)
    return ids


async def preview(gw: Gateway, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    return await gw.api("POST", "/audiences/preview", json_body=body, token=token)


AFFILIATES = [
    {
        "phone": "+15551000001",
        "name": "Ana",
        "attributes": {"sales_count": 3, "badges": ["gold", "early"], "legal_entity": "person"},
        "tags": ["buyer"],
    },
    {
        "phone": "+15551000002",
        "name": "Bruno",
        "attributes": {"sales_count": 12, "badges": ["gold"]},
        "tags": ["buyer"],
    },
    {
        "phone": "+15551000003",
        "name": "Carla",
        "attributes": {"sales_count": 5, "badges": ["silver"]},
        "tags": ["buyer", "vip"],
    },
    {
        "phone": "+15551000004",
        "name": "Davi",
        "attributes": {"sales_count": 7, "badges": ["gold"], "legal_entity": "company"},
        "tags": ["buyer"],
    },
    {
        "phone": "+15551000005",
        "name": "Elisa",
        "attributes": {"sales_count": 1, "badges": ["gold"]},
        "tags": ["lead"],
    },
    {
        "phone": "+15551000006",
        "name": "Fábio",
        "attributes": {"sales_count": 9, "badges": ["gold"]},
        "tags": ["buyer"],
    },
    {
        "phone": "+15551000007",
        "name": "Gabi",
        "attributes": {"sales_count": 2, "badges": ["gold"]},
        "tags": ["buyer"],
    },
]


async def test_preview_filters_excludes_and_names_the_refusals_before_sending(
    tmp_path: Path, clock: ManualClock
):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=True, service_window=True, metered=False)
        ids = await seed_contacts(gw, AFFILIATES)
        loop = await gw.loopback()
        await loop.customer_writes("+15551000006", "YES")  # Fábio opted in and wrote just now
        await loop.next_sent()
        await loop.customer_writes("+15551000007", "STOP")  # Gabi opted out
        await loop.next_sent()
        messages_before = await count_rows(gw, t.Message)

        audience = {
            "match": "all",
            "conditions": [
                {"attribute": "sales_count", "op": "between", "value": [1, 10]},
                {"attribute": "badges", "type": "list", "op": "contains", "value": "gold"},
                {"tags": {"any": ["buyer"], "none": ["vip"]}},
                {"has_channel": "loopback"},
            ],
            "exclude_contact_ids": [ids[0]],  # Ana, removed by hand
            "exclude": {"conditions": [{"attribute": "legal_entity", "op": "eq", "value": "company"}]},
        }
        status, body = await preview(gw, {"filter": audience, "channel_id": LOOPBACK})
        assert status == 200, body
        # In: Fábio, Gabi (Bruno has 12 sales, Carla is vip/silver, Davi a company, Elisa a lead).
        assert body["count"] == 2
        assert [c["name"] for c in body["contacts"]] == ["Fábio", "Gabi"]
        assert body["refused"] == {"opted_out": 1}
        assert body["sendable"] == 1
        # Free text to someone who never wrote is refused by the window; a template is not.
        audience["exclude_contact_ids"] = []
        audience["conditions"] = [{"tags": {"any": ["lead"]}}]
        status, body = await preview(gw, {"filter": audience, "channel_id": LOOPBACK})
        assert body["count"] == 1 and body["refused"] == {"not_opted_in": 1}, body
        assert await count_rows(gw, t.Message) == messages_before  # a preview sends nothing

        # "any" of the conditions, paged by contact id.
        status, body = await preview(
            gw,
            {
                "filter": {
                    "match": "any",
                    "conditions": [
                        {"attribute": "sales_count", "op": "gt", "value": 10},
                        {"attribute": "legal_entity", "op": "is_set"},
                    ],
                },
                "limit": 2,
            },
        )
        assert status == 200 and body["count"] == 3, body
        assert [c["name"] for c in body["contacts"]] == ["Ana", "Bruno"]
        status, body = await preview(
            gw,
            {
                "filter": {
                    "match": "any",
                    "conditions": [
                        {"attribute": "sales_count", "op": "gt", "value": 10},
                        {"attribute": "legal_entity", "op": "is_set"},
                    ],
                },
                "limit": 2,
                "after": body["next_after"],
            },
        )
        assert [c["name"] for c in body["contacts"]] == ["Davi"] and body["next_after"] is None
    finally:
        await gw.close()


async def test_the_quota_and_recent_writers_show_in_the_preview(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=False, service_window=False, metered=True)
        await seed_contacts(gw, AFFILIATES)
        await seed_usage(gw, 995)  # room for 5 new conversations of the 7
        status, body = await preview(gw, {"filter": {"conditions": []}, "channel_id": LOOPBACK})
        assert status == 200, body
        assert body["count"] >= 7
        assert body["refused"]["quota_exhausted"] == body["count"] - 5
        assert body["sendable"] == 5

        loop = await gw.loopback()
        clock.advance(days=-10)
        await loop.customer_writes("+15551000003", "hello, ten days ago")
        clock.advance(days=10)
        await loop.customer_writes("+15551000004", "hello today")
        recent = [{"last_inbound_within_days": 7}, {"tags": {"any": ["buyer", "vip", "lead"]}}]
        status, body = await preview(gw, {"filter": {"conditions": recent}})
        assert [c["name"] for c in body["contacts"]] == ["Davi"], body
    finally:
        await gw.close()


async def test_filters_that_do_not_fit_are_refused_naming_the_field(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        bad = [
            ({"attribute": "sales_count", "type": "money", "op": "gt", "value": 3}, "unknown attribute type"),
            ({"attribute": "sales_count", "type": "number", "op": "contains", "value": "3"}, "does not fit"),
            ({"attribute": "legal_entity", "op": "gt", "value": "person"}, "does not fit"),
            ({"attribute": "sales_count", "op": "between", "value": [10, 1]}, "low <= high"),
            ({"attribute": "badges", "type": "list", "op": "eq", "value": "gold"}, "does not fit"),
            ({"attribute": "vip", "type": "boolean", "op": "eq", "value": "yes"}, "true or false"),
        ]
        for condition, problem in bad:
            status, body = await preview(gw, {"filter": {"conditions": [condition]}})
            assert status == 422, (condition, body)
            assert body["error"]["details"][0]["field"].startswith("filter.conditions.0"), body
            assert problem in body["error"]["message"], body
        status, body = await preview(gw, {"filter": {"conditions": [{"tags": {"any": ["  "]}}]}})
        assert status == 422 and body["error"]["details"][0]["field"] == "filter", body
        status, body = await preview(gw, {})
        assert status == 422 and "audience_id or filter" in body["error"]["message"]
        status, body = await preview(gw, {"audience_id": 999})
        assert status == 422 and body["error"]["details"][0]["field"] == "audience_id"
    finally:
        await gw.close()


async def test_saved_audiences_are_for_admins(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        await seed_contacts(gw, AFFILIATES)
        buyers = {"conditions": [{"tags": {"all": ["buyer"]}}]}
        status, saved = await gw.api("POST", "/audiences", json_body={"name": "Buyers", "filter": buyers})
        assert status == 201, saved
        status, body = await preview(gw, {"audience_id": saved["id"]})
        assert body["count"] == 6
        status, changed = await gw.api(
            "PATCH",
            f"/audiences/{saved['id']}",
            json_body={"filter": {"conditions": [{"tags": {"all": ["vip"]}}]}},
        )
        assert status == 200 and changed["filter"]["conditions"][0]["tags"]["all"] == ["vip"]
        status, body = await preview(gw, {"audience_id": saved["id"]})
        assert body["count"] == 1
        status, page = await gw.api("GET", "/audiences")
        assert [a["name"] for a in page["items"]] == ["Buyers"]

        _, agent = await gw.user("agent7@example.com", "agent", inbox_ids=[1])
        for method, path, body in [
            ("GET", "/audiences", None),
            ("GET", f"/audiences/{saved['id']}", None),
            ("POST", "/audiences/preview", {"filter": buyers}),
            ("POST", "/audiences", {"name": "Mine", "filter": buyers}),
        ]:
            status, answer = await gw.api(method, path, json_body=body, token=agent)
            assert status == 403, (path, answer)

        status, _ = await gw.api("DELETE", f"/audiences/{saved['id']}")
        assert status == 204
        status, _ = await gw.api("GET", f"/audiences/{saved['id']}")
        assert status == 404
    finally:
        await gw.close()
