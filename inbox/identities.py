"""Normalizing contact addresses so one person is one identity per channel kind."""

from __future__ import annotations

import functools

import phonenumbers

from inbox.model import WHATSAPP_USER_ID, ChannelKind


class InvalidAddress(ValueError):
    """An address that cannot be a recipient on its channel."""


# Every inbound WhatsApp message asks, mostly for numbers seen before; parsing one costs ~100 µs.
# A pure function of its arguments (failures raise and are not kept).
@functools.lru_cache(maxsize=16_384)
def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 (``+5511987654321``). WhatsApp sends ``wa_id`` without the plus, so digits get one."""
    text = raw.strip()
    if text and text[0].isdigit() and default_region is None:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    text = raw.strip().lower()
    local, sep, domain = text.rpartition("@")
    if not sep or not local or "." not in domain or any(c.isspace() for c in text):
        raise InvalidAddress(f"not an email address: {raw!r}")
    return text


def normalize_address(kind: ChannelKind | str, raw: str) -> str:
    """The canonical form of an address on a channel kind; raises InvalidAddress."""
    kind = ChannelKind(kind)
    if kind is ChannelKind.WHATSAPP:
        if WHATSAPP_USER_ID.match(raw.strip()):
            return raw.strip()
        return normalize_phone(raw)
    if kind is ChannelKind.EMAIL:
        return normalize_email(raw)
    text = raw.strip()
    if not text or len(text) > 320:
        raise InvalidAddress(f"empty or overlong address: {raw!r}")
    return text
