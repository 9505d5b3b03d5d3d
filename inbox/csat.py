"""Satisfaction surveys (CSAT): asked after a conversation is resolved, answered on its own channel.

``SurveyHook`` (``Database.on_events``) schedules a survey in the transaction that resolved the
conversation, when its inbox has surveys on. ``CsatSender`` sends the due ones through the outbox (the
question with a 1-5 scale as buttons where the channel has them, numbered text elsewhere; outside a
service window only as the inbox's approved template): a refused send records the survey as
``not_sent`` with the outbox's reason. ``RatingHook`` (an inbound hook) reads the contact's answer — a
tapped button, a number or an emoji — stores the rating (and a comment after a follow-up question),
keeps the conversation resolved, and records ``csat.rated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.buttons import chosen, render
from inbox.db import Clock, Database
from inbox.events import record_event
from inbox.i18n import N_, account_language, translator
from inbox.inbound import InboundContext
from inbox.model import ChannelKind, ConversationStatus, MessageStatus, TemplateRef
from inbox.outbox import Draft, Outbox
from inbox.views import dump
from inbox.windows import has_service_window, window_state

_LOGGER = logging.getLogger(__name__)

SCHEDULED: Final = "scheduled"
SENT: Final = "sent"
NOT_SENT: Final = "not_sent"
AWAITING_COMMENT: Final = "awaiting_comment"
ANSWERED: Final = "answered"
OPEN_STATES: Final = (SCHEDULED, SENT, AWAITING_COMMENT)

SCALES: Final[dict[str, tuple[str, ...]]] = {
    "numbers": ("1", "2", "3", "4", "5"),
    "emoji": ("😞", "🙁", "😐", "🙂", "😍"),
}
DEFAULT_QUESTION: Final = N_("How would you rate the help you got? 1 is poor, 5 is excellent.")
FOLLOW_UP: Final = N_("Thank you! Is there anything you would like to tell us?")
THANKS: Final = N_("Thank you for your feedback!")
RATED_EVENT: Final = "csat.rated"


class SurveyView(BaseModel):
    id: int
    conversation_id: int
    inbox_id: int
    agent_id: int | None
    status: str
    scale: str
    message_id: int | None
    reason: str | None
    rating: int | None
    comment: str | None
    send_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    resolved_at: datetime

    @classmethod
    def of(cls, s: t.CsatSurvey) -> SurveyView:
        return cls(
            id=s.id,
            conversation_id=s.conversation_id,
            inbox_id=s.inbox_id,
            agent_id=s.agent_id,
            status=s.status,
            scale=s.scale,
            message_id=s.message_id,
            reason=s.reason,
            rating=s.rating,
            comment=s.comment,
            send_at=s.send_at,
            sent_at=s.sent_at,
            answered_at=s.answered_at,
            resolved_at=s.resolved_at,
        )


def _resolved(event: t.Event) -> bool:
    if event.type != "conversation.updated":
        return False
    return any(
        isinstance(c, dict) and c.get("field") == "status" and c.get("new") == ConversationStatus.RESOLVED
        for c in event.payload.get("changes") or ()
    )


class SurveyHook:
    """``Database.on_events``: schedule a survey when a conversation is resolved in an inbox that asks."""

    def __init__(self) -> None:
        self._marked: weakref.WeakSet[t.Event] = weakref.WeakSet()

    async def __call__(self, session: AsyncSession, events: Sequence[t.Event]) -> None:
        for event in events:
            if not _resolved(event) or event.inbox_id is None or event.conversation_id is None:
                continue
            setting = await session.get(t.CsatSetting, event.inbox_id)
            if setting is None or not setting.enabled:
                continue
            waiting = await session.scalar(
                select(t.CsatSurvey.id)
                .where(
                    t.CsatSurvey.conversation_id == event.conversation_id,
                    t.CsatSurvey.status.in_(OPEN_STATES),
                )
                .limit(1)
            )
            if waiting is not None:  # one question at a time: a survey not yet answered stands
                continue
            conversation = event.payload.get("conversation") or {}
            session.add(
                t.CsatSurvey(
                    account_id=event.account_id,
                    inbox_id=event.inbox_id,
                    conversation_id=event.conversation_id,
                    agent_id=conversation.get("assignee_id"),
                    status=SCHEDULED,
                    scale=setting.scale,
                    send_at=event.created_at + timedelta(seconds=setting.delay_seconds),
                    resolved_at=event.created_at,
                    created_at=event.created_at,
                )
            )
            self._marked.add(events[-1])
        await session.flush()

    def has_surveys(self, events: Sequence[t.Event]) -> bool:
        return bool(events) and events[-1] in self._marked


class CsatSender:
    """Sends due surveys through the outbox. ``poke()`` after a commit that scheduled one; a timer
    looks again every ``rescan_seconds`` (delayed surveys, restarts)."""

    def __init__(self, db: Database, outbox: Outbox, clock: Clock, *, rescan_seconds: float = 15.0) -> None:
        self._db = db
        self._outbox = outbox
        self._clock = clock
        self._rescan = rescan_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping = False
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="csat-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True  # see MailQueue.stop
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._rescan):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:  # keep the sender alive; the surveys stay scheduled
                _LOGGER.exception("survey pass failed")

    async def send_due(self) -> int:
        """Send every scheduled survey whose time has come; returns how many were handled."""
        now = self._clock()
        async with self._db.read() as session:
            ids = list(
                await session.scalars(
                    select(t.CsatSurvey.id)
                    .where(t.CsatSurvey.status == SCHEDULED, t.CsatSurvey.send_at <= now)
                    .order_by(t.CsatSurvey.id)
                    .limit(200)
                )
            )
        for survey_id in ids:
            await self.send(survey_id)
        return len(ids)

    async def send(self, survey_id: int) -> None:
        now = self._clock()
        view = None
        async with self._db.write() as session:
            # Taken by whoever flips it first (several gateways may look at once).
            taken = await session.execute(
                update(t.CsatSurvey)
                .where(t.CsatSurvey.id == survey_id, t.CsatSurvey.status == SCHEDULED)
                .values(status=SENT, sent_at=now)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return
            survey = await session.get(t.CsatSurvey, survey_id)
            assert survey is not None
            conversation = await session.get(t.Conversation, survey.conversation_id)
            assert conversation is not None
            if conversation.status != ConversationStatus.RESOLVED:
                survey.status, survey.reason = NOT_SENT, "reopened"
                return
            draft = await self._draft(session, survey, conversation, now)
            view = await self._outbox.submit(draft, session)
            survey.message_id = view.id
            if view.status == MessageStatus.FAILED:
                survey.status, survey.reason = NOT_SENT, view.reason or "failed"
        if view is not None:
            await self._outbox.enqueue_if_queued(view)

    async def _draft(
        self, session: AsyncSession, survey: t.CsatSurvey, conversation: t.Conversation, now: datetime
    ) -> Draft:
        setting = await session.get(t.CsatSetting, survey.inbox_id)
        channel = await session.get(t.Channel, conversation.channel_id)
        assert channel is not None
        if setting is not None and setting.template_name and has_service_window(channel):
            window = await window_state(session, channel.id, conversation.contact_id, now)
            if not window.open:
                template = TemplateRef(
                    name=setting.template_name, language=setting.template_language or "en_US"
                )
                return Draft(conversation_id=conversation.id, template=template, origin="system")
        tr = translator(await account_language(session, survey.account_id))
        question = (setting.question if setting is not None else None) or tr.gettext(DEFAULT_QUESTION)
        text, buttons = render(channel.kind, question, list(SCALES.get(survey.scale, SCALES["numbers"])))
        if channel.kind == ChannelKind.EMAIL:
            text = question  # no buttons: the contact answers with the number in a reply
        return Draft(conversation_id=conversation.id, text=text, buttons=buttons, origin="system")


async def not_sent_on_failure(session: AsyncSession, message: t.Message) -> None:
    """Outbox ``FailureHook``: a survey whose message failed at the provider was not sent after all."""
    survey = await session.scalar(
        select(t.CsatSurvey).where(
            t.CsatSurvey.conversation_id == message.conversation_id,
            t.CsatSurvey.message_id == message.id,
            t.CsatSurvey.status == SENT,
        )
    )
    if survey is not None:
        survey.status, survey.reason = NOT_SENT, message.reason or "channel_error"


class RatingHook:
    """Inbound hook: the contact's answer to a survey becomes its rating (then, if asked, its comment)."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None:
        survey = await session.scalar(
            select(t.CsatSurvey)
            .where(
                t.CsatSurvey.conversation_id == ctx.conversation.id,
                t.CsatSurvey.status.in_((SENT, AWAITING_COMMENT)),
            )
            .order_by(t.CsatSurvey.id.desc())
            .limit(1)
        )
        text = (ctx.inbound.text or "").strip()
        if survey is None or not text:
            return
        setting = await session.get(t.CsatSetting, survey.inbox_id)
        if survey.status == SENT:
            index = chosen(list(SCALES.get(survey.scale, SCALES["numbers"])), text)
            if index is None:
                return  # not an answer: an ordinary message, the survey stays open
            survey.rating = index + 1
            survey.answered_at = ctx.now
            asks_more = setting is not None and setting.follow_up
            survey.status = AWAITING_COMMENT if asks_more else ANSWERED
            reply = FOLLOW_UP if asks_more else THANKS
        else:
            survey.comment = text[:4000]
            survey.status = ANSWERED
            reply = THANKS
        if ctx.reopened:  # answering the survey is not a new request: the conversation stays resolved
            ctx.conversation.status = ConversationStatus.RESOLVED
            ctx.conversation.resolved_at = survey.resolved_at
        await session.flush()
        await record_event(
            session,
            RATED_EVENT,
            account_id=survey.account_id,
            now=ctx.now,
            inbox_id=survey.inbox_id,
            conversation_id=survey.conversation_id,
            payload={"survey": dump(SurveyView.of(survey))},
        )
        tr = translator(await account_language(session, survey.account_id))
        draft = Draft(conversation_id=ctx.conversation.id, text=tr.gettext(reply), origin="system")
        outbox = self._outbox

        async def answer() -> None:
            await outbox.submit(draft)

        ctx.after_commit.append(answer)


# -- the report -----------------------------------------------------------------------------------


class AgentCsat(BaseModel):
    agent_id: int | None
    name: str | None
    answered: int
    average: float | None
    median: float | None


class CsatReport(BaseModel):
    sent: int  # surveys that reached the contact
    not_sent: int
    answered: int
    response_rate: float | None  # answered / sent
    average: float | None
    median: float | None
    satisfied_percent: float | None  # ratings of 4 and 5
    distribution: dict[str, int]  # "1".."5" -> answers
    agents: list[AgentCsat]
    not_sent_reasons: dict[str, int]


async def csat_report(
    session: AsyncSession,
    account_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
    inbox_ids: set[int] | None,
    agent_id: int | None = None,
) -> CsatReport:
    """Surveys of conversations resolved in [since, until): counts, median, distribution, per agent."""
    query = select(
        t.CsatSurvey.status, t.CsatSurvey.rating, t.CsatSurvey.agent_id, t.CsatSurvey.reason
    ).where(t.CsatSurvey.account_id == account_id)
    if since is not None:
        query = query.where(t.CsatSurvey.resolved_at >= since)
    if until is not None:
        query = query.where(t.CsatSurvey.resolved_at < until)
    if inbox_ids is not None:
        query = query.where(t.CsatSurvey.inbox_id.in_(inbox_ids))
    if agent_id is not None:
        query = query.where(t.CsatSurvey.agent_id == agent_id)
    rows = (await session.execute(query)).all()
    ratings = [r.rating for r in rows if r.rating is not None]
    sent = sum(1 for r in rows if r.status in (SENT, AWAITING_COMMENT, ANSWERED))
    reasons: dict[str, int] = {}
    by_agent: dict[int | None, list[int]] = {}
    for r in rows:
        if r.status == NOT_SENT:
            reasons[r.reason or "unknown"] = reasons.get(r.reason or "unknown", 0) + 1
        if r.rating is not None:
            by_agent.setdefault(r.agent_id, []).append(r.rating)
    agent_ids = [a for a in by_agent if a is not None]
    found = await session.execute(select(t.User.id, t.User.name).where(t.User.id.in_(agent_ids)))
    names: dict[int, str] = {row.id: row.name for row in found}
    return CsatReport(
        sent=sent,
        not_sent=sum(reasons.values()),
        answered=len(ratings),
        response_rate=round(len(ratings) / sent, 4) if sent else None,
        average=_mean(ratings),
        median=float(statistics.median(ratings)) if ratings else None,
        satisfied_percent=round(100 * sum(1 for x in ratings if x >= 4) / len(ratings), 1)
        if ratings
        else None,
        distribution={str(n): ratings.count(n) for n in range(1, 6)},
        agents=[
            AgentCsat(
                agent_id=agent,
                name=names.get(agent) if agent is not None else None,
                answered=len(values),
                average=_mean(values),
                median=float(statistics.median(values)),
            )
            for agent, values in sorted(by_agent.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        ],
        not_sent_reasons=reasons,
    )


def _mean(values: list[int]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


async def surveys_of(session: AsyncSession, conversation_id: int) -> list[SurveyView]:
    rows = await session.scalars(
        select(t.CsatSurvey).where(t.CsatSurvey.conversation_id == conversation_id).order_by(t.CsatSurvey.id)
    )
    return [SurveyView.of(s) for s in rows]
