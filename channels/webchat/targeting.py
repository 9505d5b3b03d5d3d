"""Chat flows: which greeting, bot or live chat a visitor gets, chosen by rules on the page they are on.

Rules are tried in order and the first match wins, as HubSpot's chat flows do. A rule matches on the
page URL (equals / contains / regex), on whether this is the visitor's first visit, and shows itself
after the visitor spent ``after_seconds`` on the page (the widget waits that long before it opens).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_URL = 2048


class UrlCondition(BaseModel):
    model_config = ConfigDict(frozen=True)

    op: Literal["equals", "contains", "regex"]
    value: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _compiles(self) -> UrlCondition:
        if self.op == "regex":
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"url regex does not compile: {exc}") from exc
        return self

    def matches(self, url: str) -> bool:
        if self.op == "equals":
            return url.rstrip("/") == self.value.rstrip("/")
        if self.op == "contains":
            return self.value in url
        return re.search(self.value, url) is not None


class FlowRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(default="", max_length=100)
    url: UrlCondition | None = None
    first_visit: bool | None = None  # None: either
    after_seconds: int = Field(default=0, ge=0, le=3600)  # time on page before it shows
    action: Literal["greeting", "bot", "live"] = "live"
    message: str | None = Field(default=None, max_length=2000)  # the greeting's text
    bot: str | None = Field(default=None, max_length=100)  # the bot flow to hand the conversation to

    @field_validator("bot")
    @classmethod
    def _bot_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("bot must be a flow name (letters, digits, _ . -)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> FlowRule:
        if self.action == "greeting" and not self.message:
            raise ValueError("a greeting needs a message")
        if self.action == "bot" and not self.bot:
            raise ValueError("a bot flow needs the bot's name")
        return self


class FlowChoice(BaseModel):
    """What the widget does on this page; ``rule`` is the matching rule's name (for the record)."""

    model_config = ConfigDict(frozen=True)

    action: Literal["greeting", "bot", "live"] = "live"
    message: str | None = None
    bot: str | None = None
    after_seconds: int = 0
    rule: str | None = None


def choose_flow(rules: tuple[FlowRule, ...] | list[FlowRule], page_url: str, first_visit: bool) -> FlowChoice:
    """The first rule that matches this page and visit; plain live chat when none does."""
    url = page_url[:MAX_URL]
    for index, rule in enumerate(rules):
        if rule.first_visit is not None and rule.first_visit != first_visit:
            continue
        if rule.url is not None and not rule.url.matches(url):
            continue
        return FlowChoice(
            action=rule.action,
            message=rule.message,
            bot=rule.bot,
            after_seconds=rule.after_seconds,
            rule=rule.name or f"rule {index + 1}",
        )
    return FlowChoice()
