"""The agent side of live chat: typing, read markers and the agent's own availability.

``POST /conversations/{id}/typing`` works on any conversation and ``send_read_receipt`` backs
``POST /conversations/{id}/read``; the visitor sees both live on webchat (other channels may learn to
pass them on). Availability is set in gateway/presence.py; the widget shows it as presence.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import func, select

from channels.webchat.adapter import WebchatAdapter
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import visible_conversation
from gateway.api.spec import ApiRoutes
from gateway.container import Container
from inbox import tables as t
from inbox.events import record_event
from inbox.model import MessageKind

api = ApiRoutes()


class TypingBody(BaseModel):
    typing: bool = True


class TypingResult(BaseModel):
    delivered: int  # how many of the contact's open chat windows were told


@api.route(
    "POST",
    "/conversations/{id}/typing",
    summary="Tell the contact an agent is (or stopped) typing",
    body=TypingBody,
    response=TypingResult,
)
async def agent_typing(request: web.Request, body: TypingBody) -> TypingResult:
    user = user_of(request)
    c = container_of(request)
    name = (user.name.split() or ["Support"])[0][:40]
    async with c.db.write() as session:
        conversation = await visible_conversation(session, user, path_id(request))
        # On the log too: other agents see who is answering, and visitor sockets served by other
        # gateway processes hear it.
        await record_event(
            session,
            "conversation.typing",
            account_id=conversation.account_id,
            now=c.clock(),
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            payload={
                "conversation_id": conversation.id,
                "channel_id": conversation.channel_id,
                "who": "agent",
                "user_id": user.id,
                "name": name,
                "typing": body.typing,
            },
        )
    adapter = await c.adapters.get(conversation.channel_id)
    if not isinstance(adapter, WebchatAdapter):
        return TypingResult(delivered=0)
    frame = {"type": "typing", "typing": body.typing, "name": name}
    return TypingResult(delivered=await adapter.push(conversation.recipient, frame))


async def send_read_receipt(c: Container, user: t.User, conversation_id: int, up_to_hint: int | None) -> int:
    """The agent read the contact's messages up to a message: the contact sees a read receipt (webchat
    shows it live; the event is on the log for every process). Returns the receipt position."""
    now = c.clock()
    async with c.db.write() as session:
        conversation = await visible_conversation(session, user, conversation_id)
        newest = await session.scalar(
            select(func.max(t.Message.id)).where(
                t.Message.conversation_id == conversation.id, t.Message.kind == MessageKind.INCOMING
            )
        )
        up_to = min(up_to_hint or newest or 0, newest or 0)
        meta = dict(conversation.meta or {})
        marks = dict(meta.get("webchat_read") or {})
        if up_to <= int(marks.get("agent", 0)):
            return int(marks.get("agent", 0))
        marks["agent"] = up_to
        conversation.meta = {**meta, "webchat_read": marks}
        await record_event(
            session,
            "conversation.read",
            account_id=conversation.account_id,
            now=now,
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            payload={
                "conversation_id": conversation.id,
                "channel_id": conversation.channel_id,
                "up_to": up_to,
                "user_id": user.id,
            },
        )
        channel_id, recipient = conversation.channel_id, conversation.recipient
    adapter = await c.adapters.get(channel_id)
    if isinstance(adapter, WebchatAdapter):
        await adapter.push(recipient, {"type": "read", "up_to": up_to})
    return up_to
