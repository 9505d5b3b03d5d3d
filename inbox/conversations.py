"""Changing a conversation: status, assignee, team, priority, labels — each change leaves an activity line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.events import record_event
from inbox.inbound import conversation_labels
from inbox.model import ConversationStatus, MessageKind, MessageStatus, Priority
from inbox.views import ConversationView, MessageView, dump

_UNSET = object()
# Every business-initiated send (and each recipient of a broadcast) runs it: built once.
_OPEN_BY_THREAD = (
    select(t.Conversation)
    .where(
        t.Conversation.channel_id == bindparam("channel_id"),
        t.Conversation.thread_key == bindparam("thread_key"),
        t.Conversation.status != ConversationStatus.RESOLVED,
    )
    .order_by(t.Conversation.id.desc())
    .limit(1)
)


@dataclass
class ConversationPatch:
    """Fields to change; ``None`` on assignee/team means unassign. Unset fields are left alone."""

    status: ConversationStatus | None = None
    snoozed_until: datetime | None = None
    assignee_id: int | object | None = _UNSET
    team_id: int | object | None = _UNSET
    priority: Priority | None = None
    labels: list[str] | None = None
    replies_disabled: bool | None = None


async def add_activity(
    session: AsyncSession, conversation: t.Conversation, text: str, now: datetime, author_id: int | None
) -> t.Message:
    message = t.Message(
        account_id=conversation.account_id,
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        kind=MessageKind.ACTIVITY,
        origin="system",
        text=text,
        content_type="text",
        attachments=[],
        status=MessageStatus.RECEIVED,
        author_id=author_id,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    await record_event(
        session,
        "message.created",
        account_id=conversation.account_id,
        now=now,
        inbox_id=conversation.inbox_id,
        conversation_id=conversation.id,
        payload={"message": dump(MessageView.of(message))},
    )
    return message


async def apply_patch(
    session: AsyncSession,
    conversation: t.Conversation,
    patch: ConversationPatch,
    *,
    actor: str,
    actor_id: int | None,
    now: datetime,
) -> ConversationView:
    """Apply a validated patch. The caller has checked that ids exist and the actor may do this."""
    lines: list[str] = []
    # What changed, on the event (webhooks derive conversation.status_changed and .assigned from it).
    changes: list[dict[str, object]] = []
    if patch.status is not None and patch.status != conversation.status:
        changes.append({"field": "status", "old": str(conversation.status), "new": str(patch.status)})
        conversation.status = patch.status
        conversation.resolved_at = now if patch.status == ConversationStatus.RESOLVED else None
        conversation.snoozed_until = (
            patch.snoozed_until if patch.status == ConversationStatus.SNOOZED else None
        )
        lines.append(f"{actor} set the status to {patch.status.value}")
    if patch.assignee_id is not _UNSET and patch.assignee_id != conversation.assignee_id:
        assignee_id = patch.assignee_id
        assert assignee_id is None or isinstance(assignee_id, int)
        changes.append({"field": "assignee_id", "old": conversation.assignee_id, "new": assignee_id})
        conversation.assignee_id = assignee_id
        if assignee_id is None:
            lines.append(f"{actor} unassigned the conversation")
        else:
            user = await session.get(t.User, assignee_id)
            lines.append(f"{actor} assigned {user.name if user else assignee_id}")
    if patch.team_id is not _UNSET and patch.team_id != conversation.team_id:
        team_id = patch.team_id
        assert team_id is None or isinstance(team_id, int)
        conversation.team_id = team_id
        team = await session.get(t.Team, team_id) if team_id is not None else None
        lines.append(f"{actor} moved it to team {team.name}" if team else f"{actor} removed the team")
    if patch.priority is not None and patch.priority != conversation.priority:
        conversation.priority = patch.priority
        lines.append(f"{actor} set the priority to {patch.priority.value}")
    if patch.labels is not None:
        wanted = sorted({label.strip().lower() for label in patch.labels if label.strip()})
        current = await conversation_labels(session, conversation.id)
        if wanted != sorted(current):
            await session.execute(
                delete(t.ConversationLabel).where(t.ConversationLabel.conversation_id == conversation.id)
            )
            session.add_all([t.ConversationLabel(conversation_id=conversation.id, label=x) for x in wanted])
            lines.append(f"{actor} set labels: {', '.join(wanted) or 'none'}")
    disabled = bool((conversation.meta or {}).get("replies_disabled"))
    if patch.replies_disabled is not None and patch.replies_disabled != disabled:
        set_replies_disabled(conversation, patch.replies_disabled)
        lines.append(f"{actor} {'disabled' if patch.replies_disabled else 'enabled'} replies")
    for line in lines:
        await add_activity(session, conversation, line, now, actor_id)
    await session.flush()
    view = ConversationView.of(conversation, await conversation_labels(session, conversation.id))
    if lines:
        conversation.last_activity_at = now
        view = ConversationView.of(conversation, view.labels)
        await record_event(
            session,
            "conversation.updated",
            account_id=conversation.account_id,
            now=now,
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            payload={"conversation": dump(view), "changes": changes},
        )
    return view


def set_replies_disabled(
    conversation: t.Conversation, disabled: bool, broadcast_id: int | None = None
) -> None:
    """Turn the contact's replies off (they get the channel's auto-answer) or on again.

    Kept in ``meta`` so the inbound path reads it with the conversation it already loaded.
    """
    meta = {
        k: v
        for k, v in (conversation.meta or {}).items()
        if k not in ("replies_disabled", "replies_broadcast")
    }
    if disabled:
        meta["replies_disabled"] = True
        if broadcast_id is not None:
            meta["replies_broadcast"] = broadcast_id
    conversation.meta = meta  # a new dict: the JSON column sees the change


async def find_or_open_conversation(
    session: AsyncSession, channel: t.Channel, contact_id: int, address: str, now: datetime
) -> tuple[t.Conversation, bool]:
    """For business-initiated sends: the contact's latest unresolved conversation here, or a new one."""
    conversation = await session.scalar(_OPEN_BY_THREAD, {"channel_id": channel.id, "thread_key": address})
    if conversation is not None:
        return conversation, False
    inbox = await session.get(t.InboxRow, channel.inbox_id)
    conversation = t.Conversation(
        account_id=channel.account_id,
        inbox_id=channel.inbox_id,
        channel_id=channel.id,
        contact_id=contact_id,
        thread_key=address,
        recipient=address,
        status=ConversationStatus.OPEN,
        team_id=inbox.team_id if inbox else None,
        priority="none",
        meta={},
        last_activity_at=now,
        created_at=now,
    )
    session.add(conversation)
    await session.flush()
    await record_event(
        session,
        "conversation.created",
        account_id=channel.account_id,
        now=now,
        inbox_id=conversation.inbox_id,
        conversation_id=conversation.id,
        payload={"conversation": dump(ConversationView.of(conversation, []))},
    )
    return conversation, True
