"""WhatsApp error codes → our reasons and error classes (protocols.md §1, "Useful error codes").

The same codes arrive two ways: synchronously in a 4xx body from ``/messages``, and later in a
``failed`` status webhook (131047 is documented as a 400 but is often a status; handle both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inbox.model import ChannelError, PermanentChannelError, Reason, TransientChannelError

WINDOW_CLOSED = 131047  # more than 24 h since the contact last wrote: only templates
OPTED_OUT = 131050  # the user stopped marketing messages
TEMPLATE_PARAMS = 132000  # template parameter count mismatch
TEMPLATE_MISSING = 132001  # template does not exist (in that language) or is not approved
THROUGHPUT = 130429  # cloud API throughput limit
PAIR_RATE = 131056  # too many messages to one user in a short time; also clears by itself

REASONS: Mapping[int, Reason] = {
    WINDOW_CLOSED: Reason.WINDOW_CLOSED,
    OPTED_OUT: Reason.OPTED_OUT,
    TEMPLATE_PARAMS: Reason.TEMPLATE_REQUIRED,
    TEMPLATE_MISSING: Reason.TEMPLATE_REQUIRED,
}
TRANSIENT_CODES = frozenset({THROUGHPUT, PAIR_RATE})


def reason_for(code: int | None) -> Reason:
    """The reason an agent sees for a WhatsApp error code; anything unmapped is ``channel_error``."""
    return REASONS.get(code, Reason.CHANNEL_ERROR) if code is not None else Reason.CHANNEL_ERROR


def error_for_response(http_status: int, body: Any, retry_after: float | None = None) -> ChannelError:
    """Map a non-2xx answer from ``/messages`` (body: Graph's ``{"error": {...}}``) to our error."""
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    message = str(error.get("message") or f"HTTP {http_status}")[:500]
    detail = f"{code} {message}" if code is not None else message
    if http_status >= 500 or http_status == 429 or code in TRANSIENT_CODES:
        return TransientChannelError(detail, retry_after)
    return PermanentChannelError(reason_for(code), detail, str(code) if code is not None else None)
