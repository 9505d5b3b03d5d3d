"""Splitting long texts into Telegram-sized messages on word boundaries."""

from __future__ import annotations

# sendMessage takes 1-4096 characters of text (Bot API, sendMessage); captions 0-1024.
MAX_TEXT = 4096
MAX_CAPTION = 1024


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units, so an emoji outside the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` UTF-16 units, breaking at whitespace when one is
    in reach; a word longer than the limit is cut where it must. Whitespace at the cuts is dropped (Telegram
    trims it anyway); chunks are never empty. Blank text gives no chunks.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            chunks.append(rest)
            break
        cut = _prefix_fitting(rest, limit)
        space = _last_space(rest, cut)
        if space > 0:
            cut = space
        head = rest[:cut].rstrip()
        chunks.append(head)
        rest = rest[cut:].lstrip()
    return chunks


def _prefix_fitting(text: str, limit: int) -> int:
    """The largest n such that text[:n] fits in ``limit`` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _last_space(text: str, cut: int) -> int:
    """Index of the last whitespace that a chunk may end before, or -1: prefer breaking after a word.

    ``text[cut]`` being whitespace means the chunk ends exactly at a word's end.
    """
    if cut < len(text) and text[cut].isspace():
        return cut
    for index in range(cut - 1, 0, -1):
        if text[index].isspace():
            return index
    return -1
