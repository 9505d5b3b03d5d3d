"""The simulator's records: businesses (phone numbers with their app), contacts, templates, messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Business:
    """A business phone number as Meta's app dashboard would hold it."""

    phone_number_id: str
    display_phone_number: str
    access_token: str
    app_secret: str
    webhook_url: str
    verify_token: str = ""
    name: str = "Business"
    waba_id: str = "100000000000000"

    @property
    def digits(self) -> str:
        return "".join(c for c in self.display_phone_number if c.isdigit())


class Directory(Protocol):
    """Where the simulator finds businesses: a fixed list standalone, the channels table when mounted."""

    async def businesses(self) -> list[Business]: ...

    async def business(self, phone_number_id: str) -> Business | None: ...


class StaticDirectory:
    def __init__(self, businesses: list[Business] | None = None) -> None:
        self._by_id = {b.phone_number_id: b for b in businesses or []}

    def add(self, business: Business) -> None:
        self._by_id[business.phone_number_id] = business

    async def businesses(self) -> list[Business]:
        return list(self._by_id.values())

    async def business(self, phone_number_id: str) -> Business | None:
        return self._by_id.get(phone_number_id)


_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


@dataclass(frozen=True)
class Template:
    name: str
    body: str
    language: str = "en_US"
    category: Literal["UTILITY", "MARKETING", "AUTHENTICATION"] = "UTILITY"
    status: Literal["APPROVED", "PENDING", "REJECTED", "PAUSED"] = "APPROVED"
    buttons: tuple[str, ...] = ()  # quick replies; a tap arrives as a ``type: button`` message

    @property
    def param_count(self) -> int:
        return len({m.group(1) for m in _PLACEHOLDER.finditer(self.body)})

    def graph_view(self) -> dict[str, Any]:
        """As ``GET /{waba-id}/message_templates`` lists it."""
        components: list[dict[str, Any]] = [{"type": "BODY", "text": self.body}]
        if self.buttons:
            components.append(
                {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": b} for b in self.buttons]}
            )
        return {
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "components": components,
            "id": str(abs(hash((self.name, self.language))) % 10**15),
        }

    def render(self, params: list[str]) -> str:
        return _PLACEHOLDER.sub(
            lambda m: params[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(params) else m.group(0),
            self.body,
        )


DEFAULT_TEMPLATES = (
    Template("hello_world", "Hello! Thanks for getting in touch with us."),
    Template("order_update", "Your order {{1}} has an update: it is on its way."),
    Template("appointment_reminder", "Hi {{1}}, this is a reminder of your appointment on {{2}}."),
    Template(
        "spring_sale",
        "Our spring sale starts today: {{1}} off everything!",
        category="MARKETING",
        buttons=("Shop now", "Stop promotions"),
    ),
    Template("draft_offer", "Not yet approved: {{1}}", category="MARKETING", status="PENDING"),
)


@dataclass
class Contact:
    wa_id: str
    name: str
    online: bool = True
    marketing_stopped: bool = False


Direction = Literal["in", "out"]  # in: contact → business; out: business → contact


@dataclass
class SimMessage:
    wamid: str
    phone_number_id: str
    wa_id: str
    direction: Direction
    type: str
    text: str | None
    at: datetime
    status: str = "sent"  # sent, delivered, read, failed
    extra: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.wamid,
            "business": self.phone_number_id,
            "contact": self.wa_id,
            "direction": self.direction,
            "type": self.type,
            "text": self.text,
            "status": self.status,
            "at": self.at.isoformat(),
            "error": self.error,
            **self.extra,
        }
