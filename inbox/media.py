"""Content-addressed file storage for attachments (a local folder; S3-compatible later, same interface)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path


class MediaStore:
    """Files are named by the SHA-256 of their bytes, so storing the same file twice is free."""

    def __init__(self, root: Path, max_bytes: int = 25 * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError("bad media key")
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        if len(data) > self.max_bytes:
            raise ValueError(f"file of {len(data)} bytes is over the {self.max_bytes}-byte limit")
        key = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, key, data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path_of(key).read_bytes)
