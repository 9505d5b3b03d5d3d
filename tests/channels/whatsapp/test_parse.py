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
            ["text", "image", "interactive", "button", "reaction", "location", "contacts", "sticker", "zzz"]
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
            "unsupported",
        }
