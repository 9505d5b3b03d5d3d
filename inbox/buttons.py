"""Buttons per channel kind: native where the channel has them, numbered text elsewhere (bots, surveys).

WhatsApp reply buttons: at most 3, titles at most 20 characters (Cloud API interactive ``button``);
more or longer become numbered text. Telegram inline keyboards and the web chat's quick replies take
any reasonable list. Email and the loopback test channel have no buttons.
"""

from __future__ import annotations

from inbox.folding import fold
from inbox.model import ChannelKind

_NATIVE: dict[str, tuple[int, int]] = {  # kind → (max buttons, max title length)
    ChannelKind.WHATSAPP: (3, 20),
    ChannelKind.TELEGRAM: (10, 64),
    ChannelKind.WEBCHAT: (10, 40),
}


def render(kind: str, text: str | None, labels: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """The text and native buttons to send for ``labels`` on a channel of ``kind``."""
    if not labels:
        return text, ()
    limits = _NATIVE.get(kind)
    if limits is not None and len(labels) <= limits[0] and all(len(x) <= limits[1] for x in labels):
        return text, tuple(labels)
    numbered = "\n".join(f"{i}. {label}" for i, label in enumerate(labels, start=1))
    prompt = "Reply with the number of your choice."
    return "\n\n".join(x for x in (text, numbered, prompt) if x), ()


def chosen(labels: list[str], answer: str) -> int | None:
    """Index of the button the contact picked: its label (any case, accents) or its number."""
    folded = fold(answer).strip(" .!)")
    for i, label in enumerate(labels):
        if fold(label) == folded:
            return i
    if folded.isdecimal() and 1 <= int(folded) <= len(labels):
        return int(folded) - 1
    return None
