"""The routing hook: on every inbound message, run the account's rules in order, record each firing,
send the out-of-hours reply, and assign the conversation.

Runs inside the receiving transaction (``InboundHook``). Conditions see a snapshot taken before any
rule acted and each rule fires at most once per message, so rules caused by a rule's own actions never
loop; replies are submitted after the commit and at most once per conversation per period, so two
auto-responders cannot ping-pong either.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.conversations import ConversationPatch, add_activity, apply_patch
from inbox.inbound import InboundContext, conversation_labels
from inbox.model import ConversationStatus
from inbox.outbox import Draft, Outbox
from routing.assignment import Assigner
from routing.hours import hours_of
from routing.rules import (
    ACTIONS,
    CONDITIONS,
    Action,
    AddLabel,
    AssignAgent,
    AssignTeam,
    AutoReply,
    Condition,
    Facts,
    MoveToInbox,
    Resolve,
    SetPriority,
    Snooze,
    StartBot,
    Trigger,
    matches,
)
from routing.text import fold, guess_language

_LOGGER = logging.getLogger(__name__)


class BotLauncher(Protocol):
    """Hands a conversation to a bot flow (the gateway passes ``bots``' implementation).

    Returns the run id, or None when the flow cannot run here (disabled, gone, already handed off).
    """

    async def __call__(
        self,
        session: AsyncSession,
        conversation: t.Conversation,
        flow_id: int,
        message_id: int,
        now: datetime,
    ) -> int | None: ...


class ConsentLookup(Protocol):
    """The contact's consent state on a channel: ``unknown``, ``opted_in`` or ``opted_out``."""

    async def __call__(self, session: AsyncSession, contact_id: int, channel_id: int) -> str: ...


def bot_active(conversation: t.Conversation) -> bool:
    """Whether a bot is talking in this conversation (bots keep ``meta["bot"]`` up to date)."""
    bot = (conversation.meta or {}).get("bot") or {}
    return bool(bot.get("status") == "active")


# Run for every inbound message: built once (building a select cost more than running it).
_ENABLED_RULES = (
    select(t.RoutingRule)
    .where(t.RoutingRule.account_id == bindparam("account_id"), t.RoutingRule.enabled.is_(True))
    .order_by(t.RoutingRule.position, t.RoutingRule.id)
)


class RoutingHook:
    def __init__(
        self,
        outbox: Outbox,
        assigner: Assigner,
        *,
        bots: BotLauncher | None = None,
        consent: ConsentLookup | None = None,
    ) -> None:
        self._outbox = outbox
        self._assigner = assigner
        self.bots = bots
        self.consent = consent
        self._parsed: dict[int, tuple[datetime, list[Condition], list[Action]]] = {}

    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None:
        conversation = ctx.conversation
        if (conversation.meta or {}).get("held"):
            return  # kept aside until the business opens it (inbox.broadcasts.BusinessOpensFirstHook)
        assigned_before = conversation.assignee_id
        inbox = await session.get(t.InboxRow, conversation.inbox_id)
        hours = hours_of(inbox.settings if inbox else None)
        business_open = hours.is_open(ctx.now) if hours is not None else True
        facts = await self._facts(session, ctx, business_open)
        triggers: list[Trigger] = ["message_created"]
        if ctx.new_conversation:
            triggers.append("conversation_created")
        if ctx.new_conversation or ctx.reopened:
            triggers.append("conversation_opened")

        rules = await session.scalars(_ENABLED_RULES, {"account_id": conversation.account_id})
        for rule in list(rules):
            trigger = next((x for x in triggers if x in (rule.triggers or [])), None)
            if trigger is None:
                continue
            parsed = self._parse(rule)
            if parsed is None:
                continue
            conditions, actions = parsed
            if not matches(rule.match, conditions, facts):
                continue
            taken = [await self._act(session, ctx, rule, action) for action in actions]
            session.add(
                t.RuleFiring(
                    account_id=conversation.account_id,
                    rule_id=rule.id,
                    rule_name=rule.name,
                    conversation_id=conversation.id,
                    message_id=ctx.message.id,
                    trigger=trigger,
                    actions=taken,
                    created_at=ctx.now,
                )
            )
            if rule.stop:
                break

        talking_bot = bot_active(conversation)  # a bot answers for itself; no reply on top of it
        if hours is not None and not business_open and hours.out_of_hours_reply and not talking_bot:
            self._reply_once(
                ctx, "out_of_hours", hours.out_of_hours_reply, timedelta(hours=hours.reply_every_hours)
            )

        if not talking_bot and conversation.status == ConversationStatus.OPEN:
            if conversation.assignee_id is not None and conversation.assignee_id == assigned_before:
                # Only an agent who had it before this message; a rule's explicit choice stands.
                await self._assigner.release_if_offline(session, conversation, ctx.now)
            if conversation.assignee_id is None:
                await self._assigner.assign(session, conversation, ctx.now)

    def _parse(self, rule: t.RoutingRule) -> tuple[list[Condition], list[Action]] | None:
        """The rule's validated conditions and actions, cached until the rule is edited."""
        cached = self._parsed.get(rule.id)
        if cached is not None and cached[0] == rule.updated_at:
            return cached[1], cached[2]
        try:
            conditions = CONDITIONS.validate_python(rule.conditions)
            actions = ACTIONS.validate_python(rule.actions)
        except ValidationError:
            _LOGGER.exception("rule %s is not valid any more; skipped", rule.id)
            return None
        if len(self._parsed) > 10_000:
            self._parsed.clear()
        self._parsed[rule.id] = (rule.updated_at, conditions, actions)
        return conditions, actions

    async def _facts(self, session: AsyncSession, ctx: InboundContext, business_open: bool) -> Facts:
        attributes = dict(ctx.contact.attributes or {})
        text = ctx.inbound.text or ""
        language = attributes.get("language")
        consent = "unknown"
        if self.consent is not None:
            consent = await self.consent(session, ctx.contact.id, ctx.channel.id)
        return Facts(
            channel_kind=ctx.channel.kind,
            inbox_id=ctx.conversation.inbox_id,
            text=fold(text),
            language=fold(str(language)) if language else guess_language(text),
            contact_attributes=attributes,
            contact_labels=frozenset(fold(x) for x in ctx.contact.labels or []),
            consent=consent,
            business_open=business_open,
            new_conversation=ctx.new_conversation,
        )

    async def _act(
        self, session: AsyncSession, ctx: InboundContext, rule: t.RoutingRule, action: Action
    ) -> dict[str, Any]:
        conversation, now = ctx.conversation, ctx.now
        actor = f"Rule “{rule.name}”"
        done: dict[str, Any] = {"type": action.type, "result": "done"}

        async def patch(p: ConversationPatch) -> None:
            await apply_patch(session, conversation, p, actor=actor, actor_id=None, now=now)

        match action:
            case MoveToInbox():
                inbox = await session.get(t.InboxRow, action.inbox_id)
                if inbox is None or inbox.account_id != conversation.account_id:
                    return {**done, "result": "skipped", "detail": f"inbox {action.inbox_id} is gone"}
                if conversation.inbox_id != inbox.id:
                    conversation.inbox_id = inbox.id
                    await add_activity(
                        session, conversation, f"{actor} moved it to inbox {inbox.name}", now, None
                    )
                    await self._assigner.forget(session, conversation.id)
            case AssignTeam():
                team = await session.get(t.Team, action.team_id)
                if team is None or team.account_id != conversation.account_id:
                    return {**done, "result": "skipped", "detail": f"team {action.team_id} is gone"}
                await patch(ConversationPatch(team_id=team.id))
            case AssignAgent():
                user = await session.get(t.User, action.user_id)
                if user is None or user.account_id != conversation.account_id:
                    return {**done, "result": "skipped", "detail": f"user {action.user_id} is gone"}
                await patch(ConversationPatch(assignee_id=user.id))
                await self._assigner.forget(session, conversation.id)
            case StartBot():
                if self.bots is None:
                    return {**done, "result": "skipped", "detail": "bots are not enabled"}
                run_id = await self.bots(session, conversation, action.flow_id, ctx.message.id, now)
                if run_id is None:
                    return {**done, "result": "skipped", "detail": "the flow cannot run in this conversation"}
                done["run_id"] = run_id
            case AddLabel():
                labels = await conversation_labels(session, conversation.id)
                await patch(ConversationPatch(labels=[*labels, action.label]))
            case SetPriority():
                await patch(ConversationPatch(priority=action.priority))
            case AutoReply():
                if not self._reply_once(
                    ctx, f"rule:{rule.id}", action.text, timedelta(hours=action.every_hours)
                ):
                    return {**done, "result": "skipped", "detail": "already replied in this period"}
            case Snooze():
                until = now + timedelta(minutes=action.minutes)
                await patch(ConversationPatch(status=ConversationStatus.SNOOZED, snoozed_until=until))
                done["until"] = until.isoformat()
            case Resolve():
                await patch(ConversationPatch(status=ConversationStatus.RESOLVED))
        return done

    def _reply_once(self, ctx: InboundContext, key: str, text: str, every: timedelta) -> bool:
        """Queue an automatic reply after the commit unless ``key`` replied within ``every``."""
        conversation = ctx.conversation
        meta = dict(conversation.meta or {})
        sent: dict[str, str] = dict(meta.get("auto_replies") or {})
        last = sent.get(key)
        if last is not None and ctx.now - datetime.fromisoformat(last) < every:
            return False
        sent[key] = ctx.now.isoformat()
        meta["auto_replies"] = sent
        conversation.meta = meta  # a new dict: JSON columns track assignment, not mutation
        draft = Draft(conversation_id=conversation.id, text=text, origin="automation")

        async def send() -> None:
            await self._outbox.submit(draft)

        ctx.after_commit.append(send)
        return True
