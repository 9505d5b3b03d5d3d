"""The Origin check: only the channel's allowed sites (and the gateway's own pages) may use its chat."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web


def normalize_origin(value: str) -> str:
    parts = urlsplit(value.strip().lower())
    if not parts.scheme or not parts.netloc:
        return value.strip().lower().rstrip("/")
    return f"{parts.scheme}://{parts.netloc}"


def origin_matches(origin: str, allowed: Iterable[str]) -> bool:
    """Exact scheme://host[:port], or ``https://*.example.com`` for any subdomain of example.com."""
    origin = normalize_origin(origin)
    scheme, _, host = origin.partition("://")
    for entry in allowed:
        entry = normalize_origin(entry)
        if entry == origin:
            return True
        e_scheme, _, e_host = entry.partition("://")
        if e_host.startswith("*.") and e_scheme == scheme and host.endswith(e_host[1:]):
            return True
    return False


def origin_refusal(request: web.Request, allowed: Iterable[str], public_url: str) -> str | None:
    """None if the request may proceed, else the refused origin.

    A request without Origin is not from another site's page (browsers send it on every cross-site
    fetch and every websocket handshake), so only present origins are checked.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    own = {normalize_origin(public_url), normalize_origin(f"{request.scheme}://{request.host}")}
    if normalize_origin(origin) in own or origin_matches(origin, allowed):
        return None
    return origin
