"""Bot performance: runs, completions, hand-offs, and conversations resolved without a human."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.model import ConversationStatus, MessageKind


class BotStats(BaseModel):
    flow_id: int
    runs: int
    active: int
    completed: int
    handed_off: int
    # Runs that ended with the conversation resolved and no agent ever wrote in it after the bot began.
    resolved_without_human: int
    refused_sends: int  # bot replies the outbound gate refused (consent, window, quota)


async def flow_stats(session: AsyncSession, flow_id: int) -> BotStats:
    rows = await session.execute(
        select(t.BotRun.status, func.count()).where(t.BotRun.flow_id == flow_id).group_by(t.BotRun.status)
    )
    counts: dict[str, int] = {status: int(n) for status, n in rows.all()}
    agent_wrote = exists().where(
        t.Message.conversation_id == t.BotRun.conversation_id,
        t.Message.kind == MessageKind.OUTGOING,
        t.Message.origin == "agent",
        t.Message.created_at >= t.BotRun.started_at,
    )
    resolved = await session.scalar(
        select(func.count())
        .select_from(t.BotRun)
        .join(t.Conversation, t.Conversation.id == t.BotRun.conversation_id)
        .where(
            and_(
                t.BotRun.flow_id == flow_id,
                t.BotRun.status == "completed",
                t.Conversation.status == ConversationStatus.RESOLVED,
                ~agent_wrote,
            )
        )
    )
    refusals = await session.scalars(select(t.BotRun.refusals).where(t.BotRun.flow_id == flow_id))
    return BotStats(
        flow_id=flow_id,
        runs=sum(counts.values()),
        active=counts.get("active", 0),
        completed=counts.get("completed", 0),
        handed_off=counts.get("handed_off", 0),
        resolved_without_human=int(resolved or 0),
        refused_sends=sum(len(r or []) for r in refusals),
    )
