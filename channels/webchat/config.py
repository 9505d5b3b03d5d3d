"""A webchat channel's settings, parsed from the channel row's ``config``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from channels.media import MediaLimits
from channels.webchat.hours import BusinessHours
from channels.webchat.targeting import FlowRule

PrechatField = Literal["name", "email"]

# Types a visitor may upload. Checked against the file's first bytes, not the name or the browser's
# claim (uploads.py).
DEFAULT_UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain")


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    max_text: int = Field(default=4000, ge=1, le=65536)  # characters per message
    visitor_per_minute: int = Field(default=20, ge=1)  # messages and uploads per visitor
    ip_per_minute: int = Field(default=60, ge=1)  # messages and uploads per client IP
    connections_per_ip_per_minute: int = Field(default=60, ge=1)
    frames_per_minute: int = Field(default=240, ge=1)  # anything a socket sends (typing, receipts, ...)
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    upload_types: tuple[str, ...] = DEFAULT_UPLOAD_TYPES


class WebchatConfig(BaseModel):
    """Everything the widget and the adapter need. Unknown keys (``webhook_secret``) are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    token: str = Field(default="", max_length=200)  # the public ``data-channel`` token of the script tag
    allowed_origins: tuple[str, ...] = ()  # e.g. https://shop.example; the gateway's own pages always pass
    # HMAC-SHA256 key for verified identities (falls back to webhook_secret)
    identity_secret: str | None = None
    identity_required: bool = False  # refuse anonymous visitors
    prechat_fields: tuple[PrechatField, ...] = ()
    # None: the widget's own text in the visitor's language (gateway/static/i18n/*.json, "widget.title"...)
    title: str | None = None
    welcome: str | None = None
    offline_message: str | None = None
    accent: str = Field(default="#2457d6", pattern=r"^#[0-9a-fA-F]{6}$")
    business_hours: BusinessHours | None = None  # None: always open
    flows: tuple[FlowRule, ...] = ()
    limits: Limits = Limits()

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> WebchatConfig:
        data = dict(config)
        if not data.get("identity_secret") and data.get("webhook_secret"):
            data["identity_secret"] = data["webhook_secret"]
        return cls.model_validate(data)

    def media_limits(self) -> MediaLimits:
        """What an agent may send a visitor: the types and size the channel takes from visitors."""
        size = self.limits.max_upload_bytes
        return MediaLimits("Web chat", max_files=5, sizes={kind: size for kind in self.limits.upload_types})

    def public(self) -> dict[str, Any]:
        """What the widget may know (no secrets, no limits beyond the size the visitor must respect)."""
        return {
            "title": self.title,
            "welcome": self.welcome,
            "offline_message": self.offline_message,
            "accent": self.accent,
            "prechat_fields": list(self.prechat_fields),
            "identity_required": self.identity_required,
            "max_text": self.limits.max_text,
            "max_upload_bytes": self.limits.max_upload_bytes,
            "upload_types": list(self.limits.upload_types),
        }
