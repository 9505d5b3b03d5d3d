"""The inbound pipeline: every adapter hands its parsed messages to ``InboundPipeline.receive``.

dedupe → contact → conversation → last_inbound_at → hooks (consent, routing, bots) → events, all in
one transaction; the adapter acknowledges its provider only after ``receive`` returned.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.contacts import resolve_contact
from inbox.db import Clock, Database, insert_now, insert_returning
from inbox.events import record_event
from inbox.identities import normalize_address
from inbox.media import MediaStore
from inbox.model import (
    Attachment,
    ConversationStatus,
    InboundMessage,
    MessageKind,
    MessageStatus,
    ReceiveResult,
)
from inbox.views import ConversationView, MessageView, dump

_LOGGER = logging.getLogger(__name__)

# The statements every inbound message runs, built once: building a select and its cache key each time
# cost more CPU than SQLite spent running it (bench/README.md, profile).
_CHANNEL_AND_INBOX = (
    select(t.Channel, t.InboxRow)
    .outerjoin(t.InboxRow, t.InboxRow.id == t.Channel.inbox_id)
    .where(t.Channel.id == bindparam("channel_id"))
)
# Plain table columns where no ORM object is wanted: a Core select costs half an ORM one.
_MESSAGES = t.Message.__table__.c
_BY_PROVIDER_ID = select(_MESSAGES.id, _MESSAGES.conversation_id).where(
    _MESSAGES.channel_id == bindparam("channel_id"),
    _MESSAGES.provider_message_id == bindparam("provider_id"),
)
_BY_THREAD_KEY = (
    select(t.Conversation)
    .where(
        t.Conversation.channel_id == bindparam("channel_id"),
        t.Conversation.thread_key == bindparam("thread_key"),
    )
    .order_by(t.Conversation.id.desc())
    .limit(1)
)
_INSERT_CONVERSATION = insert_returning(cast(Table, t.Conversation.__table__))
_INSERT_MESSAGE = insert(cast(Table, t.Message.__table__)).returning(_MESSAGES.id)
_LABELS = select(t.ConversationLabel.__table__.c.label).where(
    t.ConversationLabel.__table__.c.conversation_id == bindparam("conversation_id")
)


class UnknownChannel(LookupError):
    pass


@dataclass
class InboundContext:
    """What the hooks see and may change, inside the receiving transaction."""

    channel: t.Channel
    # The conversation's inbox. Holding it here also lets hooks' ``session.get(t.InboxRow, ...)`` find
    # it in the session's (weak) identity map instead of reading it again.
    inbox: t.InboxRow | None
    contact: t.Contact
    conversation: t.Conversation
    message: t.Message
    inbound: InboundMessage
    new_conversation: bool
    reopened: bool
    now: datetime
    # Work to start once the transaction committed (bot runs, confirmations): never inside it.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class InboundHook(Protocol):
    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None: ...


class InboundPipeline:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        media: MediaStore,
        hooks: Sequence[InboundHook] = (),
        reopen_within: timedelta = timedelta(days=7),
        subject_within: timedelta = timedelta(days=3),
    ) -> None:
        self._db = db
        self._clock = clock
        self._media = media
        self.hooks: list[InboundHook] = list(hooks)
        self._reopen_within = reopen_within
        self._subject_within = subject_within

    async def receive(self, inbound: InboundMessage) -> ReceiveResult:
        """Store one inbound message exactly once. A duplicate delivery changes nothing."""
        attachments = await self._store_media(inbound.attachments)
        for attempt in range(3):
            try:
                result, ctx = await self._receive_once(inbound, attachments)
                break
            except IntegrityError:
                # A concurrent delivery of the same message (or a contact created at the same moment)
                # won the race; the next attempt finds its rows.
                if attempt == 2:
                    raise
        if ctx is not None:
            for job in ctx.after_commit:
                try:
                    await job()
                except Exception:
                    _LOGGER.exception("post-commit step failed for message %s", result.message_id)
        return result

    async def _store_media(self, attachments: Sequence[Attachment]) -> list[dict[str, object]]:
        stored: list[dict[str, object]] = []
        for a in attachments:
            meta = a.model_dump(exclude={"data"})
            if a.data is not None:
                meta["media_key"] = await self._media.put(a.data)
                meta["size"] = len(a.data)
            stored.append(meta)
        return stored

    async def _receive_once(
        self, inbound: InboundMessage, attachments: list[dict[str, object]]
    ) -> tuple[ReceiveResult, InboundContext | None]:
        now = self._clock()
        async with self._db.write() as session:
            row = (await session.execute(_CHANNEL_AND_INBOX, {"channel_id": inbound.channel_id})).first()
            if row is None:
                raise UnknownChannel(f"channel {inbound.channel_id} does not exist")
            channel: t.Channel = row[0]
            inbox: t.InboxRow | None = row[1]
            existing = (
                await session.execute(
                    _BY_PROVIDER_ID, {"channel_id": channel.id, "provider_id": inbound.provider_message_id}
                )
            ).first()
            if existing is not None:
                found = ReceiveResult(message_id=existing[0], conversation_id=existing[1], duplicate=True)
                return found, None
            if inbound.edit_of is not None:
                edited = await _apply_edit(session, channel, inbound, attachments, now)
                if edited is not None:
                    return edited, None
                # An edit of a message we never stored is kept as that message, so later edits find it
                # and a late delivery of the original is a duplicate (the newer content wins).
                inbound = inbound.model_copy(update={"provider_message_id": inbound.edit_of})

            address = normalize_address(channel.kind, inbound.sender)
            contact = await resolve_contact(
                session, channel.account_id, channel.kind, address, inbound.sender_name, now
            )
            if inbound.contact_attributes:
                merged = {**(contact.attributes or {}), **inbound.contact_attributes}
                if merged != contact.attributes:
                    contact.attributes = merged
            conversation, new, reopened = await self._find_conversation(
                session, channel, inbox, contact, address, inbound, now
            )
            if inbox is None or conversation.inbox_id != inbox.id:  # moved to another inbox by a rule
                inbox = await session.get(t.InboxRow, conversation.inbox_id)
            values = {
                "account_id": channel.account_id,
                "conversation_id": conversation.id,
                "channel_id": channel.id,
                "kind": MessageKind.INCOMING,
                "origin": "contact",
                "text": inbound.text,
                "content_type": inbound.content_type,
                "attachments": attachments,
                "template": None,
                "status": MessageStatus.RECEIVED,
                "reason": None,
                "error_detail": None,
                "provider_message_id": inbound.provider_message_id,
                "raw": dict(inbound.raw),
                "author_id": None,
                "attempts": 0,
                "created_at": inbound.received_at or now,
                "updated_at": now,
            }
            # A Core INSERT, not session.add: the ORM flush of a new row cost several times the INSERT.
            # Hooks and views only read the message; a second duplicate delivery racing this one fails
            # here on the unique (channel, provider id) and ``receive`` retries it as a duplicate.
            message = t.Message(id=await session.scalar(_INSERT_MESSAGE, values), **values)
            # The service window runs from the newest message the contact sent, never backwards.
            sent_at = inbound.received_at or now
            held = inbound.held is not None  # auto-replies, bounces, filtered mail: no window, no hooks
            if not held and (conversation.last_inbound_at is None or sent_at > conversation.last_inbound_at):
                conversation.last_inbound_at = sent_at
            if not held:
                conversation.last_activity_at = now
            await session.flush()

            ctx = InboundContext(channel, inbox, contact, conversation, message, inbound, new, reopened, now)
            for hook in self.hooks if not held else ():
                await hook(session, ctx)
            await session.flush()

            labels = await conversation_labels(session, conversation.id)
            conv_view = dump(ConversationView.of(conversation, labels))
            if new:
                await record_event(
                    session,
                    "conversation.created",
                    account_id=channel.account_id,
                    now=now,
                    inbox_id=conversation.inbox_id,
                    conversation_id=conversation.id,
                    payload={"conversation": conv_view},
                )
            else:
                await record_event(
                    session,
                    "conversation.updated",
                    account_id=channel.account_id,
                    now=now,
                    inbox_id=conversation.inbox_id,
                    conversation_id=conversation.id,
                    payload={"conversation": conv_view},
                )
            await record_event(
                session,
                "message.created",
                account_id=channel.account_id,
                now=now,
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.id,
                payload={"message": dump(MessageView.of(message))},
            )
        return ReceiveResult(message_id=message.id, conversation_id=conversation.id, duplicate=False), ctx

    async def _find_conversation(
        self,
        session: AsyncSession,
        channel: t.Channel,
        inbox: t.InboxRow | None,
        contact: t.Contact,
        address: str,
        inbound: InboundMessage,
        now: datetime,
    ) -> tuple[t.Conversation, bool, bool]:
        conversation: t.Conversation | None = None
        thread_key = inbound.thread_key or address
        if inbound.thread_key_signed:  # a verified reply token names the conversation outright
            conversation = await self._by_thread_key(session, channel.id, thread_key)
        if conversation is None and inbound.references:
            replied = list(
                await session.scalars(
                    select(t.Message).where(
                        t.Message.channel_id == channel.id,
                        t.Message.provider_message_id.in_(inbound.references),
                    )
                )
            )
            # Newest reference first: the order the adapter gave.
            by_id = {m.provider_message_id: m for m in replied}
            for ref in inbound.references:
                if ref in by_id:
                    conversation = await session.get(t.Conversation, by_id[ref].conversation_id)
                    break
        if conversation is None:
            conversation = await self._by_thread_key(session, channel.id, thread_key)
        if conversation is None and inbound.subject:
            conversation = await self._by_subject(session, channel.id, contact.id, inbound.subject, now)
        reopened = False
        if conversation is not None and inbound.held is not None:
            return conversation, False, False  # joins quietly: never reopens or wakes anything
        if conversation is not None and conversation.status == ConversationStatus.RESOLVED:
            resolved_at = conversation.resolved_at or conversation.last_activity_at
            if now - resolved_at <= self._reopen_within:
                conversation.status = ConversationStatus.OPEN
                conversation.resolved_at = None
                reopened = True
            else:
                conversation = None
        elif conversation is not None and conversation.status == ConversationStatus.SNOOZED:
            # A contact's new message wakes a snoozed conversation.
            conversation.status = ConversationStatus.OPEN
            conversation.snoozed_until = None
            reopened = True
        if conversation is not None:
            return conversation, False, reopened
        conversation = t.Conversation(
            account_id=channel.account_id,
            inbox_id=channel.inbox_id,
            channel_id=channel.id,
            contact_id=contact.id,
            thread_key=thread_key,
            recipient=inbound.reply_address or address,
            status=ConversationStatus.OPEN if inbound.held is None else ConversationStatus.RESOLVED,
            resolved_at=None if inbound.held is None else now,
            team_id=inbox.team_id if inbox else None,
            priority="none",
            meta={"subject": inbound.subject} if inbound.subject else {},
            last_activity_at=now,
            created_at=now,
        )
        await insert_now(session, conversation, _INSERT_CONVERSATION)
        if inbound.held is not None:  # the filtered folder: a resolved conversation with the reason
            session.add(t.ConversationLabel(conversation_id=conversation.id, label=inbound.held[:64]))
        return conversation, True, False

    async def _by_thread_key(
        self, session: AsyncSession, channel_id: int, thread_key: str
    ) -> t.Conversation | None:
        found: t.Conversation | None = await session.scalar(
            _BY_THREAD_KEY, {"channel_id": channel_id, "thread_key": thread_key}
        )
        return found

    async def _by_subject(
        self, session: AsyncSession, channel_id: int, contact_id: int, subject: str, now: datetime
    ) -> t.Conversation | None:
        """Last resort: the contact's conversation with the same subject, active within the limit."""
        recent = await session.scalars(
            select(t.Conversation)
            .where(
                t.Conversation.channel_id == channel_id,
                t.Conversation.contact_id == contact_id,
                t.Conversation.last_activity_at >= now - self._subject_within,
            )
            .order_by(t.Conversation.last_activity_at.desc())
            .limit(20)
        )
        wanted = subject.casefold()
        for conversation in recent:
            if str((conversation.meta or {}).get("subject", "")).casefold() == wanted:
                return conversation
        return None


async def conversation_labels(session: AsyncSession, conversation_id: int) -> list[str]:
    rows = await session.scalars(_LABELS, {"conversation_id": conversation_id})
    return list(rows)


async def _apply_edit(
    session: AsyncSession,
    channel: t.Channel,
    inbound: InboundMessage,
    attachments: list[dict[str, object]],
    now: datetime,
) -> ReceiveResult | None:
    """Rewrite the edited message, keeping each earlier text in ``raw["edit_history"]``.

    None when the original is unknown. A redelivered edit (same provider id), or one that changes
    nothing, changes nothing.
    """
    original = await session.scalar(
        select(t.Message).where(
            t.Message.channel_id == channel.id,
            t.Message.provider_message_id == inbound.edit_of,
            t.Message.kind == MessageKind.INCOMING,
        )
    )
    if original is None:
        return None
    raw = dict(original.raw or {})
    history = list(raw.get("edit_history") or [])
    unchanged = (
        original.text == inbound.text and original.content_type == inbound.content_type and not attachments
    )
    if unchanged or any(entry.get("provider_message_id") == inbound.provider_message_id for entry in history):
        return ReceiveResult(message_id=original.id, conversation_id=original.conversation_id, duplicate=True)
    history.append(
        {
            "provider_message_id": inbound.provider_message_id,
            "text": original.text,
            "replaced_at": (inbound.received_at or now).isoformat(),
        }
    )
    raw["edit_history"] = history
    raw["edited"] = dict(inbound.raw)
    original.raw = raw  # a new dict, so the JSON column is written
    original.text = inbound.text
    original.content_type = inbound.content_type  # e.g. "deleted" when the contact revoked it
    if attachments:
        original.attachments = attachments
    original.updated_at = now
    await session.flush()
    conversation = await session.get(t.Conversation, original.conversation_id)
    assert conversation is not None
    await record_event(
        session,
        "message.updated",
        account_id=channel.account_id,
        now=now,
        inbox_id=conversation.inbox_id,
        conversation_id=conversation.id,
        payload={"message": dump(MessageView.of(original))},
    )
    return ReceiveResult(message_id=original.id, conversation_id=original.conversation_id, duplicate=False)
