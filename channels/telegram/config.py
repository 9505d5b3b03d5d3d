"""A Telegram channel's settings, read from the channel row's ``config`` (pydantic at the edge).

Keys: ``bot_token`` (secret; the ``_token`` suffix hides it from non-admins), ``mode`` (``webhook`` or
``polling``; unset: webhook when the public URL is https, else polling, as on a laptop),
``webhook_secret`` (made by ``POST /channels``), and for tests or a self-hosted Bot API server
``api_base_url`` / ``file_base_url``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# Telegram accepts 1-256 characters of A-Z a-z 0-9 _ - as a webhook secret (Bot API, setWebhook).
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

ALLOWED_UPDATES = ("message", "edited_message", "callback_query")


class Mode(StrEnum):
    WEBHOOK = "webhook"
    POLLING = "polling"


class TelegramConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    bot_token: SecretStr | None = None
    mode: Mode | None = None
    webhook_secret: SecretStr | None = None
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    # getUpdates long-poll length in seconds (Telegram allows up to 50).
    poll_timeout: int = Field(default=30, ge=0, le=50)
    # Back-off of the polling watchdog after network errors: doubles from the first to the ceiling.
    reconnect_delay: float = Field(default=1.0, gt=0, le=60)
    max_reconnect_delay: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("bot_token", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_alphabet(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_RE.match(value.get_secret_value()):
            raise ValueError("webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    def effective_mode(self, public_url: str) -> Mode:
        """Webhooks need a public https URL; without one (a laptop) the channel long-polls."""
        if self.mode is not None:
            return self.mode
        return Mode.WEBHOOK if public_url.startswith("https://") else Mode.POLLING

    @property
    def token(self) -> str | None:
        return self.bot_token.get_secret_value() if self.bot_token else None
