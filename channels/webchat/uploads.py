"""Checking a visitor's upload: the size, and the type as the file's own first bytes say it.

The browser's Content-Type and the file name are the visitor's claims; only the magic bytes count.
"""

from __future__ import annotations

import re

from channels.media import sniff
from inbox.model import Attachment


class UploadRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
