"""Folding text for matching the way people expect: case- and accent-insensitive, word by word."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Case-fold, strip accents and collapse whitespace: ``"  Ação  já "`` → ``"acao ja"``."""
    # Decompose first so compatibility forms fold too ("℠" → "sm"), then again after case-folding.
    return " ".join(strip_accents(unicodedata.normalize("NFKD", text).casefold()).split())


def words(text: str) -> list[str]:
    """The folded words of ``text`` (letters and digits; punctuation dropped)."""
    return _WORD.findall(fold(text))
