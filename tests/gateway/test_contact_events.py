"""Contact events from integrations: auto-captured contacts, automatic tags, history, signed sources."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from tests.gateway.event_support import event, post, tags_of
from tests.harness import Gateway, start_gateway


async def test_purchase_cart_abandonment_and_refund_tag_new_contacts_automatically(
    tmp_path: Path, database_url: str | None
):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        _, token = await gw.user("hotmart@example.com", role="integration")
        stream = await gw.stream()
        await stream.ready()

        bought = event(
            "purchase_approved", {"email": "Ana@Example.com", "name": "Ana"}, value=197, currency="BRL"
        )
        status, first = await post(gw, bought, token)
        assert status == 201, first
        assert first["contact_created"] is True and first["duplicate"] is False
        ana = first["event"]["contact_id"]
        assert first["event"]["effects"] == [
            {"tag": "product:c-42:buyer", "action": "add_tag", "rule": "standard"}
        ]
        status, contact = await gw.api("GET", f"/contacts/{ana}")
        assert contact["auto_captured"] is True and contact["email"] == "ana@example.com"
        assert contact["name"] == "Ana"
        assert await tags_of(gw, ana) == {"product:c-42:buyer": "auto"}
        captured = await stream.next(lambda e: e["type"] == "contact.event")
        assert captured["data"]["contact_id"] == ana and captured["data"]["type"] == "purchase_approved"

        # The same event again: 200, the stored event, nothing new.
        status, again = await post(gw, bought, token)
        assert status == 200 and again["duplicate"] is True
        assert again["event"]["id"] == first["event"]["id"]

        status, cart = await post(
            gw, event("cart_abandoned", {"phone": "+55 11 98765-4321"}, value=97), token
        )
        assert status == 201 and cart["contact_created"] is True
        bia = cart["event"]["contact_id"]
        assert await tags_of(gw, bia) == {"product:c-42:cart_abandoned": "auto"}
        status, contact = await gw.api("GET", f"/contacts/{bia}")
        assert contact["phone"] == "+5511987654321" and contact["auto_captured"] is True

        # Bia buys after all: buyer, no longer an abandoned cart. Then Ana gets her money back.
        await post(gw, event("purchase_approved", {"phone": "+5511987654321"}, value=97), token)
        assert await tags_of(gw, bia) == {"product:c-42:buyer": "auto"}
        status, refund = await post(
            gw, event("purchase_refunded", {"email": "ana@example.com"}, value=197), token
        )
        assert status == 201 and refund["contact_created"] is False
        assert await tags_of(gw, ana) == {"product:c-42:refunded": "auto"}

        status, history = await gw.api("GET", f"/contacts/{ana}/events")
        assert [e["type"] for e in history["items"]] == ["purchase_approved", "purchase_refunded"]
        assert history["items"][0]["data"] == {"value": 197, "currency": "BRL"}
        product_id = history["items"][0]["product"]["id"]
        status, per_product = await gw.api("GET", f"/products/{product_id}/events")
        assert [e["type"] for e in per_product["items"]] == [
            "purchase_approved",
            "cart_abandoned",
            "purchase_approved",
            "purchase_refunded",
        ]
        status, product = await gw.api("GET", f"/products/{product_id}")
        assert product["kind"] == "course" and "subscription_started" not in product["event_types"]
        assert {"event_type": "purchase_refunded", "action": "add_tag", "tag": "product:c-42:refunded"} in (
            product["automatic_tags"]
        )
        # The automatic tag is listed as such and cannot be taken off by hand.
        status, counts = await gw.api("GET", "/tags")
        assert {"tag": "product:c-42:buyer", "source": "auto", "contacts": 1} in counts["items"]
        status, err = await gw.api("DELETE", f"/contacts/{ana}/tags/product:c-42:refunded")
        assert status == 422
        status, err = await gw.api("POST", f"/contacts/{ana}/tags", json_body={"tag": "product:c-42:buyer"})
        assert status == 422 and "automatic" in err["error"]["message"]
    finally:
        await gw.close()


async def test_bad_events_are_refused_naming_the_field(gateway: Gateway):
    contact = {"email": "someone@example.com"}
    cases = [
        (event("subscription_started", contact), "type", "does not happen to a course"),
        (event("teleported", contact), "type", "unknown event type"),
        (event("purchase_approved", contact, product=None), "type", "needs a product"),
        (event("purchase_approved", contact, product={"id": "NEW-1"}), "product.kind", "give its kind"),
        (event("purchase_approved", {"phone": "12"}), "contact.phone", "phone"),
        (event("purchase_approved", {"name": "nobody"}), "contact", "email, phone or external_id"),
    ]
    for body, field, words in cases:
        status, err = await post(gateway, body)
        assert status == 422, (body, err)
        assert err["error"]["details"][0]["field"] == field, err
        assert words in err["error"]["message"], err
    # Nothing of them was stored: no contact was captured.
    status, page = await gateway.api("GET", "/contacts?q=someone")
    assert page["items"] == []
    # A custom event needs no product.
    status, ok = await post(gateway, event("custom.webinar_joined", contact, product=None, room="A"))
    assert status == 201, ok

    _, agent = await gateway.user("agent2@example.com", role="agent")
    status, err = await post(gateway, event("custom.x", contact, product=None), agent)
    assert status == 403


async def test_a_signed_source_posts_events_and_a_bad_signature_is_refused(gateway: Gateway):
    status, source = await gateway.api("POST", "/event-sources", json_body={"name": "Hotmart"})
    assert status == 201 and source["secret"]
    status, listed = await gateway.api("GET", "/event-sources")
    assert listed["items"][0]["secret"] is None

    raw = json.dumps(event("purchase_approved", {"external_id": "hm-991", "email": "c@example.com"})).encode()
    signature = "sha256=" + hmac.new(source["secret"].encode(), raw, hashlib.sha256).hexdigest()
    url = f"{gateway.base_url}{source['webhook_path']}"
    async with gateway.http.post(
        url, data=raw, headers={"X-Switchboard-Signature": "sha256=" + "0" * 64}
    ) as r:
        assert r.status == 401
    async with gateway.http.post(url, data=raw, headers={"X-Switchboard-Signature": signature}) as r:
        assert r.status == 201, await r.text()
        body = await r.json()
    assert body["contact_created"] is True
    status, contact = await gateway.api("GET", f"/contacts/{body['event']['contact_id']}")
    assert {"kind": "external", "address": "hm-991"} in contact["identities"]
