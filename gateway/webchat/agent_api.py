"""The agent side of live chat: typing, read markers and the agent's own availability.

``POST /conversations/{id}/typing`` and ``/read`` work on any conversation; the visitor sees them live
on webchat (other channels may learn to pass them on). ``PUT /users/me/availability`` sets online /
away / offline, which the widget shows as presence and uses to offer live chat or ask for an email.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from channels.webchat.adapter import WebchatAdapter
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import visible_conversation
from gateway.api.spec import ApiRoutes
from inbox import tables as t
from inbox.events import record_event
from inbox.model import MessageKind
from inbox.views import UserView

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


class ReadBody(BaseModel):
    up_to: int | None = Field(default=None, ge=1)  # default: the newest message


class ReadResult(BaseModel):
    up_to: int


@api.route(
    "POST",
    "/conversations/{id}/read",
    summary="Mark the contact's messages read up to a message (the contact sees a read receipt)",
    body=ReadBody,
    response=ReadResult,
)
async def agent_read(request: web.Request, body: ReadBody) -> ReadResult:
    user = user_of(request)
    c = container_of(request)
    now = c.clock()
    async with c.db.write() as session:
        conversation = await visible_conversation(session, user, path_id(request))
        newest = await session.scalar(
            select(func.max(t.Message.id)).where(
                t.Message.conversation_id == conversation.id, t.Message.kind == MessageKind.INCOMING
            )
        )
        up_to = min(body.up_to or newest or 0, newest or 0)
        meta = dict(conversation.meta or {})
        marks = dict(meta.get("webchat_read") or {})
        if up_to <= int(marks.get("agent", 0)):
            return ReadResult(up_to=int(marks.get("agent", 0)))
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
    return ReadResult(up_to=up_to)


class AvailabilityBody(BaseModel):
    availability: Literal["online", "away", "offline"]


@api.route(
    "PUT",
    "/users/me/availability",
    summary="Set your availability (online / away / offline); chat visitors see it as presence",
    body=AvailabilityBody,
    response=UserView,
)
async def set_availability(request: web.Request, body: AvailabilityBody) -> UserView:
    user = user_of(request)
    c = container_of(request)
    now = c.clock()
    async with c.db.write() as session:
        row = await session.get(t.User, user.id)
        assert row is not None
        row.availability = body.availability
        await record_event(
            session,
            "user.availability",
            account_id=row.account_id,
            now=now,
            payload={"user_id": row.id, "availability": body.availability},
        )
        view = UserView.of(row)
    # Visitor sockets follow the event log and tell their widgets the new presence.
    return view
