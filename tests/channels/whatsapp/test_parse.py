"""The webhook parser and signature check on recorded payloads, and fuzzed with hypothesis."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.whatsapp.parse import parse_envelope
from channels.whatsapp.signature import sign, verify
from inbox.model import InvalidWebhook, MessageStatus, Reason

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "whatsapp"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_reference_signature_vector():
    # shared/reference/protocols.md §1, "Signature"
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    expected = "sha256=02fe0c96d28c59ddb7cf81eff0ca05809b360ba73b63c28210b5906a0a107d1f"
    assert sign("app_secret_123", body) == expected
    assert verify("app_secret_123", body, expected)
    assert verify("app_secret_123", body, expected.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=02fe0c96d28c59ddb7cf81eff0ca05809b360ba73b63c28210b5906a0a107d1f",
        "sha256=02fe0c96d28c59ddb7cf81eff0ca05809b360ba73b63c28210b5906a0a107d1e",
        "02fe0c96d28c59ddb7cf81eff0ca05809b360ba73b63c28210b5906a0a107d1f",
    ],
)
def test_wrong_or_missing_signatures_fail(header):
    assert not verify("app_secret_123", b'{"object":"whatsapp_business_account","entry":[]}', header)


def test_signature_covers_the_exact_bytes():
    # The same JSON with different whitespace is a different body: re-serialising would break it.
    good = sign("s", b'{"a":1}')
    assert not verify("s", b'{"a": 1}', good)
    assert not verify("other", b'{"a":1}', good)


def test_text_message_with_profile_name_and_time():
    parsed = parse_envelope(7, load("text.json"))
    assert not parsed.statuses
    [item] = parsed.messages
    m = item.message
    assert (m.channel_id, m.sender, m.sender_name, m.text, m.content_type) == (
        7,
        "16505551234",
        "Ann",
        "Hi",
        "text",
    )
    assert m.provider_message_id.startswith("wamid.HBgL")
    assert m.received_at == datetime.fromtimestamp(1697043223, UTC)
    assert m.raw["text"] == {"body": "Hi"}


def test_image_asks_for_its_media():
    [item] = parse_envelope(1, load("image.json")).messages
    assert item.message.content_type == "image" and item.message.text == "my parcel"
    assert item.media is not None and (item.media.media_id, item.media.mime_type) == (
        "1234567890",
        "image/jpeg",
    )


@pytest.mark.parametrize(
    ("fixture", "content_type", "text", "refs"),
    [
        ("interactive_button_reply.json", "interactive", "Yes", ("wamid.OUT",)),
        ("interactive_list_reply.json", "interactive", "Row", ("wamid.OUT",)),
        ("template_button.json", "button", "Stop promotions", ("wamid.TPL",)),
        ("reaction.json", "reaction", "\U0001f44d", ("wamid.OUT",)),
        ("location.json", "location", "Praça da Sé, São Paulo (-23.5505, -46.6333)", ()),
    ],
)
def test_message_types(fixture, content_type, text, refs):
    [item] = parse_envelope(1, load(fixture)).messages
    assert (item.message.content_type, item.message.text, item.message.references) == (
        content_type,
        text,
        refs,
    )
    assert item.media is None


@pytest.mark.parametrize("fixture", ["unsupported.json", "poll_unknown_type.json"])
def test_unknown_types_are_kept_as_unsupported_with_the_raw_item(fixture):
    payload = load(fixture)
    [item] = parse_envelope(1, payload).messages
    assert item.message.content_type == "unsupported" and item.message.text is None
    assert item.message.raw == payload["entry"][0]["changes"][0]["value"]["messages"][0]


def test_statuses_and_failed_reasons():
    assert parse_envelope(1, load("status_sent.json")).statuses[0].status is MessageStatus.SENT
    assert parse_envelope(1, load("status_delivered.json")).statuses[0].status is MessageStatus.DELIVERED
    assert parse_envelope(1, load("status_read.json")).statuses[0].status is MessageStatus.READ
    [failed] = parse_envelope(1, load("status_failed_131047.json")).statuses
    assert (failed.status, failed.error_code, failed.error_title, failed.reason) == (
        MessageStatus.FAILED,
        "131047",
        "Re-engagement message",
        Reason.WINDOW_CLOSED,
    )
    [opted_out] = parse_envelope(1, load("status_failed_131050.json")).statuses
    assert opted_out.reason is Reason.OPTED_OUT and opted_out.error_code == "131050"


def test_every_entry_change_message_and_status_is_walked():
    parsed = parse_envelope(1, load("batch.json"))
    assert [(m.message.provider_message_id, m.message.sender_name) for m in parsed.messages] == [
        ("wamid.B1", "Ann"),
        ("wamid.B2", "Bo"),
        ("wamid.B3", "Cy"),
    ]
    assert [(s.provider_message_id, s.status) for s in parsed.statuses] == [
        ("wamid.OUT1", MessageStatus.DELIVERED),
        ("wamid.OUT2", MessageStatus.READ),
    ]


def test_non_message_changes_and_other_objects_are_ignored():
    assert not parse_envelope(1, load("user_preferences.json")).messages
    assert not parse_envelope(1, {"object": "page", "entry": [{"changes": []}]}).messages
    with pytest.raises(InvalidWebhook):
        parse_envelope(1, ["not", "an", "object"])


# -- fuzzing ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_parser_never_crashes_on_any_json(value):
    try:
        parse_envelope(1, value)
    except InvalidWebhook:
        assert not isinstance(value, dict)


wamids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789=+/", min_size=1, max_size=30).map(
    lambda s: "wamid." + s
)
message_items = st.fixed_dictionaries(
    {
        "from": st.integers(10**7, 10**14).map(str),
        "id": wamids,
        "timestamp": st.one_of(st.integers(0, 2**33).map(str), st.text(max_size=5), st.none()),
        "type": st.sampled_from(
            [
                "text",
                "image",
                "interactive",
                "button",
                "reaction",
                "location",
                "contacts",
                "sticker",
                "edit",
                "revoke",
                "order",
                "system",
                "zzz",
            ]
        ),
    },
    optional={
        "text": st.fixed_dictionaries({}, optional={"body": st.text(max_size=50)}),
        "image": st.dictionaries(st.sampled_from(["id", "mime_type", "caption"]), json_values, max_size=3),
        "interactive": json_values,
        "button": json_values,
        "reaction": json_values,
        "location": json_values,
        "context": json_values,
        "edit": json_values,
        "revoke": json_values,
        "order": json_values,
        "system": json_values,
        "contacts": json_values,
        "referral": json_values,
        "from_user_id": json_values,
    },
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(message_items, max_size=4), min_size=1, max_size=3), st.lists(json_values, max_size=3)
)
def test_every_well_formed_message_comes_out_exactly_once(batches, noise):
    changes = [
        {"field": "messages", "value": {"messages": items, "contacts": noise, "statuses": noise}}
        for items in batches
    ]
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}
    parsed = parse_envelope(3, json.loads(json.dumps(payload)))
    sent = [item["id"] for items in batches for item in items]
    assert [m.message.provider_message_id for m in parsed.messages] == sent
    for item in parsed.messages:
        assert item.message.content_type in {
            "text",
            "image",
            "interactive",
            "button",
            "reaction",
            "location",
            "contacts",
            "sticker",
            "order",
            "system",
            "flow_reply",
            "call_permission",
            "unsupported",
        } or (item.message.content_type == "deleted" and item.message.edit_of)


# -- real payload shapes beyond text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "content_type", "text"),
    [
        (
            "order.json",
            "order",
            "2 x SKU-TSHIRT-M at 49.9 BRL\n1 x SKU-MUG at 25 BRL\nDeliver after 6pm please",
        ),
        ("flow_reply.json", "flow_reply", "preferred_date: 2026-12-10\nparty_size: 4"),
        ("call_permission_reply.json", "call_permission", "Call permission: accept"),
        ("system_number_change.json", "system", "Ann changed from 16505551234 to 16505559999"),
        ("system_identity_change.json", "system", "Ann's security code changed"),
        (
            "contacts_card.json",
            "contacts",
            "Bruno Lima: +55 11 91234-5678, +55 11 3333-4444, bruno@example.com\nCarla: +1 650 555 0000",
        ),
    ],
)
def test_orders_flows_notices_and_cards_show_their_content(fixture, content_type, text):
    [item] = parse_envelope(1, load(fixture)).messages
    assert (item.message.content_type, item.message.text) == (content_type, text)


def test_edit_and_revoke_name_the_original():
    [edit] = parse_envelope(1, load("edit.json")).messages
    assert (edit.message.provider_message_id, edit.message.edit_of) == ("wamid.EDIT1", "wamid.ORIG1")
    assert (edit.message.content_type, edit.message.text) == ("text", "I meant Tuesday")
    [revoke] = parse_envelope(1, load("revoke.json")).messages
    assert (revoke.message.edit_of, revoke.message.content_type, revoke.message.text) == (
        "wamid.ORIG1",
        "deleted",
        None,
    )


def test_a_reaction_replaces_the_contacts_earlier_reaction_and_an_empty_one_withdraws_it():
    [given_] = parse_envelope(1, load("reaction.json")).messages
    [withdrawn] = parse_envelope(1, load("reaction_withdrawn.json")).messages
    assert given_.message.edit_of == withdrawn.message.edit_of == "reaction:16505551234:wamid.OUT"
    assert (withdrawn.message.content_type, withdrawn.message.text) == ("deleted", None)


def test_a_sender_known_only_by_business_scoped_id_is_addressed_by_it():
    [item] = parse_envelope(1, load("bsuid_only.json")).messages
    m = item.message
    assert (m.sender, m.sender_name, m.text) == ("US.13491208655302741918", "Dee", "hi from a username")
    assert m.contact_attributes == {"whatsapp_username": "@dee"}
    [with_phone] = parse_envelope(1, load("bsuid_with_phone.json")).messages
    assert with_phone.message.sender == "16505551234"
    assert with_phone.message.contact_attributes == {"whatsapp_user_id": "US.13491208655302741918"}


def test_a_change_for_another_phone_number_id_is_left_out():
    payload = load("other_phone_number.json")
    parsed = parse_envelope(1, payload, phone_number_id="106540352242922")
    assert (parsed.messages, parsed.foreign) == ([], 1)
    assert len(parse_envelope(1, payload, phone_number_id="999999999999999").messages) == 1


def test_an_ad_referral_goes_on_the_contact():
    [item] = parse_envelope(1, load("referral.json")).messages
    assert item.message.contact_attributes == {
        "ad_headline": "Summer sale: 30% off",
        "ad_source_type": "ad",
        "ad_source_id": "120201234567890",
        "ad_source_url": "https://fb.me/3cr4Wqqkv",
        "ad_click_id": "ARAkLkA8rmlFeiCktEJQ",
    }
    assert item.message.raw["referral"]["headline"] == "Summer sale: 30% off"
