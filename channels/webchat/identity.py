"""Who a visitor is.

Anonymous visitors hold a random key in the browser's localStorage; their sender address is a digest
of it (``anon:...``), so agents never see a key that would let someone read the visitor's history.
A site that knows its user passes ``identifier`` and ``HMAC-SHA256(channel secret, identifier)``; then
the address is ``user:<identifier>`` and the history follows the user across browsers, and nobody can
claim an identifier without the site's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_KEY = re.compile(r"[A-Za-z0-9_-]{22,64}")  # >= 128 bits of base64url from crypto.getRandomValues
_IDENTIFIER = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


class IdentityError(ValueError):
    """The visitor's claimed identity is refused; the message says why (and goes to the log)."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """Kept by each open socket: slots, not a pydantic model (whose instance dict and fields-set
    cost ~400 bytes per socket); built only by ``visitor_of`` from checked input."""

    address: str  # the InboundMessage sender: anon:<digest> or user:<identifier>
    verified: bool


def sign_identifier(secret: str, identifier: str) -> str:
    """What the site's backend computes and passes to the widget (``data-user-hash``)."""
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def verify_identifier(secret: str | None, identifier: str, signature: str) -> bool:
    if not secret or not signature:
        return False
    expected = sign_identifier(secret, identifier)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def visitor_of(
    *,
    key: str | None,
    identifier: str | None,
    signature: str | None,
    secret: str | None,
    identity_required: bool,
) -> Visitor:
    """The visitor behind a connection, or IdentityError."""
    if identifier:
        if not _IDENTIFIER.fullmatch(identifier):
            raise IdentityError("identifier must be 1-200 printable characters")
        if not verify_identifier(secret, identifier, signature or ""):
            raise IdentityError("identity signature does not match")
        return Visitor(address=f"user:{identifier}", verified=True)
    if identity_required:
        raise IdentityError("this chat needs a signed-in visitor")
    if key is None or not _KEY.fullmatch(key):
        raise IdentityError("visitor key must be 22-64 characters of base64url")
    digest = hashlib.sha256(b"switchboard-webchat-visitor:" + key.encode()).hexdigest()[:32]
    return Visitor(address=f"anon:{digest}", verified=False)


def provider_id(secret: str, message_id: int, address: str) -> str:
    """The provider id of a reply we pushed to ``address``.

    The tag binds the id to its visitor, so a visitor can acknowledge (delivered / read) only the
    replies that were meant for them.
    """
    tag = hmac.new(secret.encode(), f"{message_id}:{address}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"wc-{message_id}-{tag}"


def owns_provider_id(secret: str, provider_message_id: str, address: str) -> bool:
    parts = provider_message_id.split("-")
    if len(parts) != 3 or parts[0] != "wc" or not (parts[1].isascii() and parts[1].isdigit()):  # "²"
        return False
    return hmac.compare_digest(provider_id(secret, int(parts[1]), address), provider_message_id)
