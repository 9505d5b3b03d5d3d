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


class Renderer:
    """Turns stored messages into the frames the widget shows, with agent names and media links."""

    def __init__(self, token: str, secret: str, reply_id: Callable[[int, str], str]) -> None:
        self._token = token
        self._secret = secret
        self._reply_id = reply_id  # adapter.reply_id: binds a reply's id to its visitor
        self._names: dict[int, str] = {}

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
            frame["agent"] = {"name": await self._name(session, m.author_id, m.origin)}
        return frame

    async def _name(self, session: AsyncSession, author_id: int | None, origin: str) -> str:
        if author_id is None:
            return "Assistant" if origin == "bot" else "Support"
        if author_id not in self._names:
            user = await session.get(t.User, author_id)
            # First name only: visitors need a person, not the agent's full name.
            self._names[author_id] = (user.name.split()[0] if user and user.name else "Support")[:40]
        return self._names[author_id]


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
