"""Checking a visitor's upload: the size, and the type as the file's own first bytes say it.

The browser's Content-Type and the file name are the visitor's claims; only the magic bytes count.
"""

from __future__ import annotations

import re

from inbox.model import Attachment

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
)


class UploadRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sniff(data: bytes) -> str | None:
    """The content type the bytes show, or None when they match nothing we accept."""
    for magic, offset, kind in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 4096th byte is still text.
        try:
            text = data[:4093].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if "\x00" in text:
        return None
    return "text/plain"


def safe_filename(name: str | None) -> str:
    base = (name or "file").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .") or "file"
    return base[:120]


def check_upload(data: bytes, filename: str | None, max_bytes: int, allowed: tuple[str, ...]) -> Attachment:
    """An Attachment carrying the bytes (the pipeline stores them), or UploadRefused."""
    if not data:
        raise UploadRefused("empty_file", "the file is empty")
    if len(data) > max_bytes:
        raise UploadRefused("file_too_large", f"files may be at most {max_bytes // 1024} KiB")
    kind = sniff(data)
    if kind is None or kind not in allowed:
        raise UploadRefused("file_type_refused", "this type of file cannot be sent here")
    return Attachment(content_type=kind, filename=safe_filename(filename), size=len(data), data=data)
