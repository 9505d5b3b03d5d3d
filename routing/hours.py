"""Business hours per inbox, in the inbox's time zone, and the out-of-hours auto-reply.

Stored under ``inbox.settings["business_hours"]``::

    {"timezone": "Europe/Berlin",
     "days": {"mon": ["09:00-12:30", "13:30-18:00"], "sat": ["10:00-14:00"]},
     "holidays": ["2026-12-25"],
     "out_of_hours_reply": "We are closed; we answer from 9:00.",
     "reply_every_hours": 12}

A day that is missing is closed; ``"24:00"`` ends a day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

SETTINGS_KEY = "business_hours"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


def _minutes(span: str) -> tuple[int, int]:
    m = _SPAN.match(span)
    if m is None:
        raise ValueError(f"{span!r} is not a span like '09:00-17:30'")
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end > 24 * 60:
        raise ValueError(f"{span!r} ends after 24:00")
    if end <= start:
        raise ValueError(f"{span!r} ends before it starts (split spans across midnight into two days)")
    return start, end


class BusinessHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    days: dict[Weekday, list[str]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list, max_length=366)
    out_of_hours_reply: str | None = Field(default=None, max_length=4096)
    reply_every_hours: int = Field(default=24, ge=1, le=24 * 30)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _spans(cls, value: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for spans in value.values():
            if len(spans) > 12:
                raise ValueError("at most 12 spans a day")
            for span in spans:
                _minutes(span)
        return value

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (any time zone) falls inside the hours, read in the inbox's own zone."""
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        for span in self.days.get(WEEKDAYS[local.weekday()], []):
            start, end = _minutes(span)
            if start <= minute < end:
                return True
        return False

    def open_seconds(self, start: datetime, end: datetime) -> int:
        """Seconds between ``start`` and ``end`` that fall inside the hours (reports' business time)."""
        if end <= start:
            return 0
        zone = ZoneInfo(self.timezone)
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        total = timedelta()
        while day <= last:
            if day not in self.holidays:
                midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
                for span in self.days.get(WEEKDAYS[day.weekday()], []):
                    first, stop = _minutes(span)
                    # Wall-clock arithmetic on the zone's midnight: a span keeps its local times on
                    # the days the clocks change.
                    opens, closes = midnight + timedelta(minutes=first), midnight + timedelta(minutes=stop)
                    overlap = min(end, closes) - max(start, opens)
                    if overlap > timedelta():
                        total += overlap
            day += timedelta(days=1)
        return int(total.total_seconds())


def hours_of(inbox_settings: dict[str, Any] | None) -> BusinessHours | None:
    """The inbox's business hours, or None when it has none (always open)."""
    raw = (inbox_settings or {}).get(SETTINGS_KEY)
    if not raw:
        return None
    return BusinessHours.model_validate(raw)
