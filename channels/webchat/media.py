"""Signed links to a channel's stored files, for visitors (who have no API token)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import quote


def media_url(token: str, secret: str, attachment: dict[str, Any]) -> str | None:
    key = attachment.get("media_key")
    if not key:
        return attachment.get("url") if str(attachment.get("url") or "").startswith("https://") else None
    kind = str(attachment.get("content_type") or "application/octet-stream")
    sig = media_signature(secret, str(key), kind)
    return f"/webchat/{quote(token)}/media/{key}?t={quote(kind)}&s={sig}"


def media_signature(secret: str, key: str, content_type: str) -> str:
    return hmac.new(secret.encode(), f"{key}|{content_type}".encode(), hashlib.sha256).hexdigest()[:32]
