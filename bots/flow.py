"""Bot flows as data: the pydantic model of a flow, loading it from YAML or JSON, and its checks.

A flow is a set of named states. A state may ``say`` something and then wait for the contact
(``buttons``, ``capture``, ``faq``), decide by itself (``branch`` on contact attributes, ``next``),
hand the conversation to a human (``handoff``) or ``end``. Flow-wide ``intents`` jump to a state when
the contact's words contain their keywords; "human" or "agent" hands off from any state::

    name: Order help
    start: welcome
    states:
      welcome:
        say: Hi! What can we do for you?
        buttons:
          - {label: Track my order, next: ask_email}
          - {label: Talk to sales, next: to_sales}
      ask_email:
        say: What is the email address on your order?
        capture: {attribute: email, validate: email, next: thanks}
      thanks: {say: "Thanks, {email}! An agent will follow up.", handoff: {}}
      to_sales: {handoff: {team_id: 2, message: Connecting you to sales.}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Button(_Spec):
    label: str = Field(min_length=1, max_length=40)
    next: str
    value: str | None = Field(default=None, max_length=200)  # stored in ``save_as`` instead of the label


class Capture(_Spec):
    """Free text saved into a contact attribute; ``email`` and ``phone`` are validated and normalized."""

    attribute: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    validate_as: Literal["text", "email", "phone"] = Field(default="text", alias="validate")
    next: str
    invalid: str = Field(default="That does not look right. Please try again.", max_length=1000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Case(_Spec):
    attribute: str = Field(min_length=1, max_length=100)
    op: Literal["equals", "contains", "exists"] = "equals"
    value: str | int | float | bool | None = None
    next: str


class Branch(_Spec):
    cases: list[Case] = Field(min_length=1, max_length=50)
    otherwise: str


class FaqEntry(_Spec):
    question: str = Field(min_length=1, max_length=1000)
    answer: str = Field(min_length=1, max_length=4096)
    keywords: list[str] = Field(default_factory=list, max_length=50)


class Faq(_Spec):
    entries: list[FaqEntry] = Field(min_length=1, max_length=1000)
    # Share of the question's words an entry must cover; below it the bot hands off.
    threshold: float = Field(default=0.5, gt=0, le=1)
    follow_up: str | None = Field(default=None, max_length=1000)


class Handoff(_Spec):
    team_id: int | None = None
    message: str | None = Field(default="Connecting you with a person. Please hold on.", max_length=1000)


class Intent(_Spec):
    name: str = Field(min_length=1, max_length=100)
    keywords: list[str] = Field(min_length=1, max_length=50)
    next: str


class State(_Spec):
    say: str | None = Field(default=None, max_length=4096)
    buttons: list[Button] = Field(default_factory=list, max_length=10)
    save_as: str | None = Field(default=None, max_length=100)  # store the chosen button in this attribute
    capture: Capture | None = None
    faq: Faq | None = None
    branch: Branch | None = None
    handoff: Handoff | None = None
    next: str | None = None
    end: bool = False
    resolve: bool = False  # with ``end``: resolve the conversation, no human needed

    @model_validator(mode="after")
    def _one_way_on(self) -> State:
        ways = [
            name
            for name, set_ in (
                ("buttons", bool(self.buttons)),
                ("capture", self.capture is not None),
                ("faq", self.faq is not None),
                ("branch", self.branch is not None),
                ("handoff", self.handoff is not None),
                ("next", self.next is not None),
                ("end", self.end),
            )
            if set_
        ]
        if len(ways) != 1:
            found = ", ".join(ways) or "none"
            raise ValueError(
                "a state needs exactly one of buttons, capture, faq, branch, handoff, next, end "
                f"(found: {found})"
            )
        if self.resolve and not self.end:
            raise ValueError("resolve needs end: true")
        return self

    @property
    def waits(self) -> bool:
        """Whether the state waits for the contact's answer."""
        return bool(self.buttons) or self.capture is not None or self.faq is not None

    def targets(self) -> list[tuple[str, str]]:
        """(field path, state name) of every transition out of this state."""
        out = [(f"buttons.{i}.next", b.next) for i, b in enumerate(self.buttons)]
        if self.capture is not None:
            out.append(("capture.next", self.capture.next))
        if self.branch is not None:
            out += [(f"branch.cases.{i}.next", c.next) for i, c in enumerate(self.branch.cases)]
            out.append(("branch.otherwise", self.branch.otherwise))
        if self.next is not None:
            out.append(("next", self.next))
        return out


class Flow(_Spec):
    name: str | None = Field(default=None, max_length=200)
    start: str
    states: dict[str, State] = Field(min_length=1, max_length=500)
    intents: list[Intent] = Field(default_factory=list, max_length=100)
    handoff_words: list[str] = Field(default_factory=lambda: ["human", "agent"], max_length=50)
    handoff_message: str = Field(default="Connecting you with a person. Please hold on.", max_length=1000)
    invalid_choice: str = Field(default="Please choose one of the options.", max_length=1000)
    max_retries: int = Field(default=2, ge=0, le=20)  # wrong answers in a row before a hand-off
    # Treat the message that started the flow as the first answer (FAQ bots answer the opening question).
    consume_trigger: bool = False

    @model_validator(mode="after")
    def _references(self) -> Flow:
        problems: list[str] = []
        if self.start not in self.states:
            problems.append(f"start: no state named {self.start!r}")
        for name, state in self.states.items():
            for path, target in state.targets():
                if target not in self.states:
                    problems.append(f"states.{name}.{path}: no state named {target!r}")
        for i, intent in enumerate(self.intents):
            if intent.next not in self.states:
                problems.append(f"intents.{i}.next: no state named {intent.next!r}")
        if not problems:
            cycle = self._auto_cycle()
            if cycle:
                problems.append(f"states: {' → '.join(cycle)} loops without waiting for the contact")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _auto_cycle(self) -> list[str] | None:
        """A cycle through states that never wait (branch/next only) would spin forever."""
        for origin in self.states:
            path = [origin]
            seen = {origin}
            frontier = [(origin, path)]
            while frontier:
                name, trail = frontier.pop()
                state = self.states[name]
                if state.waits:
                    continue
                for _, target in state.targets():
                    if target == origin:
                        return [*trail, target]
                    if target not in seen:
                        seen.add(target)
                        frontier.append((target, [*trail, target]))
        return None


class FaqBot(_Spec):
    """The built-in FAQ bot (kind ``faq``): answers by keyword overlap, hands off when not confident."""

    greeting: str | None = Field(default=None, max_length=1000)
    entries: list[FaqEntry] = Field(min_length=1, max_length=1000)
    threshold: float = Field(default=0.5, gt=0, le=1)
    follow_up: str | None = Field(default="Anything else I can help with?", max_length=1000)
    handoff_message: str = Field(
        default="I am not sure about that one. Let me get a person to help you.", max_length=1000
    )

    def to_flow(self) -> Flow:
        return Flow(
            start="faq",
            states={
                "faq": State(
                    say=self.greeting,
                    faq=Faq(entries=self.entries, threshold=self.threshold, follow_up=self.follow_up),
                )
            },
            consume_trigger=True,
            handoff_message=self.handoff_message,
        )


class FlowInvalid(ValueError):
    """A flow definition that failed validation; ``problems`` name the fields."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['problem']}" for p in problems))
        self.problems = problems


def parse_source(source: str) -> Any:
    """YAML or JSON text (JSON is YAML, but its errors read better from the JSON parser)."""
    text = source.strip()
    try:
        if text.startswith("{"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise FlowInvalid([{"field": "source", "problem": f"not valid YAML or JSON: {exc}"}]) from exc


def load_flow(kind: str, definition: Any) -> Flow:
    """Validate a definition of ``kind`` (``flow`` or ``faq``) and return the runnable flow."""
    if not isinstance(definition, dict):
        raise FlowInvalid([{"field": "definition", "problem": "must be a mapping of a flow"}])
    try:
        if kind == "faq":
            return FaqBot.model_validate(definition).to_flow()
        return Flow.model_validate(definition)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            if where:
                problems.append({"field": f"definition.{where}", "problem": message})
                continue
            # Flow-wide checks report "path: problem; path: problem".
            for part in message.split("; "):
                path, sep, problem = part.partition(": ")
                problems.append(
                    {"field": f"definition.{path}", "problem": problem}
                    if sep
                    else {"field": "definition", "problem": part}
                )
        raise FlowInvalid(problems) from exc


def load_flow_file(path: Path) -> tuple[str, str, dict[str, Any]]:
    """(name, kind, definition) from a ``.yaml``/``.yml``/``.json`` file; kind is ``faq`` when the file
    says ``kind: faq`` at the top. Raises FlowInvalid."""
    data = parse_source(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise FlowInvalid([{"field": "definition", "problem": "must be a mapping of a flow"}])
    data = dict(data)
    kind = str(data.pop("kind", "flow"))
    name = str(data.get("name") or path.stem)
    if kind == "faq":
        data.pop("name", None)
    load_flow(kind, data)
    return name, kind, data
