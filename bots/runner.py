"""Running bot flows: durable runs (``bot_runs``), stepped by jobs, never inside the webhook request.

``launch`` (called by a routing rule inside the receiving transaction) creates a run; ``hook`` (an
``InboundHook``) queues a step after the commit whenever a message arrives in a conversation with an
active run; ``step`` reads the contact's new messages, moves through the flow and submits the replies
as drafts through the outbox (origin ``bot``), so consent, window and quota apply — a refused reply is
recorded on the run. The run row and the replies commit together, so a step that crashed is simply
taken again, and ``resume`` re-queues every active run at start-up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.faq import best_answer
from bots.flow import Button, Flow, FlowInvalid, Handoff, State, load_flow
from inbox import tables as t
from inbox.buttons import chosen, render
from inbox.conversations import ConversationPatch, add_activity, apply_patch
from inbox.db import Database
from inbox.events import record_event
from inbox.folding import fold, words
from inbox.identities import InvalidAddress, normalize_email, normalize_phone
from inbox.inbound import InboundContext, conversation_labels
from inbox.jobs import JobQueue
from inbox.model import ConversationStatus, MessageKind, MessageStatus
from inbox.outbox import Draft, Outbox
from inbox.views import ConversationView, MessageView, dump

_LOGGER = logging.getLogger(__name__)

STEP_JOB = "bots.step"
ACTIVE = "active"
COMPLETED = "completed"
HANDED_OFF = "handed_off"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


# Run for every inbound message: built once (building a select cost more than running it).
_ACTIVE_RUN = select(t.BotRun.id).where(
    t.BotRun.conversation_id == bindparam("conversation_id"), t.BotRun.status == ACTIVE
)


class HumanQueue(Protocol):
    """Puts a conversation the bot let go of in front of people (the gateway passes assignment)."""

    async def __call__(self, session: AsyncSession, conversation: t.Conversation, now: datetime) -> Any: ...


def _set_bot_meta(conversation: t.Conversation, **values: Any) -> None:
    meta = dict(conversation.meta or {})
    meta["bot"] = {**(meta.get("bot") or {}), **values}
    conversation.meta = meta  # a new dict: JSON columns track assignment, not mutation


class BotRunner:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        outbox: Outbox,
        clock: Callable[[], datetime],
        *,
        humans: HumanQueue | None = None,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._outbox = outbox
        self._clock = clock
        self.humans = humans
        jobs.register(STEP_JOB, self.step)

    # -- starting and feeding runs (inside the receiving transaction) -------------------------------

    async def launch(
        self,
        session: AsyncSession,
        conversation: t.Conversation,
        flow_id: int,
        message_id: int,
        now: datetime,
    ) -> int | None:
        """Start ``flow_id`` in the conversation. None when the flow is missing, disabled or invalid, a
        bot is already talking here, or a bot handed this conversation to a human (it stays with them)."""
        row = await session.get(t.BotFlow, flow_id)
        if row is None or row.account_id != conversation.account_id or not row.enabled:
            return None
        busy = await session.scalar(
            select(t.BotRun.id).where(
                t.BotRun.conversation_id == conversation.id, t.BotRun.status.in_([ACTIVE, HANDED_OFF])
            )
        )
        if busy is not None:
            return None
        try:
            flow = load_flow(row.kind, row.definition)
        except FlowInvalid:
            _LOGGER.exception("bot flow %s is not valid any more", flow_id)
            return None
        run = t.BotRun(
            account_id=conversation.account_id,
            flow_id=row.id,
            conversation_id=conversation.id,
            status=ACTIVE,
            state=flow.start,
            entered=False,
            retries=0,
            # Message ids only grow: everything after this id is the contact's answers.
            last_message_id=message_id - 1 if flow.consume_trigger else message_id,
            steps=0,
            refusals=[],
            started_at=now,
            updated_at=now,
        )
        session.add(run)
        await session.flush()
        _set_bot_meta(conversation, status=ACTIVE, run_id=run.id, flow_id=row.id, name=row.name)
        await add_activity(session, conversation, f"Bot “{row.name}” took the conversation", now, None)
        await _record_run(session, "bot.started", conversation, run, now)
        return run.id

    async def hook(self, session: AsyncSession, ctx: InboundContext) -> None:
        """InboundHook: queue a step for the conversation's active run once the message committed."""
        if ((ctx.conversation.meta or {}).get("bot") or {}).get("status") != ACTIVE:
            return  # the run's start and end keep meta["bot"] current: no query for bot-less chats
        run_id = await session.scalar(_ACTIVE_RUN, {"conversation_id": ctx.conversation.id})
        if run_id is None:
            return

        async def queue_step() -> None:
            await self._jobs.enqueue(STEP_JOB, run_id)

        ctx.after_commit.append(queue_step)

    async def resume(self) -> int:
        """Queue a step for every active run (start-up: continue what a restart interrupted)."""
        async with self._db.read() as session:
            ids = list(await session.scalars(select(t.BotRun.id).where(t.BotRun.status == ACTIVE)))
        for run_id in ids:
            await self._jobs.enqueue(STEP_JOB, run_id)
        return len(ids)

    async def stop_flow(self, session: AsyncSession, flow_id: int, now: datetime, reason: str) -> int:
        """End every active run of a flow (it is being deleted) and give the conversations to people."""
        runs = list(
            await session.scalars(
                select(t.BotRun).where(t.BotRun.flow_id == flow_id, t.BotRun.status == ACTIVE)
            )
        )
        for run in runs:
            run.status, run.outcome, run.ended_at, run.updated_at = "stopped", reason, now, now
            conversation = await session.get(t.Conversation, run.conversation_id)
            if conversation is None:
                continue
            _set_bot_meta(conversation, status="stopped")
            await add_activity(session, conversation, f"The bot stopped: {reason}", now, None)
            if self.humans is not None:
                await self.humans(session, conversation, now)
        return len(runs)

    # -- a step (a job) ------------------------------------------------------------------------------

    async def step(self, run_id: int) -> None:
        """Send the current state's prompt if not sent yet, then answer each new message in order."""
        views: list[MessageView] = []
        async with self._db.write() as session:
            run = await session.scalar(
                select(t.BotRun).where(t.BotRun.id == run_id).with_for_update()  # no-op on SQLite
            )
            if run is None or run.status != ACTIVE:
                return
            turn = await _Turn.begin(session, run, self._clock())
            if turn is None:
                return
            if not run.entered:
                await turn.enter(run.state)
            incoming = await session.scalars(
                select(t.Message)
                .where(
                    t.Message.conversation_id == run.conversation_id,
                    t.Message.kind == MessageKind.INCOMING,
                    t.Message.id > run.last_message_id,
                )
                .order_by(t.Message.id)
            )
            for message in list(incoming):
                if run.status != ACTIVE:
                    break  # the rest is for the humans now
                run.last_message_id = message.id
                await turn.answer(message.text or "")
            run.steps += 1
            run.updated_at = turn.now
            refusals = list(run.refusals or [])
            for draft in _as_one(turn.outputs):
                view = await self._outbox.submit(draft, session=session)
                views.append(view)
                if view.status == MessageStatus.FAILED:
                    refusals.append(
                        {"message_id": view.id, "reason": view.reason, "detail": view.error_detail}
                    )
            run.refusals = refusals
            if turn.released and self.humans is not None:
                await self.humans(session, turn.conversation, turn.now)
        for view in views:
            await self._outbox.enqueue_if_queued(view)


class _Turn:
    """One step's walk through a flow; collects the drafts to send."""

    def __init__(
        self,
        session: AsyncSession,
        run: t.BotRun,
        flow: Flow,
        flow_name: str,
        conversation: t.Conversation,
        channel: t.Channel,
        contact: t.Contact,
        now: datetime,
    ) -> None:
        self.session = session
        self.run = run
        self.flow = flow
        self.flow_name = flow_name
        self.conversation = conversation
        self.channel = channel
        self.contact = contact
        self.now = now
        self.outputs: list[Draft] = []
        self.released = False  # the conversation went to the human queue

    @classmethod
    async def begin(cls, session: AsyncSession, run: t.BotRun, now: datetime) -> _Turn | None:
        conversation = await session.get(t.Conversation, run.conversation_id)
        row = await session.get(t.BotFlow, run.flow_id)
        if conversation is None:
            run.status, run.outcome, run.ended_at = "stopped", "conversation gone", now
            return None
        channel = await session.get(t.Channel, conversation.channel_id)
        contact = await session.get(t.Contact, conversation.contact_id)
        assert channel is not None and contact is not None
        flow: Flow | None = None
        if row is not None and row.enabled:
            try:
                flow = load_flow(row.kind, row.definition)
            except FlowInvalid:
                _LOGGER.exception("bot flow %s is not valid any more", run.flow_id)
        if flow is None or run.state not in flow.states:
            # The flow was disabled, deleted or edited under the run: people take over.
            stub = Flow(start="x", states={"x": State(end=True)})
            turn = cls(session, run, stub, row.name if row else "bot", conversation, channel, contact, now)
            await turn.handoff("the bot flow changed or was disabled", None)
            return turn
        return cls(session, run, flow, row.name if row else "bot", conversation, channel, contact, now)

    # -- moving through states -----------------------------------------------------------------------

    async def enter(self, name: str) -> None:
        for _ in range(len(self.flow.states) + 1):  # flows are checked for loops; this is a backstop
            state = self.flow.states[name]
            self.run.state, self.run.entered, self.run.retries = name, True, 0
            if state.say or state.buttons:
                self.say(state.say, [b.label for b in state.buttons])
            if state.handoff is not None:
                await self.handoff("the flow handed off", state.handoff)
                return
            if state.end:
                await self.complete(state.resolve)
                return
            if state.branch is not None:
                name = self._branch(state)
                continue
            if state.next is not None:
                name = state.next
                continue
            return  # waits for the contact
        await self.handoff("the flow did not come to rest", None)

    async def answer(self, text: str) -> None:
        said = words(text)
        if set(said) & {fold(w) for w in self.flow.handoff_words}:
            await self.handoff("the contact asked for a person", Handoff(message=self.flow.handoff_message))
            return
        state = self.flow.states[self.run.state]
        if state.buttons:
            index = chosen([b.label for b in state.buttons], text)
            if index is not None:
                button: Button = state.buttons[index]
                if state.save_as:
                    self._remember(state.save_as, button.value or button.label)
                await self.enter(button.next)
                return
        if state.capture is not None:
            value = _captured(state.capture.validate_as, text)
            if value is not None:
                self._remember(state.capture.attribute, value)
                await self.enter(state.capture.next)
                return
        padded = f" {' '.join(said)} "
        for intent in self.flow.intents:
            if any(f" {' '.join(words(k))} " in padded for k in intent.keywords if words(k)):
                await self.enter(intent.next)
                return
        if state.faq is not None:
            match = best_answer(state.faq.entries, text, state.faq.threshold)
            if match.confident and match.entry is not None:
                self.say(match.entry.answer, [])
                if state.faq.follow_up:
                    self.say(state.faq.follow_up, [])
                return
            await self.handoff("the FAQ had no confident answer", Handoff(message=self.flow.handoff_message))
            return
        self.run.retries += 1
        if self.run.retries > self.flow.max_retries:
            await self.handoff(
                "too many answers the bot did not understand", Handoff(message=self.flow.handoff_message)
            )
            return
        if state.capture is not None:
            self.say(state.capture.invalid, [])
        else:
            self.say(self.flow.invalid_choice, [b.label for b in state.buttons])

    def _branch(self, state: State) -> str:
        assert state.branch is not None
        attributes = self.contact.attributes or {}
        for case in state.branch.cases:
            actual = attributes.get(case.attribute)
            present = actual not in (None, "")
            if case.op == "exists" and present:
                return case.next
            if present and case.op == "equals" and fold(str(actual)) == fold(str(case.value)):
                return case.next
            if present and case.op == "contains" and fold(str(case.value)) in fold(str(actual)):
                return case.next
        return state.branch.otherwise

    def _remember(self, attribute: str, value: str) -> None:
        attributes = dict(self.contact.attributes or {})
        attributes[attribute] = value
        self.contact.attributes = attributes
        # The contact's own fields follow a validated capture when they are empty.
        if attribute == "email" and not self.contact.email:
            self.contact.email = value
        if attribute == "phone" and not self.contact.phone:
            self.contact.phone = value

    def say(self, text: str | None, labels: list[str]) -> None:
        if text:
            attributes = self.contact.attributes or {}
            text = _PLACEHOLDER.sub(lambda m: str(attributes.get(m[1], m[0])), text)
        body, buttons = render(self.channel.kind, text, labels)
        if body or buttons:
            self.outputs.append(
                Draft(conversation_id=self.conversation.id, text=body, buttons=buttons, origin="bot")
            )

    # -- endings -------------------------------------------------------------------------------------

    async def complete(self, resolve: bool) -> None:
        self.run.status, self.run.ended_at = COMPLETED, self.now
        self.run.outcome = "resolved" if resolve else "completed"
        await _record_run(self.session, "bot.completed", self.conversation, self.run, self.now)
        _set_bot_meta(self.conversation, status=COMPLETED)
        actor = f"Bot “{self.flow_name}”"
        if resolve:
            await apply_patch(
                self.session,
                self.conversation,
                ConversationPatch(status=ConversationStatus.RESOLVED),
                actor=actor,
                actor_id=None,
                now=self.now,
            )
        else:
            await add_activity(self.session, self.conversation, f"{actor} finished its flow", self.now, None)
            self.released = True

    async def handoff(self, reason: str, handoff: Handoff | None) -> None:
        """Stop the bot, move the conversation to the human queue and tell the agents on the stream."""
        if handoff is not None and handoff.message:
            self.say(handoff.message, [])
        self.run.status, self.run.outcome, self.run.ended_at = HANDED_OFF, reason, self.now
        _set_bot_meta(self.conversation, status=HANDED_OFF)
        actor = f"Bot “{self.flow_name}”"
        if handoff is not None and handoff.team_id is not None:
            team = await self.session.get(t.Team, handoff.team_id)
            if team is not None and team.account_id == self.conversation.account_id:
                await apply_patch(
                    self.session,
                    self.conversation,
                    ConversationPatch(team_id=team.id),
                    actor=actor,
                    actor_id=None,
                    now=self.now,
                )
        await add_activity(
            self.session,
            self.conversation,
            f"{actor} handed the conversation to a person: {reason}",
            self.now,
            None,
        )
        await self.session.flush()
        labels = await conversation_labels(self.session, self.conversation.id)
        await record_event(
            self.session,
            "conversation.handoff",
            account_id=self.conversation.account_id,
            now=self.now,
            inbox_id=self.conversation.inbox_id,
            conversation_id=self.conversation.id,
            payload={
                "conversation": dump(ConversationView.of(self.conversation, labels)),
                "run_id": self.run.id,
                "flow_id": self.run.flow_id,
                "reason": reason,
            },
        )
        self.released = True


async def _record_run(
    session: AsyncSession, type_: str, conversation: t.Conversation, run: t.BotRun, now: datetime
) -> None:
    """``bot.started`` / ``bot.completed``: a run began or ended by itself (reports count them)."""
    await record_event(
        session,
        type_,
        account_id=conversation.account_id,
        now=now,
        inbox_id=conversation.inbox_id,
        conversation_id=conversation.id,
        payload={"run_id": run.id, "flow_id": run.flow_id, "outcome": run.outcome},
    )


def _as_one(drafts: list[Draft]) -> list[Draft]:
    """A step's replies as one message: queued messages are dispatched concurrently, so separate ones
    could reach the contact out of order. Only the last prompt's buttons still apply."""
    if len(drafts) < 2:
        return drafts
    text = "\n\n".join(d.text for d in drafts if d.text)
    buttons = next((d.buttons for d in reversed(drafts) if d.buttons), ())
    return [Draft(conversation_id=drafts[0].conversation_id, text=text, buttons=buttons, origin="bot")]


def _captured(kind: str, text: str) -> str | None:
    """The normalized answer, or None when it is not a valid ``kind``."""
    value = text.strip()
    if not value:
        return None
    try:
        if kind == "email":
            return normalize_email(value)
        if kind == "phone":
            return normalize_phone(value)
    except InvalidAddress:
        return None
    return value[:1000]
