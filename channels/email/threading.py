"""Threading helpers: subject normalization and signed per-conversation reply tokens.

RFC 5322 §3.6.4 threads by Message-ID; clients rewrite those (Outlook) or drop them, so replies also
carry a ``Reply-To`` of ``<local>+<token>@<domain>`` whose token names the conversation's thread key
and is HMAC-signed, so it can be checked without the database and cannot be forged to inject mail
into someone else's conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# Reply prefixes in the languages clients commonly use (Re, Aw, Sv, Antw, Odp, Vs, Ref, Rif, Res).
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|antw|odp|vs|ref|rif|res)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc|doorst)\s*:\s*", re.I)
_SIG_BYTES = 8  # 64-bit tag: forging needs ~2^63 online guesses


def normalize_subject(subject: str | None) -> str:
    """The subject without reply prefixes ("Re: AW: Re[2]: x" → "x"); forward prefixes stay."""
    text = " ".join((subject or "").split())
    while True:
        stripped = _REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def is_forward(subject: str | None) -> bool:
    return bool(_FORWARD_PREFIX.match(normalize_subject(subject)))


def reply_subject(subject: str | None) -> str:
    """``Re: `` exactly once in front of the normalized subject."""
    base = normalize_subject(subject)
    return f"Re: {base}" if base else "Re:"


def split_plus(address: str) -> tuple[str, str | None]:
    """``support+tok@example.org`` → (``support@example.org``, ``tok``); lower-cased."""
    local, _, domain = address.strip().lower().rpartition("@")
    base, plus, tag = local.partition("+")
    return f"{base}@{domain}", (tag if plus else None)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    text = text.upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


class ReplyTokens:
    """Makes and checks reply tokens. Base32, so a mail server that lower-cases the local part is fine."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"switchboard-reply-token\0" + secret.encode()).digest()

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def make(self, thread_key: str) -> str:
        payload = thread_key.encode()
        return f"{_b32(payload)}-{_b32(self._tag(payload))}"

    def verify(self, token: str) -> str | None:
        """The thread key the token names, or None when it is malformed or not ours."""
        body, dash, tag = token.partition("-")
        if not dash or not body or not tag:
            return None
        try:
            payload, given = _unb32(body), _unb32(tag)
            key = payload.decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(given, self._tag(payload)):
            return None
        return key

    def address(self, base_address: str, thread_key: str) -> str | None:
        """``local+token@domain``, or None when it would exceed RFC 5321's 64-octet local part."""
        local, _, domain = base_address.rpartition("@")
        full = f"{local}+{self.make(thread_key)}"
        return f"{full}@{domain}" if len(full) <= 64 else None


def new_thread_key(sender: str, root_message_id: str) -> str:
    """Thread key of a new email conversation: per sender and thread root, so two contacts answering
    the same newsletter get two conversations. Short, so it fits in a reply token."""
    digest = hashlib.sha256(f"{sender.lower()}\0{root_message_id}".encode()).hexdigest()
    return f"m:{digest[:20]}"
