"""Automations: a trigger and the steps each triggered contact goes through (the definitions).

Triggers: a tag added or removed, a contact event, an inbound keyword, or no reply from the contact
for N hours after a business message. Steps: wait, condition, send (through the outbox gate), add or
remove a tag, assign, start a bot flow. ``check`` refuses what cannot run before it is saved, naming
the field: an unknown channel, template, user, team or flow, a rule on a field the trigger lacks, and
a cycle (a step adding or removing the tag that triggers this automation, also through others).
Runs are in inbox.automation_runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.conditions import Condition, rule_problem, split_field
from inbox.folding import fold
from inbox.model import TemplateRef
from inbox.products import EVENT_FIELDS, ProductKind, event_type_problem, field_problem, is_custom
from inbox.tags import AUTO_PREFIX, TagError, normalize_tag
from inbox.windows import check_template

MAX_WAIT = timedelta(days=365)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake: 422 naming it


class TagTrigger(_Strict):
    type: Literal["tag_added", "tag_removed"]
    tag: str = Field(min_length=1, max_length=200)


class EventTrigger(_Strict):
    type: Literal["event"]
    event_type: str = Field(min_length=1, max_length=64)
    product_id: int | None = None  # Product.id; None: this event type of any product


class KeywordTrigger(_Strict):
    type: Literal["keyword"]
    keyword: str = Field(min_length=1, max_length=200)  # the whole message, compared folded
    channel_id: int | None = None  # None: on every channel


class NoReplyTrigger(_Strict):
    type: Literal["no_reply"]
    hours: int = Field(ge=1, le=24 * 30)  # after the business's last message, with no answer since
    channel_id: int | None = None


Trigger = Annotated[TagTrigger | EventTrigger | KeywordTrigger | NoReplyTrigger, Field(discriminator="type")]


class WaitStep(_Strict):
    type: Literal["wait"]
    days: int = Field(default=0, ge=0)
    hours: int = Field(default=0, ge=0)
    minutes: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _some_time(self) -> WaitStep:
        if not timedelta() < self.duration <= MAX_WAIT:
            raise ValueError("a wait lasts more than nothing and at most 365 days")
        return self

    @property
    def duration(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class ConditionStep(_Strict):
    """Go on only if the condition holds for the contact (``contact.<attribute>``, ``tag``) and, for
    event triggers, the event (``data.<name>``); otherwise the run stops here."""

    type: Literal["condition"]
    condition: Condition


class TemplateIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    language: str = Field(min_length=2, max_length=20)
    params: list[str] = Field(default_factory=list, max_length=20)

    def ref(self) -> TemplateRef:
        return TemplateRef(name=self.name, language=self.language, params=tuple(self.params))


class SendStep(_Strict):
    """A business-initiated message to the contact on a channel, through the gate (consent, window,
    quota, contact limit). ``{{name}}``, ``{{<attribute>}}`` and ``{{x|fallback}}`` are filled in."""

    type: Literal["send"]
    channel_id: int
    text: str | None = Field(default=None, max_length=4096)
    template: TemplateIn | None = None

    @model_validator(mode="after")
    def _content(self) -> SendStep:
        if not (self.text and self.text.strip()) and self.template is None:
            raise ValueError("a send step needs text or a template")
        return self


class TagStep(_Strict):
    type: Literal["add_tag", "remove_tag"]
    tag: str = Field(min_length=1, max_length=200)


class AssignStep(_Strict):
    """Assign the run's conversation (else the contact's latest) to a user and/or a team."""

    type: Literal["assign"]
    user_id: int | None = None
    team_id: int | None = None

    @model_validator(mode="after")
    def _someone(self) -> AssignStep:
        if self.user_id is None and self.team_id is None:
            raise ValueError("an assign step needs user_id or team_id")
        return self


class BotStep(_Strict):
    type: Literal["start_bot"]
    flow_id: int


Step = Annotated[
    WaitStep | ConditionStep | SendStep | TagStep | AssignStep | BotStep, Field(discriminator="type")
]


class AutomationFields(_Strict):
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=50)


class AutomationPatch(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    trigger: Trigger | None = None
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=50)


class AutomationError(ValueError):
    """An automation that cannot be saved: ``field`` names the part of the body at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def parse_trigger(raw: dict[str, object]) -> TagTrigger | EventTrigger | KeywordTrigger | NoReplyTrigger:
    return AutomationFields.model_validate({"name": "x", "trigger": raw, "steps": [_NOOP]}).trigger


def parse_steps(raw: Sequence[dict[str, object]]) -> list[Step]:
    return AutomationFields.model_validate({"name": "x", "trigger": _ANY, "steps": list(raw)}).steps


_NOOP = {"type": "wait", "minutes": 1}
_ANY = {"type": "tag_added", "tag": "x"}


def trigger_key(trigger: TagTrigger | EventTrigger | KeywordTrigger | NoReplyTrigger) -> str | None:
    """What an event must carry for the trigger to fire (indexed): tag, event type, folded keyword."""
    if isinstance(trigger, TagTrigger):
        return normalize_tag(trigger.tag)
    if isinstance(trigger, EventTrigger):
        return trigger.event_type
    if isinstance(trigger, KeywordTrigger):
        return fold(trigger.keyword)
    return None


def _tag(raw: str, where: str, *, automatic_ok: bool) -> str:
    try:
        tag = normalize_tag(raw)
    except TagError as exc:
        raise AutomationError(where, str(exc)) from None
    if not automatic_ok and tag.startswith(AUTO_PREFIX):
        raise AutomationError(
            where, f"tags starting with {AUTO_PREFIX!r} are automatic: only product rules set them"
        )
    return tag


async def _owned(session: AsyncSession, table: type[t.Base], ident: int, account_id: int) -> t.Base | None:
    row = await session.get(table, ident)
    return row if row is not None and getattr(row, "account_id", None) == account_id else None


async def _check_trigger(session: AsyncSession, account_id: int, fields: AutomationFields) -> None:
    trigger = fields.trigger
    if isinstance(trigger, TagTrigger):
        trigger.tag = _tag(
            trigger.tag, "trigger.tag", automatic_ok=True
        )  # "became a buyer" is a fine trigger
    elif isinstance(trigger, EventTrigger):
        if trigger.product_id is not None:
            product = await _owned(session, t.Product, trigger.product_id, account_id)
            if not isinstance(product, t.Product):
                raise AutomationError("trigger.product_id", f"product {trigger.product_id} does not exist")
            problem = event_type_problem(trigger.event_type, ProductKind(product.kind))
        elif is_custom(trigger.event_type) or trigger.event_type in EVENT_FIELDS:
            problem = None
        else:
            problem = event_type_problem(trigger.event_type, None)
        if problem is not None:
            raise AutomationError("trigger.event_type", problem)
    elif isinstance(trigger, KeywordTrigger) and not fold(trigger.keyword):
        raise AutomationError("trigger.keyword", "a keyword must not be blank")
    channel_id = trigger.channel_id if isinstance(trigger, KeywordTrigger | NoReplyTrigger) else None
    if channel_id is not None and await _owned(session, t.Channel, channel_id, account_id) is None:
        raise AutomationError("trigger.channel_id", f"channel {channel_id} does not exist")


async def _check_step(
    session: AsyncSession, account_id: int, trigger: object, step: Step, where: str
) -> None:
    if isinstance(step, ConditionStep):
        for n, rule in enumerate(step.condition.rules):
            problem = rule_problem(rule)
            source, name = split_field(rule.field) or ("", "")
            if problem is None and source == "data":
                if not isinstance(trigger, EventTrigger):
                    problem = "data.<name> fields are an event's: this automation's trigger is not an event"
                else:
                    problem = field_problem(trigger.event_type, name)
            if problem is not None:
                raise AutomationError(f"{where}.condition.rules[{n}]", problem)
    elif isinstance(step, SendStep):
        channel = await _owned(session, t.Channel, step.channel_id, account_id)
        if channel is None:
            raise AutomationError(f"{where}.channel_id", f"channel {step.channel_id} does not exist")
        if step.template is not None:
            problem = await check_template(session, step.channel_id, step.template.ref())
            if problem is not None:
                raise AutomationError(f"{where}.template", problem)
    elif isinstance(step, TagStep):
        step.tag = _tag(step.tag, f"{where}.tag", automatic_ok=False)
    elif isinstance(step, AssignStep):
        if step.user_id is not None and await _owned(session, t.User, step.user_id, account_id) is None:
            raise AutomationError(f"{where}.user_id", f"user {step.user_id} does not exist")
        if step.team_id is not None and await _owned(session, t.Team, step.team_id, account_id) is None:
            raise AutomationError(f"{where}.team_id", f"team {step.team_id} does not exist")
    elif isinstance(step, BotStep) and await _owned(session, t.BotFlow, step.flow_id, account_id) is None:
        raise AutomationError(f"{where}.flow_id", f"bot flow {step.flow_id} does not exist")


# -- cycles: tag steps feeding tag triggers ------------------------------------------------------------


def _emits(steps: Sequence[Step]) -> list[tuple[int, tuple[str, str]]]:
    """(step index, the trigger it fires) for each tag step: add_tag fires tag_added, remove tag_removed."""
    out = []
    for n, step in enumerate(steps):
        if isinstance(step, TagStep):
            kind = "tag_added" if step.type == "add_tag" else "tag_removed"
            out.append((n, (kind, normalize_tag(step.tag))))
    return out


def _listens(trigger: object) -> tuple[str, str] | None:
    if isinstance(trigger, TagTrigger):
        return trigger.type, normalize_tag(trigger.tag)
    return None


async def _check_cycle(
    session: AsyncSession, account_id: int, fields: AutomationFields, automation_id: int | None
) -> None:
    """A tag step that (directly or through other active automations) fires this automation again."""
    me = _listens(fields.trigger)
    if me is None or not fields.active:
        return
    others: dict[int, tuple[str, tuple[str, str] | None, list[tuple[int, tuple[str, str]]]]] = {}
    rows = await session.scalars(
        select(t.Automation).where(t.Automation.account_id == account_id, t.Automation.active.is_(True))
    )
    for row in rows:
        if row.id == automation_id:
            continue
        others[row.id] = (row.name, _listens(parse_trigger(row.trigger)), _emits(parse_steps(row.steps)))
    for n, fired in _emits(fields.steps):
        # Breadth-first over the automations this step's tag change sets off.
        path: dict[tuple[str, str], list[str]] = {fired: []}
        frontier = [fired]
        while frontier:
            current = frontier.pop(0)
            if current == me:
                via = " → ".join(f"automation {name!r}" for name in path[current])
                route = f" through {via}" if via else ""
                raise AutomationError(
                    f"steps[{n}]",
                    f"this step's {fired[0].replace('_', ' ')} {fired[1]!r} triggers this automation "
                    f"again{route}: a cycle",
                )
            for name, listens, emits in others.values():
                if listens != current:
                    continue
                for _, nxt in emits:
                    if nxt not in path:
                        path[nxt] = [*path[current], name]
                        frontier.append(nxt)


async def check(
    session: AsyncSession, account_id: int, fields: AutomationFields, automation_id: int | None = None
) -> None:
    """Raise AutomationError naming the field if the automation cannot be saved (normalizes tags)."""
    await _check_trigger(session, account_id, fields)
    for n, step in enumerate(fields.steps):
        await _check_step(session, account_id, fields.trigger, step, f"steps[{n}]")
    await _check_cycle(session, account_id, fields, automation_id)


def fields_of(row: t.Automation) -> AutomationFields:
    return AutomationFields.model_validate(
        {"name": row.name, "active": row.active, "trigger": row.trigger, "steps": row.steps}
    )


async def save(
    session: AsyncSession,
    row: t.Automation,
    account_id: int,
    fields: AutomationFields,
    now: datetime,
    author_id: int | None = None,
) -> t.Automation:
    """Check ``fields`` and write them onto ``row`` (a new or an existing automation)."""
    await check(session, account_id, fields, row.id)
    row.account_id = account_id
    row.name = fields.name.strip()
    row.active = fields.active
    row.trigger = fields.trigger.model_dump(mode="json")
    row.trigger_type = fields.trigger.type
    row.trigger_key = trigger_key(fields.trigger)
    row.steps = [s.model_dump(mode="json", exclude_none=True) for s in fields.steps]
    row.updated_at = now
    if row.id is None:
        row.runs = row.errors = 0
        row.created_by = author_id
        row.created_at = now
        session.add(row)
    await session.flush()
    return row
