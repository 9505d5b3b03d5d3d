"""What a file is (its first bytes say, not its name) and what a channel accepts to send.

Shared by the adapters and the gateway's upload check, so a file refused at upload is the file the
adapter would have refused, and the agent hears it before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
)

OCTET_STREAM = "application/octet-stream"
ANY_TYPE = "*"


def sniff(data: bytes) -> str | None:
    """The content type the bytes show, or None when they match nothing we recognize."""
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


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{max(n // 1024, 1)} KB"


@dataclass(frozen=True)
class MediaLimits:
    """The files one outgoing message may carry on a channel: how many, which types, how large.

    ``sizes`` maps a content type to its largest size in bytes; ``ANY_TYPE`` covers every other type
    (without it, other types are refused). ``max_total`` caps the files together (a mail's size).
    """

    channel: str  # the channel's name in messages: "WhatsApp"
    max_files: int
    sizes: Mapping[str, int]
    max_total: int | None = None

    def problem(self, files: Sequence[tuple[str, int]]) -> str | None:
        """Why these (content type, size) files cannot go in one message, naming the limit; else None."""
        if len(files) > self.max_files:
            return (
                f"{self.channel} takes at most {self.max_files} file(s) per message; "
                f"this message has {len(files)}"
            )
        for content_type, size in files:
            limit = self.sizes.get(content_type, self.sizes.get(ANY_TYPE))
            if limit is None:
                kinds = ", ".join(sorted(k for k in self.sizes if k != ANY_TYPE))
                return f"{self.channel} does not take {content_type} files (it takes {kinds})"
            if size > limit:
                return (
                    f"{self.channel} takes {content_type} files of at most {_size(limit)}; "
                    f"this one is {_size(size)}"
                )
        total = sum(size for _, size in files)
        if self.max_total is not None and total > self.max_total:
            return (
                f"{self.channel} takes at most {_size(self.max_total)} of files per message; "
                f"these are {_size(total)}"
            )
        return None
