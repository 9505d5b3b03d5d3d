"""Telegram channel (python-telegram-bot): webhook with a secret token or long polling, media, buttons.

``telegram_channel(info, deps)`` is the factory the gateway registers for ``ChannelKind.TELEGRAM``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import ValidationError

from channels.base import UnavailableChannel
from channels.telegram.adapter import MediaReader, TelegramAdapter
from channels.telegram.config import Mode, TelegramConfig
from inbox.model import ChannelAdapter, ChannelInfo, ChannelKind, StateStore


class TelegramDeps(Protocol):
    """What the factory needs from the gateway's ``AdapterDeps``."""

    @property
    def state(self) -> StateStore: ...

    @property
    def media(self) -> MediaReader: ...

    @property
    def public_url(self) -> str: ...


def telegram_channel(info: ChannelInfo, deps: TelegramDeps) -> ChannelAdapter:
    """The adapter for one Telegram channel row; a channel with broken settings fails its sends saying why."""
    try:
        config = TelegramConfig.model_validate(dict(info.config))
    except ValidationError as exc:
        # Only the field names and problems: the input values may hold the token.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return UnavailableChannel(ChannelKind.TELEGRAM, f"telegram channel settings are invalid: {problems}")
    return TelegramAdapter(info, config, state=deps.state, media=deps.media, public_url=deps.public_url)


__all__ = ["Mode", "TelegramAdapter", "TelegramConfig", "telegram_channel"]
