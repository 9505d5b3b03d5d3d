"""The outbound gate. Every reply, bot answer, automation, broadcast and confirmation goes through here,
and nothing else calls ``adapter.send``.

``submit`` runs the policy chain, stores the message as ``queued`` or ``failed`` with a reason (the
text is never lost) and enqueues delivery. ``dispatch`` claims the message, calls the adapter and maps
its errors: transient → retry with back-off and jitter, permanent → failed. ``apply_status`` moves a
message forward on provider callbacks only.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, Protocol

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from inbox import tables as t
from inbox.batching import Coalescer
from inbox.caches import Caches
from inbox.db import Clock, Database
from inbox.events import record_event
from inbox.jobs import JobQueue
from inbox.model import (
    STATUS_RANK,
    Attachment,
    ChannelAdapter,
    DeliveryUpdate,
    MessageKind,
    MessageStatus,
    OutboundMessage,
    PermanentChannelError,
    Reason,
    TemplateRef,
    TransientChannelError,
)
from inbox.views import MessageView, dump

_LOGGER = logging.getLogger(__name__)

DISPATCH_JOB = "outbox.dispatch"
Origin = Literal["agent", "bot", "system", "automation", "api"]


class DraftError(ValueError):
    """A draft that cannot become a message at all (no content, unknown conversation)."""


@dataclass(frozen=True)
class Draft:
    """What someone wants to send into a conversation."""

    conversation_id: int
    text: str | None = None
    template: TemplateRef | None = None
    attachments: tuple[Attachment, ...] = ()
    buttons: tuple[str, ...] = ()
    private: bool = False  # a note for agents: stored, never sent
    author_id: int | None = None
    origin: Origin = "agent"
    # Sent on the business's initiative (broadcast, automation, POST /messages), not as a reply.
    business_initiated: bool = False
    subject: str | None = None


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    detail: str


@dataclass
class SendContext:
    """What a policy decides on. ``stage`` is ``submit`` or ``dispatch`` (the re-check before sending)."""

    draft: Draft
    message: t.Message | None
    conversation: t.Conversation
    channel: t.Channel
    now: datetime
    stage: Literal["submit", "dispatch"]
    notes: dict[str, object] = field(default_factory=dict)


class Policy(Protocol):
    async def check(self, session: AsyncSession, ctx: SendContext) -> Refusal | None: ...


class FailureHook(Protocol):
    """Runs in the transaction that marks a message failed (e.g. the quota releases a conversation)."""

    async def __call__(self, session: AsyncSession, message: t.Message) -> None: ...


AdapterLookup = Callable[[int], Awaitable[ChannelAdapter]]


class _Claimed(NamedTuple):
    """A message dispatch holds the lease on, and what goes to the adapter."""

    message: t.Message
    inbox_id: int
    outbound: OutboundMessage


class _Sent(NamedTuple):
    message: t.Message
    inbox_id: int
    provider_id: str
    status: MessageStatus


# The statements every send runs (dispatch, status webhooks), built once: building a select and its
# cache key each time cost more CPU than SQLite spent running it (bench/HISTORY.md, profile).
# A batch of dispatches claims its messages with one statement (those another process holds or that
# are no longer queued are not returned).
_CLAIM_MANY = (
    update(t.Message)
    .where(
        t.Message.id.in_(bindparam("ids", expanding=True)),
        t.Message.status == MessageStatus.QUEUED,
        (t.Message.lease_until.is_(None)) | (t.Message.lease_until < bindparam("now")),
    )
    .values(lease_until=bindparam("lease_until"))
    .returning(t.Message.id)
)
# Claimed messages with their conversations and channels: one statement instead of three ``get``s each.
_DISPATCH_ROWS = (
    select(t.Message, t.Conversation, t.Channel)
    .join(t.Conversation, t.Conversation.id == t.Message.conversation_id)
    .join(t.Channel, t.Channel.id == t.Message.channel_id)
    .where(t.Message.id.in_(bindparam("ids", expanding=True)))
)
# The send's result, written without reading the row back (dispatch holds it under the lease).
_SENT = (
    update(t.Message)
    .where(t.Message.id == bindparam("message_id"))
    .values(
        provider_message_id=bindparam("provider_message_id"),
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        updated_at=bindparam("updated_at"),
        lease_until=None,
        reason=None,
        error_detail=None,
        next_attempt_at=None,
    )
)
# A provider status finds its message and the conversation's inbox (for the event) at once.
_STATUS_TARGET = (
    select(t.Message, t.Conversation.inbox_id)
    .join(t.Conversation, t.Conversation.id == t.Message.conversation_id)
    .where(
        t.Message.channel_id == bindparam("channel_id"),
        t.Message.provider_message_id == bindparam("provider_id"),
        t.Message.kind == MessageKind.OUTGOING,
    )
)
_OUTGOING_BY_PROVIDER_ID = select(t.Message).where(
    t.Message.channel_id == bindparam("channel_id"),
    t.Message.provider_message_id == bindparam("provider_id"),
    t.Message.kind == MessageKind.OUTGOING,
)
_PARKED = (
    select(t.OrphanStatus.id)
    .where(
        t.OrphanStatus.channel_id == bindparam("channel_id"),
        t.OrphanStatus.provider_message_id == bindparam("provider_id"),
    )
    .limit(1)
)
# Which of a batch's new provider ids have statuses parked (one read for the batch).
_PARKED_AMONG = (
    select(t.OrphanStatus.channel_id, t.OrphanStatus.provider_message_id)
    .where(t.OrphanStatus.provider_message_id.in_(bindparam("provider_ids", expanding=True)))
    .distinct()
)
_LAST_INBOUND_PROVIDER_ID = (
    select(t.Message.provider_message_id)
    .where(t.Message.conversation_id == bindparam("conversation_id"), t.Message.kind == MessageKind.INCOMING)
    .order_by(t.Message.id.desc())
    .limit(1)
)
_THREAD_PROVIDER_IDS = (
    select(t.Message.provider_message_id)
    .where(
        t.Message.conversation_id == bindparam("conversation_id"),
        t.Message.id < bindparam("before_id"),
        t.Message.provider_message_id.is_not(None),
    )
    .order_by(t.Message.id.desc())
    .limit(50)
)


# How many recently sent messages' statuses each process remembers (see ``Outbox._known``).
KNOWN_STATUSES = 10_000


def can_advance(known: MessageStatus, incoming: MessageStatus) -> bool:
    """Whether a provider status could still change a message whose status is at least ``known``.

    Statuses only move up the ranks or to ``failed``, which is final; so a status at or below a rank
    the message already had is a no-op whatever the row says now (``_advance`` agrees).
    """
    if known == MessageStatus.FAILED:
        return False
    if incoming == MessageStatus.FAILED:
        return True
    return incoming in STATUS_RANK and STATUS_RANK[incoming] > STATUS_RANK.get(known, -1)


def default_backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds before try ``attempt + 1``: the provider's hint, else exponential with full jitter."""
    if retry_after is not None:
        return retry_after
    ceiling = min(300.0, 2.0 * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class Outbox:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        adapters: AdapterLookup,
        clock: Clock,
        policies: Sequence[Policy] = (),
        failure_hooks: Sequence[FailureHook] = (),
        max_attempts: int = 8,
        backoff: Callable[[int, float | None], float] = default_backoff,
        lease: timedelta = timedelta(minutes=2),
        caches: Caches | None = None,
    ) -> None:
        self._db = db
        self._caches = caches
        self._jobs = jobs
        self._adapters = adapters
        self._clock = clock
        self.policies: list[Policy] = list(policies)
        self.failure_hooks: list[FailureHook] = list(failure_hooks)
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._lease = lease
        # A lower bound of the status of messages this process sent or moved lately, by (channel,
        # provider id). WhatsApp reports ``sent`` for every message we already marked sent: that
        # webhook then costs no transaction. Another process can only have moved a message further,
        # so a stale entry still tells a no-op apart; a miss just reads the row.
        self._known: dict[tuple[int, str], MessageStatus] = {}
        self._claims: Coalescer[int, _Claimed | None] = Coalescer(self._claim_batch)
        self._finishes: Coalescer[_Sent, None] = Coalescer(self._finish_batch)
        self._statuses: Coalescer[DeliveryUpdate, bool] = Coalescer(self._status_batch)
        jobs.register(DISPATCH_JOB, self.dispatch)

    def _learn(self, channel_id: int, provider_id: str | None, status: MessageStatus) -> None:
        if provider_id is None:
            return
        key = (channel_id, provider_id)
        self._known.pop(key, None)
        self._known[key] = status
        if len(self._known) > KNOWN_STATUSES:
            del self._known[next(iter(self._known))]  # the oldest entry

    # -- submit -------------------------------------------------------------------------------------

    async def submit(self, draft: Draft, session: AsyncSession | None = None) -> MessageView:
        """Store the draft as a note, a queued message or a refused one; enqueue delivery if queued.

        With ``session`` the message joins the caller's transaction and the caller enqueues
        ``dispatch`` after its commit (``enqueue_if_queued``).
        """
        if not (draft.text and draft.text.strip()) and draft.template is None and not draft.attachments:
            raise DraftError("a message needs text, a template or an attachment")
        if draft.private and draft.template is not None:
            raise DraftError("a private note cannot be a template")
        if session is not None:
            return await self._submit_in(session, draft)
        async with self._db.write() as own:
            view = await self._submit_in(own, draft)
        await self.enqueue_if_queued(view)
        return view

    async def enqueue_if_queued(self, view: MessageView) -> None:
        if view.status == MessageStatus.QUEUED:
            await self._jobs.enqueue(DISPATCH_JOB, view.id)

    async def _submit_in(self, session: AsyncSession, draft: Draft) -> MessageView:
        now = self._clock()
        conversation = await session.get(t.Conversation, draft.conversation_id)
        if conversation is None:
            raise DraftError(f"conversation {draft.conversation_id} does not exist")
        channel = await session.get(t.Channel, conversation.channel_id)
        assert channel is not None
        message = t.Message(
            account_id=conversation.account_id,
            conversation_id=conversation.id,
            channel_id=channel.id,
            kind=MessageKind.NOTE if draft.private else MessageKind.OUTGOING,
            origin=draft.origin,
            text=draft.text,
            content_type="template" if draft.template else "text",
            attachments=[a.model_dump(exclude={"data"}) for a in draft.attachments],
            template=draft.template.model_dump(mode="json") if draft.template else None,
            status=MessageStatus.RECEIVED if draft.private else MessageStatus.QUEUED,
            author_id=draft.author_id,
            raw=None
            if draft.private
            else {
                "buttons": list(draft.buttons),
                "subject": draft.subject,
                "business_initiated": draft.business_initiated,
            },
            created_at=now,
            updated_at=now,
        )
        session.add(message)
        # Not flushed yet: a policy that renders the text or refuses the send changes the row before
        # its INSERT, not with an UPDATE after it. A policy that needs the id flushes (the quota).
        if not draft.private:
            ctx = SendContext(draft, message, conversation, channel, now, "submit")
            for policy in self.policies:
                refusal = await policy.check(session, ctx)
                if refusal is not None:
                    message.status = MessageStatus.FAILED
                    message.reason = refusal.reason
                    message.error_detail = refusal.detail
                    break
        conversation.last_activity_at = now
        await session.flush()
        view = MessageView.of(message)
        await record_event(
            session,
            "message.created",
            account_id=conversation.account_id,
            now=now,
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            payload={"message": dump(view)},
        )
        return view

    # -- dispatch -----------------------------------------------------------------------------------

    async def dispatch(self, message_id: int) -> None:
        """Deliver one queued message. Safe to call twice: only one caller holds the lease.

        Dispatches running at once share their database work: one transaction claims a batch of
        messages, one records a batch of results (``inbox.batching``); each send is its own call.
        """
        claimed = await self._claims(message_id)
        if claimed is None:
            return
        message, inbox_id, outbound = claimed
        try:
            adapter = await self._adapters(outbound.channel_id)
            result = await adapter.send(outbound)
        except PermanentChannelError as exc:
            await self._finish_failed(message_id, exc.reason, exc.detail)
            return
        except TransientChannelError as exc:
            await self._retry_later(message_id, exc.detail, exc.retry_after)
            return
        except Exception as exc:  # an adapter bug or a network error it did not map: retry, say so
            _LOGGER.exception("adapter raised an unmapped error for message %s", message_id)
            await self._retry_later(message_id, f"{type(exc).__name__}: {exc}", None)
            return
        await self._finishes(_Sent(message, inbox_id, result.provider_message_id, result.status))

    async def _claim_batch(self, message_ids: Sequence[int]) -> list[_Claimed | None]:
        """Claim the messages still queued and unleased; re-check the policies; build what to send."""
        now = self._clock()
        out: dict[int, _Claimed] = {}
        async with self._db.write() as session:
            conn = await session.connection()
            claimed = set(
                (
                    await conn.execute(
                        _CLAIM_MANY, {"ids": list(message_ids), "now": now, "lease_until": now + self._lease}
                    )
                ).scalars()
            )
            if not claimed:
                return [None] * len(message_ids)
            rows = (await session.execute(_DISPATCH_ROWS, {"ids": sorted(claimed)})).all()
            for message, conversation, channel in rows:
                ready = await self._prepare(session, message, conversation, channel, now)
                if ready is not None:
                    out[message.id] = ready
        return [out.get(i) for i in message_ids]

    async def _prepare(
        self,
        session: AsyncSession,
        message: t.Message,
        conversation: t.Conversation,
        channel: t.Channel,
        now: datetime,
    ) -> _Claimed | None:
        draft = _draft_of(message)
        ctx = SendContext(draft, message, conversation, channel, now, "dispatch")
        for policy in self.policies:
            refusal = await policy.check(session, ctx)
            if refusal is not None:
                await self._fail(session, message, refusal.reason, refusal.detail, now, conversation.inbox_id)
                return None
        outbound = OutboundMessage(
            message_id=message.id,
            channel_id=channel.id,
            to=conversation.recipient,
            text=message.text,
            template=TemplateRef.model_validate(message.template) if message.template else None,
            attachments=tuple(Attachment.model_validate(a) for a in message.attachments or []),
            buttons=tuple((message.raw or {}).get("buttons") or ()),
            subject=(message.raw or {}).get("subject") or (conversation.meta or {}).get("subject"),
            thread_key=conversation.thread_key,
            reply_to_provider_id=await _last_inbound_provider_id(session, conversation.id),
            references=await _thread_provider_ids(session, conversation.id, message.id),
            sender_name=await _display_name(session, message.author_id, self._caches),
        )
        return _Claimed(message, conversation.inbox_id, outbound)

    async def _finish_batch(self, sent: Sequence[_Sent]) -> list[None]:
        """Record the provider's ids and statuses. Each ``message`` is dispatch's copy of the row, which
        nothing else changes while the lease holds (a status webhook cannot find it before this commit):
        all are written with one executemany UPDATE and updated in memory for the events, not read again."""
        now = self._clock()
        params: list[dict[str, object]] = []
        for item in sent:
            final = item.status if item.status != MessageStatus.QUEUED else MessageStatus.SENT
            params.append(
                {
                    "message_id": item.message.id,
                    "provider_message_id": item.provider_id,
                    "status": final,
                    "attempts": item.message.attempts + 1,
                    "updated_at": now,
                }
            )
        try:
            async with self._db.write() as session:
                conn = await session.connection()
                await conn.execute(_SENT, params)
                for item, values in zip(sent, params, strict=True):
                    message = item.message
                    for key, value in values.items():
                        if key != "message_id":
                            set_committed_value(message, key, value)
                    for key in ("lease_until", "reason", "error_detail", "next_attempt_at"):
                        set_committed_value(message, key, None)
                    await self._record_updated(session, message, item.inbox_id, now)
                    # Learnt before the commit: the provider's own "sent" webhook often arrives while
                    # this transaction holds the writer, and then finds the answer when it gets it.
                    self._learn(message.channel_id, item.provider_id, MessageStatus(message.status))
        except BaseException:
            for item in sent:  # not committed: not known
                self._known.pop((item.message.channel_id, item.provider_id), None)
            raise
        # Statuses the provider sent before we knew these ids (fast webhooks) apply now.
        async with self._db.read() as session:
            conn = await session.connection()
            parked = set(
                (await conn.execute(_PARKED_AMONG, {"provider_ids": [i.provider_id for i in sent]})).tuples()
            )
        for item in sent:
            if (item.message.channel_id, item.provider_id) in parked:
                await self._adopt_orphans(item.message.channel_id, item.provider_id)
        return [None] * len(sent)

    async def _adopt_orphans(self, channel_id: int, provider_id: str) -> bool:
        """Apply statuses parked for a message, after both sides committed.

        A status webhook and the send's own commit can run at once (PostgreSQL): each transaction then
        misses the other's write (no message with that id yet / no orphan yet). Both sides look again
        after their commit, so at least one sees the other; the message row lock keeps it single.
        """
        parked = (
            t.OrphanStatus.channel_id == channel_id,
            t.OrphanStatus.provider_message_id == provider_id,
        )
        async with self._db.read() as session:
            if await session.scalar(_PARKED, {"channel_id": channel_id, "provider_id": provider_id}) is None:
                return False  # the usual case: nothing parked, no write
        now = self._clock()
        async with self._db.write() as session:
            message = await session.scalar(
                _OUTGOING_BY_PROVIDER_ID.with_for_update(),
                {"channel_id": channel_id, "provider_id": provider_id},
            )
            if message is None:
                return False
            orphans = list(
                await session.scalars(select(t.OrphanStatus).where(*parked).order_by(t.OrphanStatus.id))
            )
            changed = False
            for orphan in orphans:
                update_ = DeliveryUpdate(
                    channel_id=orphan.channel_id,
                    provider_message_id=provider_id,
                    status=MessageStatus(orphan.status),
                    error_code=orphan.error_code,
                    error_title=orphan.error_title,
                )
                changed = await self._advance(session, message, update_, now) or changed
                await session.execute(delete(t.OrphanStatus).where(t.OrphanStatus.id == orphan.id))
            return changed

    async def _finish_failed(self, message_id: int, reason: Reason, detail: str) -> None:
        now = self._clock()
        async with self._db.write() as session:
            message = await session.get(t.Message, message_id)
            assert message is not None
            message.attempts += 1
            await self._fail(session, message, reason, detail, now)

    async def _retry_later(self, message_id: int, detail: str, retry_after: float | None) -> None:
        now = self._clock()
        delay: float | None = None
        async with self._db.write() as session:
            message = await session.get(t.Message, message_id)
            assert message is not None
            message.attempts += 1
            if message.attempts >= self._max_attempts:
                await self._fail(
                    session,
                    message,
                    Reason.CHANNEL_ERROR,
                    f"gave up after {message.attempts} attempts: {detail}",
                    now,
                )
                return
            delay = self._backoff(message.attempts, retry_after)
            message.lease_until = None
            message.error_detail = detail
            message.next_attempt_at = now + timedelta(seconds=delay)
            message.updated_at = now
        _LOGGER.info("message %s: transient failure, retry in %.2fs", message_id, delay)
        await self._jobs.enqueue(DISPATCH_JOB, message_id, delay=delay)

    async def _fail(
        self,
        session: AsyncSession,
        message: t.Message,
        reason: Reason,
        detail: str,
        now: datetime,
        inbox_id: int | None = None,
    ) -> None:
        message.status = MessageStatus.FAILED
        message.reason = reason
        message.error_detail = detail
        message.lease_until = None
        message.next_attempt_at = None
        message.updated_at = now
        for hook in self.failure_hooks:
            await hook(session, message)
        await self._emit_updated(session, message, now, inbox_id)

    async def _emit_updated(
        self, session: AsyncSession, message: t.Message, now: datetime, inbox_id: int | None = None
    ) -> None:
        if inbox_id is None:
            conversation = await session.get(t.Conversation, message.conversation_id)
            assert conversation is not None
            inbox_id = conversation.inbox_id
        await session.flush()
        await self._record_updated(session, message, inbox_id, now)

    async def _record_updated(
        self, session: AsyncSession, message: t.Message, inbox_id: int, now: datetime
    ) -> None:
        await record_event(
            session,
            "message.updated",
            account_id=message.account_id,
            now=now,
            inbox_id=inbox_id,
            conversation_id=message.conversation_id,
            payload={"message": dump(MessageView.of(message))},
        )

    # -- provider status callbacks ------------------------------------------------------------------

    async def apply_status(self, update_: DeliveryUpdate) -> bool:
        """Move a message forward (sent → delivered → read; failed is final). True if it changed.

        Statuses arriving at once (webhooks in parallel) are applied in one transaction."""
        known = self._known.get((update_.channel_id, update_.provider_message_id))
        if known is not None and not can_advance(known, update_.status):
            return False
        return await self._statuses(update_)

    async def _status_batch(self, updates: Sequence[DeliveryUpdate]) -> list[bool]:
        now = self._clock()
        changed: list[bool | None] = []  # None: parked as an orphan, adopted after the commit
        moved: list[t.Message] = []
        async with self._db.write() as session:
            for update_ in updates:
                known = self._known.get((update_.channel_id, update_.provider_message_id))
                if known is not None and not can_advance(known, update_.status):
                    changed.append(False)  # the send committed while we waited for the writer
                    continue
                found = (
                    await session.execute(
                        _STATUS_TARGET,
                        {"channel_id": update_.channel_id, "provider_id": update_.provider_message_id},
                    )
                ).first()
                if found is None:
                    session.add(
                        t.OrphanStatus(
                            channel_id=update_.channel_id,
                            provider_message_id=update_.provider_message_id,
                            status=update_.status,
                            error_code=update_.error_code,
                            error_title=update_.error_title,
                            created_at=now,
                        )
                    )
                    changed.append(None)
                    continue
                message, inbox_id = found
                changed.append(await self._advance(session, message, update_, now, inbox_id))
                moved.append(message)
        # Learnt after the commit: a rolled-back change must not be remembered.
        for message in moved:
            self._learn(message.channel_id, message.provider_message_id, MessageStatus(message.status))
        results: list[bool] = []
        for update_, result in zip(updates, changed, strict=True):
            if result is None:
                result = await self._adopt_orphans(update_.channel_id, update_.provider_message_id)
            results.append(result)
        return results

    async def _advance(
        self,
        session: AsyncSession,
        message: t.Message,
        update_: DeliveryUpdate,
        now: datetime,
        inbox_id: int | None = None,
    ) -> bool:
        current = MessageStatus(message.status)
        if current == MessageStatus.FAILED:
            return False
        if update_.status == MessageStatus.FAILED:
            # A provider may fail a message after accepting it (WhatsApp 131047 arrives as a status).
            detail = " ".join(x for x in (update_.error_code, update_.error_title) if x) or "failed"
            if current in (MessageStatus.DELIVERED, MessageStatus.READ):
                # Already delivered: the status stays (forward only), the provider's error is kept.
                if message.error_detail == detail:
                    return False
                message.error_detail = detail
                message.updated_at = now
                await self._emit_updated(session, message, now, inbox_id)
                return True
            if current not in (MessageStatus.QUEUED, MessageStatus.SENT):
                return False
            await self._fail(session, message, update_.reason or Reason.CHANNEL_ERROR, detail, now)
            return True
        if update_.status not in STATUS_RANK or STATUS_RANK[update_.status] <= STATUS_RANK.get(current, -1):
            return False
        message.status = update_.status
        message.updated_at = now
        await self._emit_updated(session, message, now, inbox_id)
        return True

    # -- start-up -----------------------------------------------------------------------------------

    async def redispatch_pending(self) -> int:
        """Enqueue every message a crash left queued, honouring its retry time. Returns the count."""
        now = self._clock()
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(t.Message.id, t.Message.next_attempt_at).where(
                        t.Message.status == MessageStatus.QUEUED,
                        t.Message.kind == MessageKind.OUTGOING,
                    )
                )
            ).all()
        for message_id, next_at in rows:
            delay = max(0.0, (next_at - now).total_seconds()) if next_at else 0.0
            await self._jobs.enqueue(DISPATCH_JOB, message_id, delay=delay)
        return len(rows)


def _draft_of(message: t.Message) -> Draft:
    extra = message.raw or {}
    return Draft(
        buttons=tuple(extra.get("buttons") or ()),
        subject=extra.get("subject"),
        business_initiated=bool(extra.get("business_initiated")),
        conversation_id=message.conversation_id,
        text=message.text,
        template=TemplateRef.model_validate(message.template) if message.template else None,
        author_id=message.author_id,
        origin=message.origin,  # type: ignore[arg-type]
    )


_DISPLAY_NAME = select(t.AgentProfile.display_name).where(t.AgentProfile.user_id == bindparam("user_id"))


async def _display_name(session: AsyncSession, author_id: int | None, caches: Caches | None) -> str | None:
    """The author's display name from their agent profile, if they set one."""
    if author_id is None:
        return None

    async def load() -> str | None:
        conn = await session.connection()
        name: str | None = (await conn.execute(_DISPLAY_NAME, {"user_id": author_id})).scalar()
        return name

    if caches is None:
        return await load()
    return await caches.get(session, ("display_name", author_id), (t.AgentProfile.__tablename__,), load)


async def _last_inbound_provider_id(session: AsyncSession, conversation_id: int) -> str | None:
    conn = await session.connection()  # Core: a column read needs no ORM round-trip
    found: str | None = (
        await conn.execute(_LAST_INBOUND_PROVIDER_ID, {"conversation_id": conversation_id})
    ).scalar()
    return found


async def _thread_provider_ids(
    session: AsyncSession, conversation_id: int, before_id: int
) -> tuple[str, ...]:
    """Provider ids of the conversation's earlier messages, oldest first (email References)."""
    conn = await session.connection()
    ids = (
        await conn.execute(_THREAD_PROVIDER_IDS, {"conversation_id": conversation_id, "before_id": before_id})
    ).scalars()
    return tuple(reversed([i for i in ids if i]))
