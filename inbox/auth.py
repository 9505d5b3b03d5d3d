"""Passwords (argon2) and API tokens (random, stored only as a SHA-256 digest)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # stateless parameters object, no I/O

TOKEN_PREFIX = "sb_"


def hash_password(password: str) -> str:
    return str(_HASHER.hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of a token. Lookup is by digest, so no stored secret is ever compared."""
    return hashlib.sha256(token.encode()).hexdigest()
