"""Broadcast lists: one message to many contacts, each in its own conversation, sent in the background.

A broadcast is stored first (``create``); its recipients are listed in one statement from the
audience (``expanding`` → ``sending``) and then sent in batches by ``BroadcastRunner``. Each batch is
one transaction that stores the recipients' messages through the outbox gate *and* marks those
recipients done, so a process killed at any point resumes (``resume`` at start-up) with no recipient
sent twice and none skipped. Cancel marks what is still pending ``canceled``.

With ``allow_replies`` false, each recipient's conversation carries ``meta["replies_disabled"]``:
answers are stored and shown as always, and ``RepliesDisabledHook`` sends the channel's auto-answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.attributes import attribute_condition
from inbox.audiences import AudienceFilter, address_on, audience_condition
from inbox.consent import consent_enabled, match_keyword
from inbox.conversations import find_or_open_conversation, set_replies_disabled
from inbox.db import Clock, Database
from inbox.events import record_event
from inbox.i18n import N_, account_language, translator
from inbox.jobs import JobQueue
from inbox.model import Attachment, MessageKind, MessageStatus, TemplateRef
from inbox.outbox import Draft, Outbox, Refusal, SendContext
from inbox.views import MessageView

if TYPE_CHECKING:
    from inbox.inbound import InboundContext

_LOGGER = logging.getLogger(__name__)

RUN_JOB = "broadcast.run"
UPDATED = "broadcast.updated"
# Recipients stored per write transaction (as POST /broadcasts always did): large enough to spread a
# commit over many messages, small enough that inbound messages are not held up behind the writer.
BATCH = 50
# Batches per job before the job re-enqueues itself, so a long broadcast shares the job workers.
BATCHES_PER_JOB = 20
ACTIVE = ("expanding", "sending")
DEFAULT_AUTO_ANSWER = N_("Replies to this conversation are turned off. We have your message all the same.")
DEFAULT_HELD_ANSWER = N_(
    "Thanks for your message. This channel does not take new conversations; we will write to you."
)
# Origins of messages that open a conversation for the contact (an agent, a broadcast, a bot, an automation).
_OPENING = ("agent", "api", "bot", "automation")

# {{name}}, {{email}}, {{phone}} or {{<attribute>}}; {{name|there}} falls back to "there".
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*(?:\|([^}]*))?\}\}")
_FIELDS = ("name", "email", "phone")
_RECIPIENTS = cast(Table, t.BroadcastRecipient.__table__)


class PersonalizationError(ValueError):
    """Placeholders that some recipients have no value for: ``missing`` maps each to a few contact ids."""

    def __init__(self, missing: dict[str, tuple[int, list[int]]]) -> None:
        self.missing = missing
        named = "; ".join(f"{{{{{k}}}}} for {n} contact(s), e.g. {ids}" for k, (n, ids) in missing.items())
        super().__init__(f"no value for {named}")


def placeholders(*texts: str | None) -> dict[str, bool]:
    """Placeholder name → whether every use of it has a fallback (``{{name|there}}``)."""
    found: dict[str, bool] = {}
    for text in texts:
        for match in _PLACEHOLDER.finditer(text or ""):
            key, fallback = match.group(1), match.group(2) is not None
            found[key] = found.get(key, True) and fallback
    return found


def personalize(text: str, contact: t.Contact) -> str:
    """``text`` with each placeholder replaced by the contact's value (or the placeholder's fallback)."""

    def value(match: re.Match[str]) -> str:
        key, fallback = match.group(1), match.group(2)
        raw: Any = getattr(contact, key) if key in _FIELDS else (contact.attributes or {}).get(key)
        if raw is None or raw == "" or raw == []:
            return (fallback or "").strip()
        return ", ".join(str(x) for x in raw) if isinstance(raw, list) else str(raw)

    return _PLACEHOLDER.sub(value, text)


def _lacks(key: str) -> ColumnElement[bool]:
    if key in _FIELDS:
        column = getattr(t.Contact, key)
        return cast(ColumnElement[bool], column.is_(None) | (column == ""))
    return attribute_condition(key, "not_exists")


async def check_personalization(
    session: AsyncSession, where: ColumnElement[bool], *texts: str | None
) -> None:
    """Raise ``PersonalizationError`` if a placeholder without fallback has no value for some recipients."""
    missing: dict[str, tuple[int, list[int]]] = {}
    for key, has_fallback in placeholders(*texts).items():
        if has_fallback:
            continue
        lacking = and_(where, _lacks(key))
        n = int(await session.scalar(select(func.count()).select_from(t.Contact).where(lacking)) or 0)
        if n:
            ids = list(
                await session.scalars(select(t.Contact.id).where(lacking).order_by(t.Contact.id).limit(10))
            )
            missing[key] = (n, ids)
    if missing:
        raise PersonalizationError(missing)


@dataclass(frozen=True)
class Recipient:
    """A literal recipient: a contact and the address to write to."""

    contact_id: int
    address: str


async def create(
    session: AsyncSession,
    *,
    channel: t.Channel,
    title: str,
    text: str | None,
    template: TemplateRef | None,
    allow_replies: bool,
    now: datetime,
    author_id: int | None,
    attachments: tuple[Attachment, ...] = (),
    audience: AudienceFilter | None = None,
    audience_id: int | None = None,
    recipients: Iterable[Recipient] = (),
) -> t.Broadcast:
    """Store a broadcast. With an audience its recipients are listed by the runner; else given here."""
    broadcast = t.Broadcast(
        account_id=channel.account_id,
        channel_id=channel.id,
        title=title,
        text=text,
        template=_template_json(template),
        attachments=[a.model_dump(mode="json") for a in attachments],
        audience=audience.model_dump(mode="json") if audience is not None else None,
        audience_id=audience_id,
        allow_replies=allow_replies,
        status="expanding" if audience is not None else "sending",
        total=0,
        queued=0,
        failed=0,
        canceled=0,
        created_by=author_id,
        created_at=now,
    )
    session.add(broadcast)
    await session.flush()
    rows = [
        {"broadcast_id": broadcast.id, "contact_id": r.contact_id, "address": r.address, "outcome": "pending"}
        for r in recipients
    ]
    if rows:
        await session.execute(insert(_RECIPIENTS), rows)
        broadcast.total = len(rows)
    await _updated(session, broadcast, channel, now)
    return broadcast


def _template_json(template: TemplateRef | None) -> dict[str, Any] | None:
    if template is None:
        return None
    return {"name": template.name, "language": template.language, "params": list(template.params)}


async def _expand(session: AsyncSession, broadcast: t.Broadcast, channel: t.Channel, now: datetime) -> None:
    """List the audience's contacts that have an address on the channel, in one INSERT … SELECT."""
    assert broadcast.audience is not None
    audience = AudienceFilter.model_validate(broadcast.audience)
    address = address_on(channel.kind)
    chosen = (
        select(literal(broadcast.id), t.Contact.id, address, literal("pending"))
        .where(audience_condition(broadcast.account_id, audience, now), address.is_not(None))
        .order_by(t.Contact.id)
    )
    await session.execute(
        insert(_RECIPIENTS).from_select(["broadcast_id", "contact_id", "address", "outcome"], chosen)
    )
    total = await session.scalar(
        select(func.count())
        .select_from(t.BroadcastRecipient)
        .where(t.BroadcastRecipient.broadcast_id == broadcast.id)
    )
    broadcast.total = int(total or 0)
    broadcast.status = "sending"


async def cancel(session: AsyncSession, broadcast: t.Broadcast, now: datetime) -> bool:
    """Stop what is not yet sent: pending recipients become ``canceled``. False if it had already ended."""
    if broadcast.status not in ACTIVE:
        return False
    result = await session.execute(
        update(t.BroadcastRecipient)
        .where(t.BroadcastRecipient.broadcast_id == broadcast.id, t.BroadcastRecipient.outcome == "pending")
        .values(outcome="canceled")
    )
    broadcast.canceled += int(result.rowcount or 0)  # type: ignore[attr-defined]
    broadcast.status = "canceled"
    broadcast.finished_at = now
    channel = await session.get(t.Channel, broadcast.channel_id)
    assert channel is not None
    await _updated(session, broadcast, channel, now)
    return True


async def set_allow_replies(session: AsyncSession, broadcast: t.Broadcast, allow: bool, now: datetime) -> int:
    """Switch replies for the conversations this broadcast wrote in; returns how many changed.

    Turning them on again only touches conversations this broadcast turned off (not an agent's choice).
    """
    broadcast.allow_replies = allow
    changed = 0
    ids = select(t.BroadcastRecipient.conversation_id).where(
        t.BroadcastRecipient.broadcast_id == broadcast.id, t.BroadcastRecipient.conversation_id.is_not(None)
    )
    last = 0
    while True:
        page = list(
            await session.scalars(
                select(t.Conversation)
                .where(t.Conversation.id.in_(ids), t.Conversation.id > last)
                .order_by(t.Conversation.id)
                .limit(500)
            )
        )
        if not page:
            break
        last = page[-1].id
        for conversation in page:
            meta = conversation.meta or {}
            if allow and meta.get("replies_broadcast") == broadcast.id:
                set_replies_disabled(conversation, False)
                changed += 1
            elif not allow and not meta.get("replies_disabled"):
                set_replies_disabled(conversation, True, broadcast.id)
                changed += 1
        await session.flush()
    channel = await session.get(t.Channel, broadcast.channel_id)
    assert channel is not None
    await _updated(session, broadcast, channel, now)
    return changed


@dataclass
class Stats:
    """A broadcast's progress, recipient by recipient, from its recipients and their messages."""

    total: int = 0
    pending: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    canceled: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)


_REACHED = {
    MessageStatus.SENT.value: ("sent",),
    MessageStatus.DELIVERED.value: ("sent", "delivered"),
    MessageStatus.READ.value: ("sent", "delivered", "read"),
}


async def stats(session: AsyncSession, broadcast: t.Broadcast) -> Stats:
    r, m = t.BroadcastRecipient, t.Message
    answer = t.Message.__table__.alias("answer")
    replied = exists().where(
        answer.c.conversation_id == r.conversation_id,
        answer.c.kind == MessageKind.INCOMING.value,
        answer.c.id > r.message_id,
    )
    rows = await session.execute(
        select(
            r.outcome,
            func.coalesce(m.reason, r.reason),
            m.status,
            func.count(),
            func.sum(case((replied, 1), else_=0)),
        )
        .select_from(r)
        .outerjoin(m, m.id == r.message_id)
        .where(r.broadcast_id == broadcast.id)
        .group_by(r.outcome, func.coalesce(m.reason, r.reason), m.status)
    )
    s = Stats(total=broadcast.total)
    for outcome, reason, status, n, answered in rows:
        n = int(n)
        s.replied += int(answered or 0)
        if outcome in ("pending", "canceled"):
            setattr(s, outcome, getattr(s, outcome) + n)
        elif outcome == "failed" or status == MessageStatus.FAILED.value:
            s.failed += n
            key = str(reason or "channel_error")
            s.failed_by_reason[key] = s.failed_by_reason.get(key, 0) + n
        elif status == MessageStatus.QUEUED.value:
            s.queued += n
        else:
            for name in _REACHED.get(str(status), ()):
                setattr(s, name, getattr(s, name) + n)
    return s


def summary(broadcast: t.Broadcast) -> dict[str, Any]:
    """What the stream carries on every change: cheap counters kept by the runner (no aggregate query)."""
    handled = broadcast.queued + broadcast.failed + broadcast.canceled
    return {
        "id": broadcast.id,
        "title": broadcast.title,
        "channel_id": broadcast.channel_id,
        "status": broadcast.status,
        "allow_replies": broadcast.allow_replies,
        "total": broadcast.total,
        "pending": max(0, broadcast.total - handled) if broadcast.status in ACTIVE else 0,
        "accepted": broadcast.queued,
        "refused": broadcast.failed,
        "canceled": broadcast.canceled,
    }


async def _updated(session: AsyncSession, broadcast: t.Broadcast, channel: t.Channel, now: datetime) -> None:
    await session.flush()
    await record_event(
        session,
        UPDATED,
        account_id=broadcast.account_id,
        inbox_id=channel.inbox_id,  # seen by the channel inbox's members, like its conversations
        now=now,
        payload={"broadcast": summary(broadcast)},
    )


class BroadcastRunner:
    """Lists and sends broadcasts as jobs (``broadcast.run``); ``resume`` picks up what a crash left."""

    def __init__(self, db: Database, jobs: JobQueue, outbox: Outbox, clock: Clock) -> None:
        self._db = db
        self._jobs = jobs
        self._outbox = outbox
        self._clock = clock
        jobs.register(RUN_JOB, self.run)

    async def start(self, broadcast_id: int) -> None:
        await self._jobs.enqueue(RUN_JOB, broadcast_id)

    async def resume(self) -> int:
        async with self._db.read() as session:
            ids = list(await session.scalars(select(t.Broadcast.id).where(t.Broadcast.status.in_(ACTIVE))))
        for broadcast_id in ids:
            await self._jobs.enqueue(RUN_JOB, broadcast_id)
        return len(ids)

    async def run(self, broadcast_id: int) -> None:
        for _ in range(BATCHES_PER_JOB):
            if not await self.step(broadcast_id):
                return
        await self._jobs.enqueue(RUN_JOB, broadcast_id)

    async def step(self, broadcast_id: int) -> bool:
        """List the recipients, or send one batch; False once there is nothing left to do."""
        views: list[MessageView] = []
        async with self._db.write() as session:
            now = self._clock()
            broadcast = await session.get(t.Broadcast, broadcast_id, with_for_update=True)
            if broadcast is None or broadcast.status not in ACTIVE:
                return False
            channel = await session.get(t.Channel, broadcast.channel_id)
            assert channel is not None
            if broadcast.status == "expanding":
                await _expand(session, broadcast, channel, now)
                await _updated(session, broadcast, channel, now)
                return True
            batch = list(
                await session.scalars(
                    select(t.BroadcastRecipient)
                    .where(
                        t.BroadcastRecipient.broadcast_id == broadcast.id,
                        t.BroadcastRecipient.outcome == "pending",
                    )
                    .order_by(t.BroadcastRecipient.contact_id)
                    .limit(BATCH)
                )
            )
            if not batch:
                broadcast.status = "done"
                broadcast.finished_at = now
                await _updated(session, broadcast, channel, now)
                return False
            contacts = {
                c.id: c
                for c in await session.scalars(
                    select(t.Contact).where(t.Contact.id.in_([r.contact_id for r in batch]))
                )
            }
            for recipient in batch:
                views.append(
                    await self._send(
                        session, broadcast, channel, recipient, contacts[recipient.contact_id], now
                    )
                )
            await _updated(session, broadcast, channel, now)
        # Delivery starts once the batch is committed (a crash before this: redispatch_pending at start).
        for view in views:
            await self._outbox.enqueue_if_queued(view)
        return True

    async def _send(
        self,
        session: AsyncSession,
        broadcast: t.Broadcast,
        channel: t.Channel,
        recipient: t.BroadcastRecipient,
        contact: t.Contact,
        now: datetime,
    ) -> MessageView:
        conversation, _ = await find_or_open_conversation(
            session, channel, recipient.contact_id, recipient.address, now
        )
        template = None
        if broadcast.template is not None:
            spec = broadcast.template
            template = TemplateRef(
                name=spec["name"],
                language=spec["language"],
                params=tuple(personalize(p, contact) for p in spec.get("params", [])),
            )
        draft = Draft(
            conversation_id=conversation.id,
            text=personalize(broadcast.text, contact) if broadcast.text else None,
            template=template,
            attachments=tuple(Attachment.model_validate(a) for a in broadcast.attachments or ()),
            author_id=broadcast.created_by,
            origin="api",
            business_initiated=True,
        )
        view = await self._outbox.submit(draft, session=session)
        recipient.conversation_id = conversation.id
        recipient.message_id = view.id
        if view.status == MessageStatus.FAILED:
            recipient.outcome, recipient.reason = "failed", view.reason
            broadcast.failed += 1
        else:
            recipient.outcome = "queued"
            broadcast.queued += 1
            if not broadcast.allow_replies and not (conversation.meta or {}).get("replies_disabled"):
                set_replies_disabled(conversation, True, broadcast.id)
        return view


def is_consent_keyword(ctx: InboundContext) -> bool:
    """Whether the message is a consent keyword (STOP, YES…), which KeywordHook answers itself."""
    config = ctx.channel.config or {}
    return consent_enabled(ctx.channel) and match_keyword(ctx.inbound.text, config) is not None


async def auto_answer(
    session: AsyncSession, ctx: InboundContext, outbox: Outbox, config_key: str, default: str
) -> None:
    """Answer the inbound message after the commit with the channel's ``config_key`` text, else the
    translated ``default`` (an ``N_`` message), through the outbox like every send."""
    text = (ctx.channel.config or {}).get(config_key)
    if not (isinstance(text, str) and text.strip()):
        tr = translator(await account_language(session, ctx.channel.account_id))
        text = tr.gettext(default)
    draft = Draft(conversation_id=ctx.conversation.id, text=text, origin="system")

    async def answer() -> None:
        await outbox.submit(draft)

    ctx.after_commit.append(answer)


class RepliesDisabledHook:
    """Inbound hook: an answer in a conversation with replies disabled gets the channel's auto-answer.

    The answer itself is stored, shown and routed as always. Consent keywords (STOP…) are answered by
    their own confirmation instead. The auto-answer goes through the outbox after the commit.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None:
        if not (ctx.conversation.meta or {}).get("replies_disabled") or ctx.new_conversation:
            return
        if is_consent_keyword(ctx):
            return
        await auto_answer(session, ctx, self._outbox, "replies_disabled_answer", DEFAULT_AUTO_ANSWER)


class BusinessOpensFirstHook:
    """Inbound hook for inboxes with ``settings["business_opens_first"]``: a contact cannot start a
    conversation there. Inbound from a contact the business never wrote to in that conversation is
    stored and kept aside (``meta["held"]``: shown to admins, not routed, not assigned) and gets the
    channel's ``business_opens_first_answer`` once; the business's first message opens it
    (``OpensHeldConversations``).
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None:
        if ctx.inbox is None or not (ctx.inbox.settings or {}).get("business_opens_first"):
            return
        meta = ctx.conversation.meta or {}
        if meta.get("held") is False:
            return  # the business opened it
        if not meta.get("held"):
            opened = await session.scalar(
                select(
                    exists().where(
                        t.Message.conversation_id == ctx.conversation.id,
                        t.Message.kind == MessageKind.OUTGOING.value,
                        t.Message.origin.in_(_OPENING),
                    )
                )
            )
            if opened:
                ctx.conversation.meta = {**meta, "held": False}
                return
        answered = bool(meta.get("held_answered")) or is_consent_keyword(ctx)  # STOP has its own answer
        ctx.conversation.meta = {**meta, "held": True, "held_answered": True}
        if answered:
            return
        await auto_answer(session, ctx, self._outbox, "business_opens_first_answer", DEFAULT_HELD_ANSWER)


class OpensHeldConversations:
    """Outbox policy that refuses nothing: the business's first message in a held conversation opens it."""

    async def check(self, session: AsyncSession, ctx: SendContext) -> Refusal | None:
        meta = ctx.conversation.meta or {}
        if (
            ctx.stage == "submit"
            and meta.get("held")
            and ctx.draft.origin in _OPENING
            and not ctx.draft.private
        ):
            ctx.conversation.meta = {**meta, "held": False}
        return None
