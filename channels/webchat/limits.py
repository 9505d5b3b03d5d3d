"""Sliding-window rate limits per visitor and per client IP, on an injected clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds for each key. Memory: the recent hits only."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], datetime], max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def hit(self, key: str) -> float | None:
        """Count one hit; None if allowed, else the seconds until the next one would be."""
        now = self._clock().timestamp()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(0.0, hits[0] + self.window - now)
        hits.append(now)
        return None

    def blocked_for(self, key: str) -> float | None:
        """Like ``hit`` without counting: None if a hit would be allowed now."""
        now = self._clock().timestamp()
        hits = [h for h in self._hits.get(key, ()) if h > now - self.window]
        if len(hits) >= self.limit:
            return max(0.0, hits[0] + self.window - now)
        return None

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
