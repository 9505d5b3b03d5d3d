"""Rules as data: the validated shape of conditions and actions (pydantic), and evaluating conditions.

A rule is ``{"name", "match": "all"|"any", "triggers", "conditions": [...], "actions": [...]}``; each
condition and action is an object with a ``type``. Conditions read a snapshot of the message and its
conversation as they arrived (``Facts``), so one rule's actions never make another rule fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from inbox.folding import fold, strip_accents
from inbox.model import ChannelKind, Priority

Trigger = Literal["message_created", "conversation_created", "conversation_opened"]
ConsentState = Literal["unknown", "opted_in", "opted_out"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- conditions ------------------------------------------------------------------------------------


class _Condition(_Spec):
    negate: bool = False


class ChannelKindIs(_Condition):
    type: Literal["channel_kind"]
    kinds: list[ChannelKind] = Field(min_length=1)


class InboxIs(_Condition):
    type: Literal["inbox"]
    inbox_ids: list[int] = Field(min_length=1)


class TextMatches(_Condition):
    """Case- and accent-insensitive: ``contains "acao"`` matches "AÇÃO"."""

    type: Literal["text"]
    op: Literal["contains", "equals", "starts_with", "regex"]
    value: str = Field(min_length=1, max_length=500)

    @field_validator("value")
    @classmethod
    def _regex(cls, value: str, info: Any) -> str:
        if info.data.get("op") == "regex":
            try:
                re.compile(strip_accents(value))
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class LanguageIs(_Condition):
    type: Literal["language"]
    languages: list[str] = Field(min_length=1)


class ContactAttribute(_Condition):
    type: Literal["contact_attribute"]
    key: str = Field(min_length=1, max_length=100)
    op: Literal["equals", "contains", "exists"] = "equals"
    value: str | int | float | bool | None = None


class ContactLabel(_Condition):
    type: Literal["contact_label"]
    label: str = Field(min_length=1, max_length=64)


class ConsentIs(_Condition):
    type: Literal["consent"]
    state: ConsentState


class InBusinessHours(_Condition):
    type: Literal["business_hours"]
    open: bool = True


class NewConversation(_Condition):
    type: Literal["new_conversation"]
    value: bool = True


class Group(_Condition):
    """Nested conditions with their own all/any."""

    type: Literal["group"]
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1, max_length=50)


Condition = Annotated[
    ChannelKindIs
    | InboxIs
    | TextMatches
    | LanguageIs
    | ContactAttribute
    | ContactLabel
    | ConsentIs
    | InBusinessHours
    | NewConversation
    | Group,
    Field(discriminator="type"),
]
Group.model_rebuild()


# -- actions ---------------------------------------------------------------------------------------


class MoveToInbox(_Spec):
    type: Literal["move_to_inbox"]
    inbox_id: int


class AssignTeam(_Spec):
    type: Literal["assign_team"]
    team_id: int


class AssignAgent(_Spec):
    type: Literal["assign_agent"]
    user_id: int


class StartBot(_Spec):
    type: Literal["start_bot"]
    flow_id: int


class AddLabel(_Spec):
    type: Literal["add_label"]
    label: str = Field(min_length=1, max_length=64)


class SetPriority(_Spec):
    type: Literal["set_priority"]
    priority: Priority


class AutoReply(_Spec):
    """Sent through the outbox after the commit, at most once per conversation per ``every_hours``."""

    type: Literal["auto_reply"]
    text: str = Field(min_length=1, max_length=4096)
    every_hours: int = Field(default=24, ge=1, le=24 * 365)


class Snooze(_Spec):
    type: Literal["snooze"]
    minutes: int = Field(ge=1, le=60 * 24 * 365)


class Resolve(_Spec):
    type: Literal["resolve"]


Action = Annotated[
    MoveToInbox | AssignTeam | AssignAgent | StartBot | AddLabel | SetPriority | AutoReply | Snooze | Resolve,
    Field(discriminator="type"),
]


def _default_triggers() -> list[Trigger]:
    return ["message_created"]


class RuleSpec(_Spec):
    """What an admin writes; the API validates it and the store keeps it as JSON."""

    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    match: Literal["all", "any"] = "all"
    triggers: list[Trigger] = Field(default_factory=_default_triggers, min_length=1)
    conditions: list[Condition] = Field(default_factory=list, max_length=50)
    actions: list[Action] = Field(min_length=1, max_length=20)
    stop: bool = False


CONDITIONS: TypeAdapter[list[Condition]] = TypeAdapter(list[Condition])
ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


# -- evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """The message and its conversation as they arrived, before any rule acted."""

    channel_kind: str
    inbox_id: int
    text: str  # folded (case and accents)
    language: str | None
    contact_attributes: dict[str, Any]
    contact_labels: frozenset[str]  # folded
    consent: str
    business_open: bool
    new_conversation: bool


def _text(cond: TextMatches, facts: Facts) -> bool:
    if cond.op == "regex":
        # The text is folded already; the pattern only loses accents (folding case would turn \S into \s).
        return re.search(strip_accents(cond.value), facts.text, re.IGNORECASE) is not None
    value = fold(cond.value)
    if cond.op == "contains":
        return value in facts.text
    if cond.op == "equals":
        return value == facts.text
    return facts.text.startswith(value)


def _attribute(cond: ContactAttribute, facts: Facts) -> bool:
    present = cond.key in facts.contact_attributes and facts.contact_attributes[cond.key] not in (None, "")
    if cond.op == "exists":
        return present
    if not present:
        return False
    actual = facts.contact_attributes[cond.key]
    if isinstance(actual, str) or isinstance(cond.value, str):
        left, right = fold(str(actual)), fold(str(cond.value))
        return left == right if cond.op == "equals" else right in left
    return bool(actual == cond.value) if cond.op == "equals" else False


def holds(cond: Condition, facts: Facts) -> bool:
    result: bool
    match cond:
        case ChannelKindIs():
            result = facts.channel_kind in cond.kinds
        case InboxIs():
            result = facts.inbox_id in cond.inbox_ids
        case TextMatches():
            result = _text(cond, facts)
        case LanguageIs():
            result = facts.language is not None and facts.language in {fold(x) for x in cond.languages}
        case ContactAttribute():
            result = _attribute(cond, facts)
        case ContactLabel():
            result = fold(cond.label) in facts.contact_labels
        case ConsentIs():
            result = facts.consent == cond.state
        case InBusinessHours():
            result = facts.business_open == cond.open
        case NewConversation():
            result = facts.new_conversation == cond.value
        case Group():
            result = matches(cond.match, cond.conditions, facts)
    return result != cond.negate


def matches(match: str, conditions: list[Condition], facts: Facts) -> bool:
    """all: every condition holds (true when there are none); any: at least one holds."""
    if not conditions:
        return True
    if match == "any":
        return any(holds(c, facts) for c in conditions)
    return all(holds(c, facts) for c in conditions)
