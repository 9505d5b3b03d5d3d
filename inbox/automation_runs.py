"""Automation runs: started by events in the event's own write, stepped by a sweeper on a clock.

``AutomationTriggers`` is a ``Database.on_events`` hook: a tag change, a contact event or an inbound
keyword creates a run row (``active``, due now) in the transaction that recorded the event, so a
committed trigger always has its run. A business message arms a no-reply run (``armed``, due in N
hours) that the contact's answer deletes. ``AutomationRunner.run_due`` takes every due run through its
steps until a wait (which sets ``run_at``: the durable timer) or the end, storing each step's outcome;
a send goes through the outbox gate (origin ``automation``, business-initiated), and a refusal is the
step's outcome and an error on the run and the automation. Runs are taken in batches, each in one
transaction with the messages they send, so a crash repeats nothing and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.automations import (
    AssignStep,
    BotStep,
    ConditionStep,
    EventTrigger,
    KeywordTrigger,
    NoReplyTrigger,
    SendStep,
    Step,
    TagStep,
    WaitStep,
    parse_steps,
    parse_trigger,
)
from inbox.broadcasts import personalize
from inbox.conditions import holds
from inbox.conversations import ConversationPatch, apply_patch, find_or_open_conversation
from inbox.db import Clock, Database
from inbox.events import record_event
from inbox.folding import fold
from inbox.model import MessageStatus, TemplateRef
from inbox.outbox import Draft, Outbox
from inbox.tags import add_tag, remove_tag, tags_of
from inbox.views import MessageView

_LOGGER = logging.getLogger(__name__)

ARMED, ACTIVE, DONE, CANCELED = "armed", "active", "done", "canceled"
BATCH = 50  # runs per write transaction
CACHE_SECONDS = 2.0  # how stale another process's view of an account's automations may be
# Recorded by the runner (on the stream, and for outgoing webhooks): a run ended; a step was refused.
RUN_FINISHED = "automation.run_finished"
STEP_REFUSED = "automation.step_refused"
_TRIGGER_EVENTS = frozenset({"contact.tag_added", "contact.tag_removed", "contact.event", "message.created"})


class FlowStarter(Protocol):
    """Starts a bot flow in a conversation (bots.runner.BotRunner.launch); the run id or None."""

    async def __call__(
        self,
        session: AsyncSession,
        conversation: t.Conversation,
        flow_id: int,
        message_id: int,
        now: datetime,
    ) -> int | None: ...


@dataclass(frozen=True)
class _Auto:
    id: int
    trigger_type: str
    trigger_key: str | None
    trigger: Any


class AutomationTriggers:
    """``Database.on_events``: a run for each active automation an event fires, written with the event."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[float, list[_Auto]]] = {}
        # The event rows whose transaction started runs (an after-commit callback pokes the runner).
        self._marked: weakref.WeakSet[t.Event] = weakref.WeakSet()

    def changed(self, account_id: int) -> None:
        """The account's automations changed in this process: read them again on the next event."""
        self._cache.pop(account_id, None)

    def fired(self, events: Sequence[t.Event]) -> bool:
        return bool(events) and events[-1] in self._marked

    async def _automations(self, session: AsyncSession, account_id: int) -> list[_Auto]:
        cached = self._cache.get(account_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        rows = await session.execute(
            select(t.Automation.id, t.Automation.trigger_type, t.Automation.trigger_key, t.Automation.trigger)
            .where(t.Automation.account_id == account_id, t.Automation.active.is_(True))
            .order_by(t.Automation.id)
        )
        autos = [_Auto(i, ty, key, parse_trigger(raw)) for i, ty, key, raw in rows]
        self._cache[account_id] = (time.monotonic(), autos)
        return autos

    async def __call__(self, session: AsyncSession, events: Sequence[t.Event]) -> None:
        started = False
        for event in events:
            if event.type not in _TRIGGER_EVENTS:
                continue
            autos = await self._automations(session, event.account_id)
            if autos:
                started = await self._fire(session, event, autos) or started
        if started:
            self._marked.add(events[-1])

    async def _fire(self, session: AsyncSession, event: t.Event, autos: list[_Auto]) -> bool:
        payload, now = event.payload, event.created_at
        if event.type in ("contact.tag_added", "contact.tag_removed"):
            kind = event.type.removeprefix("contact.")
            chosen = [a for a in autos if a.trigger_type == kind and a.trigger_key == payload.get("tag")]
            return await _start_all(session, chosen, int(payload["contact_id"]), None, event, {}, now)
        if event.type == "contact.event":
            chosen = [
                a
                for a in autos
                if a.trigger_type == "event"
                and a.trigger_key == payload.get("type")
                and isinstance(a.trigger, EventTrigger)
                and a.trigger.product_id in (None, payload.get("product_id"))
            ]
            if not chosen:
                return False
            row = await session.get(t.ContactEvent, payload["event_id"])
            data = dict(row.data or {}) if row is not None else {}
            return await _start_all(session, chosen, int(payload["contact_id"]), None, event, data, now)
        message = payload.get("message") or {}
        if event.conversation_id is None:
            return False
        no_reply = [a for a in autos if isinstance(a.trigger, NoReplyTrigger)]
        if message.get("kind") == "incoming":
            if no_reply:  # the contact answered: the no-reply timers of this conversation are off
                await session.execute(
                    delete(t.AutomationRun).where(
                        t.AutomationRun.conversation_id == event.conversation_id,
                        t.AutomationRun.status == ARMED,
                    )
                )
            said = fold(message.get("text") or "")
            chosen = [
                a
                for a in autos
                if isinstance(a.trigger, KeywordTrigger)
                and a.trigger_key == said
                and a.trigger.channel_id in (None, message.get("channel_id"))
            ]
            if not chosen:
                return False
            conversation = await session.get(t.Conversation, event.conversation_id)
            if conversation is None:
                return False
            return await _start_all(session, chosen, conversation.contact_id, conversation.id, event, {}, now)
        sent_by_business = (
            message.get("kind") == "outgoing"
            and message.get("origin") != "automation"  # its own follow-up must not re-arm it
            and message.get("status") != MessageStatus.FAILED.value
        )
        if sent_by_business and no_reply:
            conversation = await session.get(t.Conversation, event.conversation_id)
            if conversation is not None:
                await _arm(session, no_reply, conversation, message.get("channel_id"), event, now)
        return False


async def _start_all(
    session: AsyncSession,
    autos: list[_Auto],
    contact_id: int,
    conversation_id: int | None,
    event: t.Event,
    data: dict[str, Any],
    now: datetime,
) -> bool:
    started = False
    for auto in autos:
        busy = await session.scalar(
            select(t.AutomationRun.id)
            .where(
                t.AutomationRun.contact_id == contact_id,
                t.AutomationRun.automation_id == auto.id,
                t.AutomationRun.status == ACTIVE,
            )
            .limit(1)
        )
        if busy is not None:
            continue  # a contact goes through an automation once at a time
        session.add(_new_run(auto, event, contact_id, conversation_id, ACTIVE, now, data))
        await session.execute(
            update(t.Automation).where(t.Automation.id == auto.id).values(runs=t.Automation.runs + 1)
        )
        started = True
    if started:
        await session.flush()
    return started


def _new_run(
    auto: _Auto,
    event: t.Event,
    contact_id: int,
    conversation_id: int | None,
    status: str,
    run_at: datetime,
    data: dict[str, Any],
) -> t.AutomationRun:
    return t.AutomationRun(
        automation_id=auto.id,
        account_id=event.account_id,
        contact_id=contact_id,
        conversation_id=conversation_id,
        status=status,
        position=0,
        run_at=run_at,
        trigger_event_id=event.id,
        data=data,
        errors=0,
        created_at=event.created_at,
        updated_at=event.created_at,
    )


async def _arm(
    session: AsyncSession,
    autos: list[_Auto],
    conversation: t.Conversation,
    channel_id: object,
    event: t.Event,
    now: datetime,
) -> None:
    """Set (or push back) each no-reply automation's timer for this conversation."""
    for auto in autos:
        assert isinstance(auto.trigger, NoReplyTrigger)
        if auto.trigger.channel_id not in (None, channel_id):
            continue
        due = now + timedelta(hours=auto.trigger.hours)
        moved = await session.execute(
            update(t.AutomationRun)
            .where(
                t.AutomationRun.automation_id == auto.id,
                t.AutomationRun.conversation_id == conversation.id,
                t.AutomationRun.status == ARMED,
            )
            .values(run_at=due, updated_at=now, trigger_event_id=event.id)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            session.add(_new_run(auto, event, conversation.contact_id, conversation.id, ARMED, due, {}))
    await session.flush()


# -- running ------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    outcome: str  # done, waiting, stopped, skipped, refused
    reason: str | None = None
    detail: str | None = None
    message_id: int | None = None
    wait: timedelta | None = None


class AutomationRunner:
    """Takes due runs through their steps: ``run_due`` now, ``serve`` for ever (the sweeper)."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        *,
        start_flow: FlowStarter | None = None,
        queue_flow: Callable[[int], Awaitable[None]] | None = None,
        interval: float = 30.0,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._clock = clock
        self._start_flow = start_flow
        self._queue_flow = queue_flow
        self._interval = interval
        self.triggers = AutomationTriggers()
        self._poked: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def committed(self, events: Sequence[t.Event]) -> None:
        """After-commit callback: a commit that started runs has them taken at once."""
        if self.triggers.fired(events):
            self.poke()

    def poke(self) -> None:
        """Run what is due soon, in this process, one pass at a time."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the sweeper finds them
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="automations")

    async def _drain(self) -> None:
        while True:
            self._again = False
            try:
                await self.run_due()
            except Exception:
                _LOGGER.exception("running due automation steps failed")
            if not self._again:
                return

    async def settle(self) -> int:
        """Let a pass started by a commit finish, then run what is due (tests and benchmarks)."""
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        return await self.run_due()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def serve(self) -> None:
        """The sweeper: run what is due, then sleep until the next timer (at most ``interval``)."""
        while True:
            await self.run_due()
            async with self._db.read() as session:
                soonest = await session.scalar(
                    select(func.min(t.AutomationRun.run_at)).where(
                        t.AutomationRun.status.in_([ARMED, ACTIVE])
                    )
                )
            delay = self._interval
            if soonest is not None:
                delay = max(0.05, min(delay, (soonest - self._clock()).total_seconds()))
            await asyncio.sleep(delay)

    async def run_due(self) -> int:
        """Take every run due by the clock through its steps; the number of runs advanced."""
        advanced = 0
        while True:
            now = self._clock()
            async with self._db.read() as session:
                ids = list(
                    await session.scalars(
                        select(t.AutomationRun.id)
                        .where(t.AutomationRun.status.in_([ARMED, ACTIVE]), t.AutomationRun.run_at <= now)
                        .order_by(t.AutomationRun.run_at, t.AutomationRun.id)
                        .limit(BATCH)
                    )
                )
            if not ids:
                return advanced
            try:
                n = await self._batch(ids, now)
            except Exception:
                _LOGGER.exception("automation runs %s failed together; taking them one by one", ids)
                n = 0
                for run_id in ids:
                    try:
                        n += await self._batch([run_id], now)
                    except Exception:
                        _LOGGER.exception("automation run %s failed", run_id)
                        await self._give_up(run_id, now)
            advanced += n
            if n == 0 and len(ids) < BATCH:
                return advanced

    async def _give_up(self, run_id: int, now: datetime) -> None:
        async with self._db.write() as session:
            run = await session.get(t.AutomationRun, run_id)
            if run is None:
                return
            session.add(
                t.AutomationRunStep(
                    run_id=run.id,
                    position=run.position,
                    type="error",
                    outcome="failed",
                    reason="internal_error",
                    detail="the step failed unexpectedly; see the server log",
                    at=now,
                )
            )
            run.status, run.run_at, run.finished_at, run.updated_at = DONE, None, now, now
            run.errors += 1
            await _count_error(session, run.automation_id, now)

    async def _batch(self, ids: list[int], now: datetime) -> int:
        sent: list[MessageView] = []
        flows: list[int] = []
        advanced = 0
        async with self._db.write() as session:
            steps_of: dict[int, tuple[t.Automation, list[Step]] | None] = {}
            for run_id in ids:
                run = await session.get(t.AutomationRun, run_id, with_for_update={"skip_locked": True})
                if run is None or run.status not in (ARMED, ACTIVE) or run.run_at is None or run.run_at > now:
                    continue  # another pass took it
                if run.automation_id not in steps_of:
                    automation = await session.get(t.Automation, run.automation_id)
                    steps_of[run.automation_id] = (
                        (automation, parse_steps(automation.steps)) if automation is not None else None
                    )
                found = steps_of[run.automation_id]
                advanced += 1
                if found is None or not found[0].active:
                    run.status, run.run_at, run.finished_at, run.updated_at = CANCELED, None, now, now
                    continue
                await self._advance(session, run, found[0], found[1], now, sent, flows)
        for view in sent:  # delivery starts once the batch committed (else redispatch_pending at start)
            await self._outbox.enqueue_if_queued(view)
        if self._queue_flow is not None:
            for flow_run in flows:
                await self._queue_flow(flow_run)
        return advanced

    async def _advance(
        self,
        session: AsyncSession,
        run: t.AutomationRun,
        automation: t.Automation,
        steps: list[Step],
        now: datetime,
        sent: list[MessageView],
        flows: list[int],
    ) -> None:
        if run.status == ARMED:  # no reply for the hours: the run starts now
            run.status = ACTIVE
            await session.execute(
                update(t.Automation)
                .where(t.Automation.id == automation.id)
                .values(runs=t.Automation.runs + 1)
            )
        contact = await session.get(t.Contact, run.contact_id)
        # Waits count from when the run was due, not from when a busy sweeper got to it: a run keeps its
        # schedule whatever the lag (and tests on an injected clock do not race the sweeper).
        due = min(run.run_at or now, now)
        run.updated_at, run.run_at = now, None
        while contact is not None and run.position < len(steps):
            position = run.position
            step = steps[position]
            result = await self._take(session, run, contact, step, now, sent, flows)
            if result.wait is not None:
                result.detail = f"until {(due + result.wait).isoformat()}"
            session.add(
                t.AutomationRunStep(
                    run_id=run.id,
                    position=position,
                    type=step.type,
                    outcome=result.outcome,
                    reason=result.reason,
                    detail=result.detail,
                    message_id=result.message_id,
                    at=now,
                )
            )
            run.position = len(steps) if result.outcome == "stopped" else position + 1
            if result.outcome == "refused":
                run.errors += 1
                await _count_error(session, automation.id, now)  # in SQL: other runners count too
                await _record(
                    session,
                    STEP_REFUSED,
                    run,
                    now,
                    position=position,
                    reason=result.reason,
                    detail=result.detail,
                    message_id=result.message_id,
                )
            if result.wait is not None and run.position < len(steps):
                run.run_at = due + result.wait
                return
        run.status, run.finished_at = DONE, now
        await _record(session, RUN_FINISHED, run, now, errors=run.errors)

    async def _take(
        self,
        session: AsyncSession,
        run: t.AutomationRun,
        contact: t.Contact,
        step: Step,
        now: datetime,
        sent: list[MessageView],
        flows: list[int],
    ) -> _Outcome:
        if isinstance(step, WaitStep):
            return _Outcome("waiting", wait=step.duration)
        if isinstance(step, ConditionStep):
            tags = {x.tag for x in await tags_of(session, contact.id)}
            if holds(step.condition, data=run.data, attributes=contact.attributes, tags=tags):
                return _Outcome("done", detail="the condition holds")
            return _Outcome("stopped", detail="the condition does not hold: the run ends here")
        if isinstance(step, TagStep):
            change = add_tag if step.type == "add_tag" else remove_tag
            if await change(session, contact, step.tag, source="manual", now=now):
                return _Outcome("done", detail=step.tag)
            return _Outcome("skipped", detail=f"{step.tag}: nothing to change")
        if isinstance(step, SendStep):
            return await self._send(session, run, contact, step, now, sent)
        conversation = await _conversation_of(session, run)
        if conversation is None:
            return _Outcome("skipped", detail="the contact has no conversation yet")
        if isinstance(step, AssignStep):
            patch = ConversationPatch()
            if step.user_id is not None:
                patch.assignee_id = step.user_id
            if step.team_id is not None:
                patch.team_id = step.team_id
            await apply_patch(session, conversation, patch, actor="Automation", actor_id=None, now=now)
            return _Outcome("done", detail=f"conversation {conversation.id}")
        assert isinstance(step, BotStep)
        last = await session.scalar(
            select(func.max(t.Message.id)).where(t.Message.conversation_id == conversation.id)
        )
        flow_run = None
        if self._start_flow is not None and last is not None:
            flow_run = await self._start_flow(session, conversation, step.flow_id, last, now)
        if flow_run is None:
            return _Outcome("skipped", detail="the flow is off or a bot already has this conversation")
        flows.append(flow_run)
        return _Outcome("done", detail=f"bot run {flow_run}")

    async def _send(
        self,
        session: AsyncSession,
        run: t.AutomationRun,
        contact: t.Contact,
        step: SendStep,
        now: datetime,
        sent: list[MessageView],
    ) -> _Outcome:
        channel = await session.get(t.Channel, step.channel_id)
        if channel is None or channel.account_id != run.account_id:
            return _Outcome("refused", reason="channel_gone", detail=f"channel {step.channel_id} is gone")
        address = await session.scalar(
            select(func.min(t.ContactIdentity.address)).where(
                t.ContactIdentity.contact_id == contact.id, t.ContactIdentity.kind == channel.kind
            )
        )
        if address is None:
            return _Outcome(
                "refused", reason="no_address", detail=f"the contact has no {channel.kind} address"
            )
        conversation, _ = await find_or_open_conversation(session, channel, contact.id, address, now)
        template = None
        if step.template is not None:
            template = TemplateRef(
                name=step.template.name,
                language=step.template.language,
                params=tuple(personalize(p, contact) for p in step.template.params),
            )
        draft = Draft(
            conversation_id=conversation.id,
            text=personalize(step.text, contact) if step.text else None,
            template=template,
            origin="automation",
            business_initiated=True,
        )
        view = await self._outbox.submit(draft, session=session)
        run.conversation_id = conversation.id
        if view.status == MessageStatus.FAILED:
            return _Outcome("refused", reason=view.reason, detail=view.error_detail, message_id=view.id)
        sent.append(view)
        return _Outcome("done", detail=f"message {view.id} queued", message_id=view.id)


async def _conversation_of(session: AsyncSession, run: t.AutomationRun) -> t.Conversation | None:
    """The run's conversation, else the contact's latest one."""
    if run.conversation_id is not None:
        found = await session.get(t.Conversation, run.conversation_id)
        if found is not None:
            return found
    latest: t.Conversation | None = await session.scalar(
        select(t.Conversation)
        .where(t.Conversation.contact_id == run.contact_id)
        .order_by(t.Conversation.last_activity_at.desc(), t.Conversation.id.desc())
        .limit(1)
    )
    if latest is not None:
        run.conversation_id = latest.id
    return latest


async def _record(
    session: AsyncSession, type_: str, run: t.AutomationRun, now: datetime, **extra: Any
) -> None:
    await record_event(
        session,
        type_,
        account_id=run.account_id,
        now=now,
        payload={
            "automation_id": run.automation_id,
            "run_id": run.id,
            "contact_id": run.contact_id,
            "conversation_id": run.conversation_id,
            **extra,
        },
    )


async def _count_error(session: AsyncSession, automation_id: int, now: datetime) -> None:
    await session.execute(
        update(t.Automation)
        .where(t.Automation.id == automation_id)
        .values(errors=t.Automation.errors + 1, last_error_at=now)
    )
