"""Message templates as ``GET /{waba-id}/message_templates`` lists them, reduced to what a picker needs."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


class WhatsAppTemplate(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    language: str
    status: str  # APPROVED, PENDING, REJECTED, PAUSED, ...
    category: str
    body: str
    param_count: int
    buttons: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return self.status == "APPROVED"

    @classmethod
    def from_graph(cls, item: dict[str, Any]) -> WhatsAppTemplate:
        body = ""
        buttons: list[str] = []
        for component in item.get("components") or []:
            if not isinstance(component, dict):
                continue
            if component.get("type") == "BODY":
                body = str(component.get("text") or "")
            elif component.get("type") == "BUTTONS":
                buttons += [str(b.get("text")) for b in component.get("buttons") or [] if isinstance(b, dict)]
        return cls(
            name=str(item.get("name", "")),
            language=str(item.get("language", "")),
            status=str(item.get("status", "")),
            category=str(item.get("category", "")),
            body=body,
            param_count=len({m.group(1) for m in _PLACEHOLDER.finditer(body)}),
            buttons=tuple(buttons),
        )
