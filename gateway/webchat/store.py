"""Database reads and writes for the website chat (the adapter itself never touches the tables)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.webchat.config import WebchatConfig
from channels.webchat.media import media_url
from inbox import tables as t
from inbox.db import Database
from inbox.model import ChannelKind, MessageKind, MessageStatus

Presence = Literal["online", "away", "offline"]
HISTORY_LIMIT = 200


async def channel_by_token(db: Database, token: str) -> t.Channel | None:
    """The webchat channel whose public token this is (compared in constant time)."""
    if not token or len(token) > 200:
        return None
    async with db.read() as session:
        rows = await session.scalars(select(t.Channel).where(t.Channel.kind == ChannelKind.WEBCHAT))
        found = None
        for row in rows:
            candidate = str((row.config or {}).get("token") or "")
            if candidate and hmac.compare_digest(candidate.encode(), token.encode()):
                found = row
        return found


async def visitor_conversation_ids(session: AsyncSession, channel_id: int, address: str) -> list[int]:
    rows = await session.scalars(
        select(t.Conversation.id)
        .where(t.Conversation.channel_id == channel_id, t.Conversation.thread_key == address)
        .order_by(t.Conversation.id)
    )
    return list(rows)


AVATAR_TYPE = "image/png"  # avatars are stored as PNG (inbox/avatars.py)


class Renderer:
    """Turns stored messages into the frames the widget shows, with agent cards and media links."""

    def __init__(self, token: str, secret: str, reply_id: Callable[[int, str], str]) -> None:
        self._token = token
        self._secret = secret
        self._reply_id = reply_id  # adapter.reply_id: binds a reply's id to its visitor
        self._agents: dict[int, dict[str, str]] = {}  # author -> card, until their profile changes

    async def frame(self, session: AsyncSession, m: t.Message, address: str) -> dict[str, Any]:
        attachments = [
            {
                "content_type": a.get("content_type"),
                "filename": a.get("filename"),
                "size": a.get("size"),
                "url": media_url(self._token, self._secret, a),
            }
            for a in (m.attachments or [])
        ]
        frame: dict[str, Any] = {
            "type": "message",
            "id": m.id,
            "conversation_id": m.conversation_id,
            "text": m.text,
            "attachments": attachments,
            "created_at": m.created_at.isoformat(),
        }
        if m.kind == MessageKind.INCOMING:
            frame["from"] = "visitor"
            pid = m.provider_message_id or ""
            frame["client_id"] = pid.rsplit("/", 1)[-1] if "/" in pid else None
        else:
            frame["from"] = "agent" if m.origin == "agent" else "bot"
            frame["provider_id"] = self._reply_id(m.id, address)
            frame["status"] = m.status
            frame["agent"] = await self._agent(session, m.author_id, m.origin)
            frame["buttons"] = list((m.raw or {}).get("buttons") or [])
        return frame

    def forget(self, user_id: int) -> None:
        """The agent's profile changed: read it again for their next message."""
        self._agents.pop(user_id, None)

    async def _agent(self, session: AsyncSession, author_id: int | None, origin: str) -> dict[str, str]:
        """What a visitor sees of a reply's author: name, and from the profile a title, an avatar link
        (signed, as attachments are) and a meeting link. Never their email or full account name."""
        if author_id is None:
            return {"name": "Assistant" if origin == "bot" else "Support"}
        card = self._agents.get(author_id)
        if card is None:
            user = await session.get(t.User, author_id)
            profile = await session.get(t.AgentProfile, author_id)
            # Without a display name, the first name only: visitors need a person, not a full name.
            name = (user.name.split()[0] if user and user.name else "Support")[:40]
            card = {"name": profile.display_name if profile and profile.display_name else name}
            if profile and profile.title:
                card["title"] = profile.title
            if profile and profile.meeting_url:
                card["meeting_url"] = profile.meeting_url
            if profile and profile.avatar_key:
                avatar = media_url(
                    self._token, self._secret, {"media_key": profile.avatar_key, "content_type": AVATAR_TYPE}
                )
                if avatar:
                    card["avatar_url"] = avatar
            self._agents[author_id] = card
        return card


def _visible(stmt: Any) -> Any:
    """Messages a visitor may see: theirs, and replies that were not refused (notes never)."""
    return stmt.where(
        (t.Message.kind == MessageKind.INCOMING)
        | ((t.Message.kind == MessageKind.OUTGOING) & (t.Message.status != MessageStatus.FAILED))
    )


async def history(session: AsyncSession, conversation_ids: Sequence[int], after: int) -> list[t.Message]:
    """Messages after ``after`` in id order (the resume point); the newest page when starting over."""
    if not conversation_ids:
        return []
    stmt = _visible(select(t.Message).where(t.Message.conversation_id.in_(conversation_ids)))
    if after > 0:
        rows = await session.scalars(stmt.where(t.Message.id > after).order_by(t.Message.id).limit(1000))
        return list(rows)
    rows = await session.scalars(stmt.order_by(t.Message.id.desc()).limit(HISTORY_LIMIT))
    return list(reversed(list(rows)))


async def visible_message(session: AsyncSession, message_id: int, channel_id: int) -> t.Message | None:
    stmt = _visible(select(t.Message).where(t.Message.id == message_id, t.Message.channel_id == channel_id))
    message: t.Message | None = await session.scalar(stmt)
    return message


def agent_read_up_to(conversations: Sequence[t.Conversation]) -> int:
    return max(
        (int((c.meta or {}).get("webchat_read", {}).get("agent", 0)) for c in conversations), default=0
    )


async def presence(
    session: AsyncSession, channel: t.Channel, config: WebchatConfig, now: datetime
) -> Presence:
    """online: open hours and an inbox member online; away: open but members only away; else offline."""
    if config.business_hours is not None and not config.business_hours.is_open(now):
        return "offline"
    states = set(
        await session.scalars(
            select(t.User.availability)
            .join(t.InboxMember, t.InboxMember.user_id == t.User.id)
            .where(t.InboxMember.inbox_id == channel.inbox_id)
        )
    )
    if "online" in states:
        return "online"
    return "away" if "away" in states else "offline"
