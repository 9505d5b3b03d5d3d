"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw request body, keyed with the app secret.

Meta's SDK writes lowercase hex after ``sha256=``; we compare in constant time and only ever over the
exact bytes received, before any JSON parsing (protocols.md §1, "Signature").
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def sign(app_secret: str, body: bytes) -> str:
    """The header value Meta would send for ``body``: ``sha256=<lowercase hex>``."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(app_secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body``; a missing or malformed header is False."""
    if not header or not app_secret:
        return False
    expected = sign(app_secret, body)
    # Hex is case-insensitive; lower-case the received value so a client writing upper-case hex passes.
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())
