"""Business hours: when the widget offers live chat instead of asking for an email."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Spans = tuple[tuple[time, time], ...]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHours(BaseModel):
    """``{"timezone": "Europe/Berlin", "days": {"mon": [["09:00", "17:30"]]}}``; missing days are closed."""

    model_config = ConfigDict(frozen=True)

    timezone: str = "UTC"
    days: dict[str, Spans] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, Spans]) -> dict[str, Spans]:
        for day, spans in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}; use {', '.join(DAYS)}")
            for start, end in spans:
                if start >= end:
                    raise ValueError(f"{day}: {start} is not before {end}")
        return value

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        spans = self.days.get(DAYS[local.weekday()], ())
        t = local.time().replace(tzinfo=None)
        return any(start <= t < end for start, end in spans)
