"""Report facts, written inside each write right after its events are inserted (``Database.on_events``).

Each event of a transaction is read in order and turned into facts (``report_facts``) with the state a
report needs between events (``report_conversations``: who has the conversation, since when the
contact waits). ``switchboard reports rebuild`` feeds the stored event log through the same code, so
the rebuilt facts are the facts live writing produced.

- ``opened``: a conversation began (not the resolved ones filtered mail opens).
- ``incoming`` / ``outgoing`` / ``refused``: a message from the contact; one sent (any origin); one the
  gate refused.
- ``first_response`` / ``next_response``: an agent's reply to a waiting contact, timed from the oldest
  unanswered contact message (or from the bot's hand-off, when a bot talked first).
- ``resolved`` (timed from the conversation's start; the agent who resolved it, else its assignee) /
  ``reopened``: a reopen voids the resolution it takes back, and a bot's resolution with it.
- ``bot_run``, ``bot_resolved``, ``handoff`` (with the flow); ``billable``: a billable conversation the
  quota counted on this message (voided when the quota releases it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.inbound import conversation_labels
from inbox.model import ConversationStatus, MessageKind, MessageStatus
from inbox.windows import is_metered
from reports import rollup
from routing.hours import BusinessHours, hours_of

HANDLED = frozenset(
    {
        "conversation.created",
        "conversation.updated",
        "conversation.handoff",
        "message.created",
        "message.updated",
        "bot.started",
        "bot.completed",
    }
)
RESOLUTIONS = ("resolved", "bot_resolved")

_FACT_TABLE: Table = t.ReportFact.__table__  # type: ignore[assignment]
_STATE_TABLE: Table = t.ReportConversation.__table__  # type: ignore[assignment]
_INSERT_FACTS = insert(_FACT_TABLE)
_INSERT_STATES = insert(_STATE_TABLE)
_UPDATE_STATES = (
    update(_STATE_TABLE)
    .where(_STATE_TABLE.c.conversation_id == bindparam("b_conversation_id"))
    .values(
        inbox_id=bindparam("b_inbox_id"),
        team_id=bindparam("b_team_id"),
        assignee_id=bindparam("b_assignee_id"),
        status=bindparam("b_status"),
        waiting_since=bindparam("b_waiting_since"),
        responded=bindparam("b_responded"),
        labels=bindparam("b_labels"),
    )
)
_CHANNEL_CONTEXT = (
    select(t.Channel.kind, t.Channel.config, t.Channel.account_id, t.Account.timezone, t.InboxRow.settings)
    .join(t.Account, t.Account.id == t.Channel.account_id)
    .join(t.InboxRow, t.InboxRow.id == t.Channel.inbox_id)
    .where(t.Channel.id == bindparam("channel_id"))
)
_BILLABLE_OF = select(t.BillableConversation.released_at).where(
    t.BillableConversation.first_message_id == bindparam("message_id")
)


@dataclass
class _State:
    """A ``report_conversations`` row being worked on in this transaction."""

    conversation_id: int
    account_id: int
    inbox_id: int
    channel_id: int
    channel_kind: str
    team_id: int | None
    assignee_id: int | None
    status: str
    created_at: datetime
    waiting_since: datetime | None
    responded: bool
    labels: list[str]


_STATE_FIELDS = [f.name for f in fields(_State)]
_UPDATED = (
    "conversation_id",
    "inbox_id",
    "team_id",
    "assignee_id",
    "status",
    "waiting_since",
    "responded",
    "labels",
)
_FACT_COLUMNS = [c.name for c in _FACT_TABLE.columns if c.name != "id"]


@dataclass(frozen=True)
class _Channel:
    kind: str
    metered: bool
    zone: ZoneInfo
    hours: BusinessHours | None


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def record_facts(session: AsyncSession, events: Sequence[t.Event]) -> None:
    """``Database.on_events`` hook: the facts of this transaction's events, in the same transaction."""
    relevant = [e for e in events if e.type in HANDLED and e.conversation_id is not None]
    if relevant:
        writer = _Writer(session)
        await writer.apply(relevant)


class _Writer:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._states: dict[int, _State] = {}
        self._new: set[int] = set()
        self._read: dict[int, tuple[Any, ...]] = {}  # each followed conversation's state as read
        self._channels: dict[int, _Channel] = {}
        self._facts: list[dict[str, Any]] = []
        self._voided: list[dict[str, Any]] = []  # stored facts this write voids
        # Who made this transaction's changes to a conversation (its activity lines' author).
        self._actors: dict[int, int] = {}

    async def apply(self, events: Sequence[t.Event]) -> None:
        ids = {e.conversation_id for e in events if e.conversation_id is not None}
        # Locked (PostgreSQL; SQLite writes one at a time): two writes about one conversation at once
        # (a resolve and a delivery receipt) would otherwise each write back what they read.
        rows = await self._session.execute(
            select(*[_STATE_TABLE.c[name] for name in _STATE_FIELDS])
            .where(_STATE_TABLE.c.conversation_id.in_(ids))
            .order_by(_STATE_TABLE.c.conversation_id)
            .with_for_update()
        )
        for row in rows:
            state = _State(*row)
            state.labels = list(state.labels or [])
            self._states[state.conversation_id] = state
            self._read[state.conversation_id] = tuple(getattr(state, f) for f in _STATE_FIELDS)
        # A transaction that opens a conversation may record events about it before its
        # conversation.created (a bot's start inside the inbound hooks): start from that event's view.
        for e in events:
            if e.type == "conversation.created" and e.conversation_id not in self._states:
                await self._start(e.account_id, e.payload["conversation"])
        for e in events:
            await self._event(e)
        await self._flush()

    # -- state ---------------------------------------------------------------------------------------

    async def _start(self, account_id: int, conv: dict[str, Any]) -> _State:
        channel = await self._channel(int(conv["channel_id"]))
        state = _State(
            conversation_id=int(conv["id"]),
            account_id=account_id,
            inbox_id=int(conv["inbox_id"]),
            channel_id=int(conv["channel_id"]),
            channel_kind=channel.kind,
            team_id=conv["team_id"],
            assignee_id=conv["assignee_id"],
            status=conv["status"],
            created_at=_when(conv["created_at"]),
            waiting_since=None,
            responded=False,
            labels=sorted(conv.get("labels") or []),
        )
        self._states[state.conversation_id] = state
        self._new.add(state.conversation_id)
        return state

    async def _state_of(self, e: t.Event) -> _State | None:
        assert e.conversation_id is not None
        state = self._states.get(e.conversation_id)
        if state is not None:
            return state
        # Only for conversations older than the reports (before a rebuild): follow them from now on.
        conv = (e.payload or {}).get("conversation")
        if conv is None:
            row = await self._session.get(t.Conversation, e.conversation_id)
            if row is None:
                return None
            conv = {
                "id": row.id,
                "inbox_id": row.inbox_id,
                "channel_id": row.channel_id,
                "team_id": row.team_id,
                "assignee_id": row.assignee_id,
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "labels": await conversation_labels(self._session, row.id),
            }
        return await self._start(e.account_id, conv)

    async def _channel(self, channel_id: int) -> _Channel:
        found = self._channels.get(channel_id)
        if found is None:
            row = (await self._session.execute(_CHANNEL_CONTEXT, {"channel_id": channel_id})).one()
            probe = t.Channel(kind=row.kind, config=row.config)
            found = _Channel(row.kind, is_metered(probe), ZoneInfo(row.timezone), hours_of(row.settings))
            self._channels[channel_id] = found
        return found

    # -- events --------------------------------------------------------------------------------------

    async def _event(self, e: t.Event) -> None:
        state = await self._state_of(e)
        if state is None:
            return
        payload = e.payload or {}
        kind = e.type
        if kind == "conversation.created":
            if state.status != ConversationStatus.RESOLVED:
                await self._fact("opened", state, state.created_at)
        elif kind in ("conversation.updated", "conversation.handoff"):
            await self._conversation(state, payload["conversation"], e.created_at)
            if kind == "conversation.handoff":
                await self._fact("handoff", state, e.created_at, flow_id=payload.get("flow_id"))
                if state.waiting_since is not None:  # from now on the contact waits for a person
                    state.waiting_since = e.created_at
        elif kind == "message.created":
            await self._message(state, payload["message"])
        elif kind == "message.updated":
            message = payload["message"]
            if message["kind"] == MessageKind.OUTGOING and message["status"] == MessageStatus.FAILED:
                await self._released(int(message["id"]))
        elif kind == "bot.started":
            await self._fact("bot_run", state, e.created_at, flow_id=payload.get("flow_id"))
        elif kind == "bot.completed" and payload.get("outcome") == "resolved":
            await self._fact("bot_resolved", state, e.created_at, flow_id=payload.get("flow_id"))

    async def _conversation(self, state: _State, conv: dict[str, Any], at: datetime) -> None:
        before = state.status
        state.status = conv["status"]
        state.team_id, state.assignee_id = conv["team_id"], conv["assignee_id"]
        state.inbox_id = int(conv["inbox_id"])
        if "labels" in conv:
            state.labels = sorted(conv["labels"])
        resolved = ConversationStatus.RESOLVED
        if state.status == resolved and before != resolved:
            # Credited to the person who resolved it, else (a bot, a rule) to its assignee.
            by = self._actors.get(state.conversation_id)
            await self._fact("resolved", state, at, agent_id=by, timed_from=state.created_at)
            state.waiting_since = None  # resolved unanswered: nobody will answer that wait
        elif before == resolved and state.status != resolved:
            await self._fact("reopened", state, at)
            await self._void(state.conversation_id, RESOLUTIONS)

    async def _message(self, state: _State, message: dict[str, Any]) -> None:
        kind, at = message["kind"], _when(message["created_at"])
        message_id = int(message["id"])
        if kind == MessageKind.INCOMING:
            await self._fact("incoming", state, at, message_id=message_id, origin=message["origin"])
            if state.waiting_since is None:
                state.waiting_since = at
            return
        if kind == MessageKind.ACTIVITY and message["author_id"] is not None:
            self._actors[state.conversation_id] = int(message["author_id"])
        if kind != MessageKind.OUTGOING:
            return  # notes and activity lines are not messages to anyone
        origin, author = message["origin"], message["author_id"]
        if message["status"] == MessageStatus.FAILED:
            await self._fact("refused", state, at, message_id=message_id, origin=origin, agent_id=author)
            return
        await self._fact("outgoing", state, at, message_id=message_id, origin=origin, agent_id=author)
        if origin == "agent" and state.waiting_since is not None:
            which = "next_response" if state.responded else "first_response"
            await self._fact(
                which, state, at, message_id=message_id, agent_id=author, timed_from=state.waiting_since
            )
            state.waiting_since, state.responded = None, True
        channel = await self._channel(state.channel_id)
        if channel.metered:
            found = (await self._session.execute(_BILLABLE_OF, {"message_id": message_id})).first()
            if found is not None:
                await self._fact("billable", state, at, message_id=message_id, origin=origin, agent_id=author)

    async def _released(self, message_id: int) -> None:
        """The message failed at the provider: its billable conversation may have been released."""
        found = (await self._session.execute(_BILLABLE_OF, {"message_id": message_id})).first()
        if found is None or found.released_at is None:
            return
        for fact in self._facts:
            if fact["message_id"] == message_id and fact["kind"] == "billable":
                fact["void"] = True
        await self._void_stored(_FACT_TABLE.c.message_id == message_id, _FACT_TABLE.c.kind == "billable")

    # -- facts ---------------------------------------------------------------------------------------

    async def _fact(
        self,
        kind: str,
        state: _State,
        at: datetime,
        *,
        message_id: int | None = None,
        origin: str | None = None,
        agent_id: int | None = None,
        flow_id: int | None = None,
        timed_from: datetime | None = None,
    ) -> None:
        channel = await self._channel(state.channel_id)
        seconds = business = None
        if timed_from is not None:
            seconds = max(0, int((at - timed_from).total_seconds()))
            business = seconds if channel.hours is None else channel.hours.open_seconds(timed_from, at)
        self._facts.append(
            {
                "account_id": state.account_id,
                "kind": kind,
                "day": _local_day(at, channel.zone),
                "at": at,
                "conversation_id": state.conversation_id,
                "message_id": message_id,
                "inbox_id": state.inbox_id,
                "channel_kind": state.channel_kind,
                "team_id": state.team_id,
                "agent_id": agent_id if agent_id is not None else state.assignee_id,
                "flow_id": flow_id,
                "origin": origin,
                "seconds": seconds,
                "business_seconds": business,
                "void": False,
            }
        )

    async def _void(self, conversation_id: int, kinds: Sequence[str]) -> None:
        for fact in self._facts:
            if fact["conversation_id"] == conversation_id and fact["kind"] in kinds:
                fact["void"] = True
        await self._void_stored(
            _FACT_TABLE.c.conversation_id == conversation_id, _FACT_TABLE.c.kind.in_(kinds)
        )

    async def _void_stored(self, *where: ColumnElement[bool]) -> None:
        """Void stored facts, keeping them to take out of the roll-ups."""
        c = _FACT_TABLE.c
        found = await self._session.execute(
            select(c.id, *[c[name] for name in _FACT_COLUMNS]).where(*where, c.void.is_(False))
        )
        rows = [dict(row) for row in found.mappings()]
        if rows:
            self._voided.extend(rows)
            await self._session.execute(
                update(_FACT_TABLE).where(c.id.in_([row["id"] for row in rows])).values(void=True)
            )

    async def _flush(self) -> None:
        deltas = rollup.Deltas()
        for fact in self._voided:
            deltas.add(fact, ["", *self._labels_read(fact["conversation_id"])], -1)
        # Before this write's facts are stored: the stored ones move between the labels' rows.
        await rollup.move_labels(
            self._session,
            deltas,
            {i: (self._labels_read(i), s.labels) for i, s in self._states.items() if i not in self._new},
        )
        replies: dict[tuple[int, int, date], dict[str, Any]] = {}
        if self._facts:
            await self._session.execute(_INSERT_FACTS, self._facts)
            for fact in self._facts:
                if fact["void"]:
                    continue
                conversation_id = fact["conversation_id"]
                deltas.add(fact, ["", *self._states[conversation_id].labels])
                if fact["kind"] == "outgoing" and fact["origin"] == "agent" and fact["agent_id"] is not None:
                    replies.setdefault((conversation_id, fact["agent_id"], fact["day"]), fact)
        await deltas.write(self._session)
        await rollup.add_agent_days(self._session, replies, {i: s.labels for i, s in self._states.items()})
        new = [vars(self._states[i]) for i in self._new]
        if new:
            await self._session.execute(_INSERT_STATES, new)
        changed = [
            {f"b_{k}": getattr(state, k) for k in _UPDATED}
            for i, state in self._states.items()
            if i not in self._new and self._read.get(i) != tuple(getattr(state, f) for f in _STATE_FIELDS)
        ]
        if changed:
            await self._session.execute(_UPDATE_STATES, changed)

    def _labels_read(self, conversation_id: int) -> list[str]:
        """The conversation's labels as the roll-ups hold them at this write's start."""
        read = self._read.get(conversation_id)
        return list(read[_STATE_FIELDS.index("labels")]) if read is not None else []


def _local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()
