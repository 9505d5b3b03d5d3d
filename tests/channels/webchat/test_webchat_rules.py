"""The webchat channel's pure parts: identity, targeting, business hours, rate limits, upload checks."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.media import sniff
from channels.webchat.config import WebchatConfig
from channels.webchat.hours import BusinessHours
from channels.webchat.identity import (
    IdentityError,
    owns_provider_id,
    provider_id,
    sign_identifier,
    verify_identifier,
    visitor_of,
)
from channels.webchat.limits import RateLimiter
from channels.webchat.targeting import FlowRule, UrlCondition, choose_flow
from channels.webchat.uploads import UploadRefused, check_upload, safe_filename
from tests.harness import ManualClock

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 1, 1) + b"\x08\x06\x00\x00\x00"

# -- identity ----------------------------------------------------------------------------------------------


def test_signed_identifier_is_accepted_and_a_forged_one_is_not():
    secret = "channel-secret"
    signature = sign_identifier(secret, "alice@example.com")
    # The site's backend computes exactly this (vector from `openssl dgst -sha256 -hmac channel-secret`).
    assert signature == "d62a71b0d08b32f3f5c726ba8e63e9531ea70893bd33d3ffbc088555cf5b602b"
    visitor = visitor_of(
        key=None, identifier="alice@example.com", signature=signature, secret=secret, identity_required=False
    )
    assert visitor.address == "user:alice@example.com" and visitor.verified
    assert verify_identifier(secret, "alice@example.com", signature.upper())  # hex case does not matter
    for bad in ("", "00" * 32, sign_identifier("other-secret", "alice@example.com")):
        with pytest.raises(IdentityError, match="signature"):
            visitor_of(
                key=None,
                identifier="alice@example.com",
                signature=bad,
                secret=secret,
                identity_required=False,
            )
    # Someone else's signature does not open Alice's history.
    with pytest.raises(IdentityError):
        visitor_of(
            key=None,
            identifier="alice@example.com",
            signature=sign_identifier(secret, "mallory@example.com"),
            secret=secret,
            identity_required=False,
        )
    assert not verify_identifier(None, "alice@example.com", signature)  # no secret: nothing verifies


def test_anonymous_visitors_get_a_digest_not_their_key():
    key = "A" * 24
    visitor = visitor_of(key=key, identifier=None, signature=None, secret="s", identity_required=False)
    assert visitor.address.startswith("anon:") and key not in visitor.address and not visitor.verified
    assert (
        visitor_of(key=key, identifier=None, signature=None, secret="s", identity_required=False) == visitor
    )
    with pytest.raises(IdentityError, match="visitor key"):
        visitor_of(key="short", identifier=None, signature=None, secret="s", identity_required=False)
    with pytest.raises(IdentityError, match="signed-in"):
        visitor_of(key=key, identifier=None, signature=None, secret="s", identity_required=True)


@given(identifier=st.text(min_size=1, max_size=200), secret=st.text(min_size=1, max_size=64))
def test_any_identifier_round_trips_and_a_changed_signature_fails(identifier: str, secret: str):
    signature = sign_identifier(secret, identifier)
    assert verify_identifier(secret, identifier, signature)
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert not verify_identifier(secret, identifier, flipped)


@given(
    key=st.text(max_size=80), identifier=st.one_of(st.none(), st.text(max_size=300)), sig=st.text(max_size=80)
)
def test_visitor_of_only_ever_refuses_with_identity_error(key: str, identifier: str | None, sig: str):
    try:
        visitor = visitor_of(
            key=key, identifier=identifier, signature=sig, secret="s", identity_required=False
        )
    except IdentityError:
        return
    assert visitor.address.startswith("user:" if identifier else "anon:")


def test_reply_ids_belong_to_their_visitor_only():
    pid = provider_id("s", 42, "anon:abc")
    assert owns_provider_id("s", pid, "anon:abc")
    assert not owns_provider_id("s", pid, "anon:someone-else")
    assert not owns_provider_id("s", pid.replace("wc-42", "wc-43"), "anon:abc")
    assert not owns_provider_id("s", "garbage", "anon:abc")


# -- targeting -----------------------------------------------------------------------------------------------


def rules() -> list[FlowRule]:
    return [
        FlowRule(
            name="pricing",
            url=UrlCondition(op="contains", value="/pricing"),
            action="greeting",
            message="Questions about plans?",
            after_seconds=10,
        ),
        FlowRule(
            name="returns",
            url=UrlCondition(op="regex", value=r"/orders/\d+/return"),
            action="bot",
            bot="returns",
        ),
        FlowRule(
            name="home-first",
            url=UrlCondition(op="equals", value="https://shop.example/"),
            first_visit=True,
            action="greeting",
            message="Welcome!",
        ),
        FlowRule(name="help", url=UrlCondition(op="contains", value="/help"), action="live"),
    ]


@pytest.mark.parametrize(
    ("url", "first", "action", "rule"),
    [
        ("https://shop.example/pricing?plan=pro", False, "greeting", "pricing"),
        ("https://shop.example/orders/77/return", False, "bot", "returns"),
        ("https://shop.example/orders/x/return", False, "live", None),
        ("https://shop.example", True, "greeting", "home-first"),  # equals ignores a trailing slash
        ("https://shop.example/", False, "live", None),  # not a first visit
        ("https://shop.example/help/pricing", False, "greeting", "pricing"),  # first match wins
    ],
)
def test_the_first_matching_rule_chooses_the_flow(url, first, action, rule):
    choice = choose_flow(rules(), url, first)
    assert choice.action == action and choice.rule == rule
    if rule == "pricing":
        assert choice.after_seconds == 10 and choice.message == "Questions about plans?"
    if rule == "returns":
        assert choice.bot == "returns"


def test_bad_rules_are_refused_when_configured():
    with pytest.raises(ValueError, match="regex"):
        UrlCondition(op="regex", value="([")
    with pytest.raises(ValueError, match="greeting needs a message"):
        FlowRule(action="greeting")
    with pytest.raises(ValueError, match="bot"):
        FlowRule(action="bot")
    with pytest.raises(ValueError):
        WebchatConfig.of({"flows": [{"action": "teleport"}]})


@given(
    url=st.text(max_size=3000),
    value=st.text(min_size=1, max_size=50),
    op=st.sampled_from(["equals", "contains"]),
)
def test_url_conditions_never_fail_on_any_page_url(url: str, value: str, op: str):
    choose_flow([FlowRule(url=UrlCondition(op=op, value=value))], url, first_visit=False)


# -- business hours and config -------------------------------------------------------------------------------


def test_business_hours_in_the_channels_time_zone():
    hours = BusinessHours.model_validate({"timezone": "Europe/Berlin", "days": {"mon": [["09:00", "17:00"]]}})
    monday_0830_utc = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)  # 09:30 in Berlin (CET)
    assert hours.is_open(monday_0830_utc)
    assert not hours.is_open(datetime(2026, 3, 9, 16, 30, tzinfo=UTC))  # 17:30 Berlin
    assert not hours.is_open(datetime(2026, 3, 10, 8, 30, tzinfo=UTC))  # Tuesday: closed
    assert hours.days["mon"][0] == (time(9), time(17))
    with pytest.raises(ValueError, match="time zone"):
        BusinessHours(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="not before"):
        BusinessHours.model_validate({"days": {"mon": [["17:00", "09:00"]]}})


def test_public_config_has_no_secrets_and_identity_secret_falls_back_to_webhook_secret():
    config = WebchatConfig.of({"token": "t", "webhook_secret": "hook", "prechat_fields": ["email"]})
    assert config.identity_secret == "hook"
    public = config.public()
    assert "hook" not in str(public) and public["prechat_fields"] == ["email"]


# -- rate limits ---------------------------------------------------------------------------------------------


def test_rate_limiter_allows_n_per_window_then_says_how_long_to_wait():
    clock = ManualClock()
    limiter = RateLimiter(3, 60, clock)
    assert [limiter.hit("v") for _ in range(3)] == [None, None, None]
    assert limiter.hit("v") == pytest.approx(60)
    assert limiter.hit("other") is None  # keys are independent
    clock.advance(seconds=30)
    assert limiter.hit("v") == pytest.approx(30)
    clock.advance(seconds=30.5)
    assert limiter.hit("v") is None


def test_rate_limiter_forgets_idle_keys_when_full():
    clock = ManualClock()
    limiter = RateLimiter(1, 10, clock, max_keys=2)
    limiter.hit("a")
    limiter.hit("b")
    clock.advance(seconds=11)
    limiter.hit("c")
    assert set(limiter._hits) == {"c"}


# -- uploads -------------------------------------------------------------------------------------------------

ALLOWED = ("image/png", "image/jpeg", "application/pdf", "text/plain")


def test_upload_type_comes_from_the_bytes_not_the_name():
    attachment = check_upload(PNG, "cat.png", 1000, ALLOWED)
    assert attachment.content_type == "image/png" and attachment.size == len(PNG) and attachment.data == PNG
    with pytest.raises(UploadRefused) as refused:
        check_upload(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff", "cat.png", 1000, ALLOWED)
    assert refused.value.code == "file_type_refused"
    with pytest.raises(UploadRefused) as refused:
        check_upload(PNG, "cat.png", 10, ALLOWED)
    assert refused.value.code == "file_too_large"
    with pytest.raises(UploadRefused) as refused:
        check_upload(b"", "x.txt", 10, ALLOWED)
    assert refused.value.code == "empty_file"
    with pytest.raises(UploadRefused):
        check_upload(b"GIF89a....", "x.gif", 100, ALLOWED)  # a real type, but not allowed here
    assert check_upload("héllo".encode(), "../../etc/passwd", 100, ALLOWED).filename == "passwd"


def test_safe_filename():
    assert safe_filename("..\\..\\evil<script>.png") == "evil_script_.png"
    assert safe_filename(None) == "file"
    assert safe_filename("...") == "file"


@given(data=st.binary(max_size=5000))
def test_sniff_never_fails_on_any_bytes(data: bytes):
    assert sniff(data) in (
        None,
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
    )
