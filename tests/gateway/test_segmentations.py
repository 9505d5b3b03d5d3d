"""Custom segmentations: checked against the product's kind and event fields, applied to new events."""

from __future__ import annotations

from tests.gateway.event_support import event, post, tags_of
from tests.harness import Gateway


async def _course_id(gw: Gateway) -> int:
    status, first = await post(gw, event("content_accessed", {"email": "first@example.com"}, lesson="1"))
    assert status == 201, first
    return int(first["event"]["product"]["id"])


def _big_spenders(product_id: int, **extra):
    return {
        "name": "Big spenders",
        "product_id": product_id,
        "event_type": "purchase_approved",
        "condition": {"rules": [{"field": "data.value", "op": "gte", "value": 500}]},
        "action": "add_tag",
        "tag": "Big Spender",
        **extra,
    }


async def test_a_segmentation_tags_contacts_whose_event_meets_its_condition(gateway: Gateway):
    product_id = await _course_id(gateway)
    status, seg = await gateway.api("POST", "/segmentations", json_body=_big_spenders(product_id))
    assert status == 201, seg
    assert seg["tag"] == "big spender" and seg["active"] is True

    _, big = await post(gateway, event("purchase_approved", {"email": "big@example.com"}, value=900))
    _, small = await post(gateway, event("purchase_approved", {"email": "small@example.com"}, value=90))
    assert await tags_of(gateway, big["event"]["contact_id"]) == {
        "product:c-42:buyer": "auto",
        "big spender": "manual",
    }
    assert await tags_of(gateway, small["event"]["contact_id"]) == {"product:c-42:buyer": "auto"}
    assert {"tag": "big spender", "action": "add_tag", "rule": seg["id"]} in big["event"]["effects"]

    # Inactive: new events are not segmented; active again: they are.
    status, seg = await gateway.api(
        "PUT", f"/segmentations/{seg['id']}", json_body=_big_spenders(product_id, active=False)
    )
    assert status == 200 and seg["active"] is False
    _, off = await post(gateway, event("purchase_approved", {"email": "off@example.com"}, value=900))
    assert "big spender" not in await tags_of(gateway, off["event"]["contact_id"])
    await gateway.api("PUT", f"/segmentations/{seg['id']}", json_body=_big_spenders(product_id))
    _, on = await post(gateway, event("purchase_approved", {"email": "on@example.com"}, value=900))
    assert "big spender" in await tags_of(gateway, on["event"]["contact_id"])

    # A condition on the contact's attributes, removing a tag.
    status, unseg = await gateway.api(
        "POST",
        "/segmentations",
        json_body={
            "name": "Refunds lose the VIP tag",
            "event_type": "purchase_refunded",
            "condition": {"rules": [{"field": "contact.plan", "op": "eq", "value": "gold"}]},
            "action": "remove_tag",
            "tag": "big spender",
        },
    )
    assert status == 201, unseg
    await post(
        gateway, event("purchase_refunded", {"email": "on@example.com", "attributes": {"plan": "silver"}})
    )
    assert "big spender" in await tags_of(gateway, on["event"]["contact_id"])
    await post(
        gateway, event("purchase_refunded", {"email": "on@example.com", "attributes": {"plan": "gold"}})
    )
    assert "big spender" not in await tags_of(gateway, on["event"]["contact_id"])


async def test_segmentations_that_cannot_work_are_refused_naming_the_problem(gateway: Gateway):
    product_id = await _course_id(gateway)
    cases = [
        (_big_spenders(product_id, event_type="subscription_started"), "event_type", "course"),
        (_big_spenders(product_id, event_type="teleported"), "event_type", "unknown event type"),
        (
            _big_spenders(
                product_id, condition={"rules": [{"field": "data.rating", "op": "gte", "value": 4}]}
            ),
            "condition.rules[0]",
            "no field 'rating'",
        ),
        (
            _big_spenders(product_id, condition={"rules": [{"field": "value", "op": "gte", "value": 4}]}),
            "condition.rules[0]",
            "data.<name>",
        ),
        (
            _big_spenders(
                product_id, condition={"rules": [{"field": "data.value", "op": "gte", "value": "x"}]}
            ),
            "condition.rules[0]",
            "needs a number",
        ),
        (_big_spenders(product_id, tag="product:c-42:buyer"), "tag", "automatic"),
        (_big_spenders(999), "product_id", "does not exist"),
    ]
    for body, field, words in cases:
        status, err = await gateway.api("POST", "/segmentations", json_body=body)
        assert status == 422, (body, err)
        assert err["error"]["details"][0]["field"] == field and words in err["error"]["message"], err
    status, page = await gateway.api("GET", "/segmentations")
    assert page["items"] == []
    # Custom events carry any field.
    status, ok = await gateway.api(
        "POST",
        "/segmentations",
        json_body={
            "name": "Webinar A",
            "event_type": "custom.webinar_joined",
            "condition": {"rules": [{"field": "data.room", "op": "eq", "value": "A"}]},
            "action": "add_tag",
            "tag": "webinar-a",
        },
    )
    assert status == 201, ok
    _, agent = await gateway.user("agent3@example.com")
    status, _ = await gateway.api("GET", "/segmentations", token=agent)
    assert status == 403
