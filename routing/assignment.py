"""Automatic assignment: round robin or least-busy among online members, within per-agent capacity.

A policy belongs to a team (preferred when the conversation has one) or an inbox. When every
candidate is full the conversation waits in ``assignment_queue`` and is assigned, first come first
served, as capacity frees (``drain``: run as a job when a conversation is resolved, snoozed or
reassigned, or an agent comes online). Counting happens inside the write transaction with the policy
row locked, so two processes never overfill an agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.access import ADMIN_ROLES
from inbox.conversations import ConversationPatch, apply_patch
from inbox.db import Database
from inbox.events import EventBus
from inbox.jobs import JobQueue
from inbox.model import ConversationStatus

_LOGGER = logging.getLogger(__name__)

DRAIN_JOB = "routing.drain"
ACTOR = "Auto-assignment"
# Conversations that take up an agent's capacity.
BUSY_STATUSES = (ConversationStatus.OPEN, ConversationStatus.PENDING)


# Run for every inbound message: built once (building a select cost more than running it).
# Both candidates in one statement; a NULL team_id matches no row.
_POLICIES = (
    select(t.AssignmentPolicy)
    .where(
        t.AssignmentPolicy.enabled.is_(True),
        or_(
            t.AssignmentPolicy.team_id == bindparam("team_id"),
            t.AssignmentPolicy.inbox_id == bindparam("inbox_id"),
        ),
    )
    .order_by(t.AssignmentPolicy.id)
)


async def policy_for(session: AsyncSession, conversation: t.Conversation) -> t.AssignmentPolicy | None:
    """The team's policy when the conversation has a team with one, else the inbox's (enabled only)."""
    policies = list(
        await session.scalars(_POLICIES, {"team_id": conversation.team_id, "inbox_id": conversation.inbox_id})
    )
    if conversation.team_id is not None:
        for policy in policies:
            if policy.team_id == conversation.team_id:
                return policy
    return next((p for p in policies if p.inbox_id == conversation.inbox_id), None)


async def _lock(session: AsyncSession, policy: t.AssignmentPolicy) -> None:
    # PostgreSQL: serialize pickers of one policy; SQLite writers are serialized already.
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            select(t.AssignmentPolicy.id).where(t.AssignmentPolicy.id == policy.id).with_for_update()
        )
        await session.refresh(policy)


async def _candidates(
    session: AsyncSession, policy: t.AssignmentPolicy, conversation: t.Conversation
) -> list[t.User]:
    """Online members of the policy's team or inbox who may see the conversation's inbox."""
    if policy.team_id is not None:
        member_ids = select(t.TeamMember.user_id).where(t.TeamMember.team_id == policy.team_id)
    else:
        member_ids = select(t.InboxMember.user_id).where(t.InboxMember.inbox_id == policy.inbox_id)
    inbox_member = select(t.InboxMember.user_id).where(t.InboxMember.inbox_id == conversation.inbox_id)
    rows = await session.scalars(
        select(t.User)
        .where(
            t.User.id.in_(member_ids),
            t.User.account_id == conversation.account_id,
            t.User.availability == "online",
            t.User.id.in_(inbox_member) | t.User.role.in_(list(ADMIN_ROLES)),
        )
        .order_by(t.User.id)
    )
    return list(rows)


async def _loads(session: AsyncSession, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = await session.execute(
        select(t.Conversation.assignee_id, func.count())
        .where(t.Conversation.assignee_id.in_(user_ids), t.Conversation.status.in_(list(BUSY_STATUSES)))
        .group_by(t.Conversation.assignee_id)
    )
    loads = {uid: 0 for uid in user_ids}
    for uid, count in rows.all():
        loads[uid] = count
    return loads


def capacity_of(policy: t.AssignmentPolicy, user_id: int) -> int:
    return int((policy.agent_capacity or {}).get(str(user_id), policy.capacity))


async def pick_agent(
    session: AsyncSession, policy: t.AssignmentPolicy, conversation: t.Conversation
) -> int | None:
    """The agent to assign next, or None when every online member is at capacity."""
    users = await _candidates(session, policy, conversation)
    loads = await _loads(session, [u.id for u in users])
    free = [u.id for u in users if loads[u.id] < capacity_of(policy, u.id)]
    if not free:
        return None
    # Rotate so the agent after the last one picked comes first: round robin, and fair ties for least-busy.
    cursor = policy.cursor_user_id or 0
    rotated = [u for u in free if u > cursor] + [u for u in free if u <= cursor]
    if policy.strategy == "least_busy":
        return min(rotated, key=lambda u: loads[u])  # min keeps the first of equals: the rotation order
    return rotated[0]


class Assigner:
    """Assigns conversations by policy and drains the waiting queue."""

    def __init__(self, db: Database, jobs: JobQueue, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._jobs = jobs
        self._clock = clock
        self._pending: set[int] = set()  # accounts with a drain queued and not yet started
        self._inbox_accounts: dict[int, int] = {}
        jobs.register(DRAIN_JOB, self._drain_job)

    async def assign(self, session: AsyncSession, conversation: t.Conversation, now: datetime) -> int | None:
        """Assign an unassigned open conversation, or put it in the queue. Returns the agent's id."""
        if conversation.assignee_id is not None or conversation.status != ConversationStatus.OPEN:
            return conversation.assignee_id
        policy = await policy_for(session, conversation)
        if policy is None:
            return None
        await _lock(session, policy)
        user_id = await pick_agent(session, policy, conversation)
        waiting = await session.get(t.AssignmentWait, conversation.id)
        if user_id is None:
            if waiting is None:
                session.add(
                    t.AssignmentWait(
                        conversation_id=conversation.id,
                        account_id=conversation.account_id,
                        policy_id=policy.id,
                        created_at=now,
                    )
                )
            elif waiting.policy_id != policy.id:
                waiting.policy_id = policy.id
            await session.flush()
            return None
        if waiting is not None:
            await session.delete(waiting)
        policy.cursor_user_id = user_id
        await apply_patch(
            session, conversation, ConversationPatch(assignee_id=user_id), actor=ACTOR, actor_id=None, now=now
        )
        return user_id

    async def release_if_offline(
        self, session: AsyncSession, conversation: t.Conversation, now: datetime
    ) -> bool:
        """Unassign a conversation whose agent is offline when its policy says so (then it is re-assigned)."""
        if conversation.assignee_id is None:
            return False
        agent = await session.get(t.User, conversation.assignee_id)
        if agent is None or agent.availability != "offline":
            return False
        policy = await policy_for(session, conversation)
        if policy is None or not policy.release_on_offline:
            return False
        await apply_patch(
            session,
            conversation,
            ConversationPatch(assignee_id=None),
            actor=f"{ACTOR} ({agent.name} is offline)",
            actor_id=None,
            now=now,
        )
        return True

    async def _drain_job(self, account_id: int) -> None:
        await self.drain(account_id)

    async def drain(self, account_id: int) -> int:
        """Assign waiting conversations while someone has capacity, oldest first. Returns how many."""
        self._pending.discard(account_id)
        assigned = 0
        now = self._clock()
        async with self._db.write() as session:
            waits = list(
                await session.scalars(
                    select(t.AssignmentWait)
                    .where(t.AssignmentWait.account_id == account_id)
                    .order_by(t.AssignmentWait.created_at, t.AssignmentWait.conversation_id)
                )
            )
            full: set[int] = set()
            for wait in waits:
                if wait.policy_id in full:
                    continue
                conversation = await session.get(t.Conversation, wait.conversation_id)
                if (
                    conversation is None
                    or conversation.status != ConversationStatus.OPEN
                    or conversation.assignee_id is not None
                ):
                    await session.delete(wait)
                    continue
                policy = await policy_for(session, conversation)
                if policy is None:
                    await session.delete(wait)
                    continue
                if policy.id in full:
                    continue
                if await self.assign(session, conversation, now) is None:
                    full.add(policy.id)
                else:
                    assigned += 1
        return assigned

    async def request_drain(self, account_id: int) -> None:
        if account_id in self._pending:
            return
        self._pending.add(account_id)
        await self._jobs.enqueue(DRAIN_JOB, account_id)

    async def account_of_inbox(self, inbox_id: int) -> int | None:
        if inbox_id not in self._inbox_accounts:
            async with self._db.read() as session:
                account_id = await session.scalar(
                    select(t.InboxRow.account_id).where(t.InboxRow.id == inbox_id)
                )
            if account_id is None:
                return None
            self._inbox_accounts[inbox_id] = account_id
        return self._inbox_accounts[inbox_id]

    async def waiting(self, account_id: int) -> int:
        async with self._db.read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(t.AssignmentWait)
                .where(t.AssignmentWait.account_id == account_id)
            )
            return int(count or 0)

    async def forget(self, session: AsyncSession, conversation_id: int) -> None:
        await session.execute(
            delete(t.AssignmentWait).where(t.AssignmentWait.conversation_id == conversation_id)
        )


class QueueWatcher:
    """Listens to the event stream and asks for a drain when capacity may have freed.

    Capacity frees when a conversation is resolved, snoozed or handed to someone else; the watcher
    cannot tell a change from a repeat, so it asks on every such update — a drain with an empty queue
    is one query. One pending drain per account at a time.
    """

    def __init__(self, bus: EventBus, assigner: Assigner) -> None:
        self._bus = bus
        self._assigner = assigner
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="assignment-queue-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        sub = self._bus.subscribe(None)
        try:
            while True:
                if sub.overflowed.is_set() and sub.queue.empty():
                    # Fell too far behind and was dropped by the bus: listen again (a drain is cheap).
                    sub = self._bus.subscribe(None)
                event = await sub.queue.get()
                if event.type != "conversation.updated":
                    continue
                conversation = event.body["data"].get("conversation") or {}
                if conversation.get("status") == "open" and conversation.get("assignee_id") is None:
                    continue  # nothing freed
                await self._assigner.request_drain(event.account_id)
        finally:
            self._bus.unsubscribe(sub)
