"""Failed sign-ins counted per key (an email, a client address) over a sliding window, on the clock.

Embedded there is one process, so the count lives in memory. Scaled out (SWITCHBOARD_REDIS_URL) every
gateway counts into the same Redis sorted set, so a guesser spreading attempts over the gateways behind
a load balancer meets the same limit as one talking to a single process.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from redis.asyncio import Redis

from channels.webchat.limits import RateLimiter

_LOGGER = logging.getLogger(__name__)

SIGN_IN_ATTEMPTS = 10  # failed sign-ins per key (email, client address) ...
SIGN_IN_WINDOW = 15 * 60  # ... per this many seconds

# KEYS[1] the key's set; ARGV: now, window (s), limit, a unique member. Counts the hit unless the key is
# already at the limit (like RateLimiter.hit), so waiting out the window always ends the block.
_HIT = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('zcard', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('zadd', KEYS[1], ARGV[1], ARGV[4])
end
redis.call('pexpire', KEYS[1], math.ceil(ARGV[2] * 1000))
return 1
"""

# KEYS[1]; ARGV: now, window, limit. The oldest hit's time while at the limit, else false (nil).
_OLDEST_IF_FULL = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[3]) then
  return redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')[2]
end
return false
"""


class SignInLimiter(Protocol):
    """Where failed sign-ins are counted."""

    async def blocked_for(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None if it may now."""
        ...

    async def hit(self, key: str) -> None:
        """Count one failure for ``key``."""
        ...

    async def close(self) -> None: ...


class LocalSignInLimiter:
    """In this process's memory (embedded mode)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], datetime]) -> None:
        self._limiter = RateLimiter(limit, window, clock)

    async def blocked_for(self, key: str) -> float | None:
        return self._limiter.blocked_for(key)

    async def hit(self, key: str) -> None:
        self._limiter.hit(key)

    async def close(self) -> None:
        return None


class RedisSignInLimiter:
    """In Redis, shared by every gateway. Keys are hashed: no email address is stored in Redis."""

    def __init__(
        self,
        redis_url: str,
        limit: int,
        window: float,
        clock: Callable[[], datetime],
        *,
        prefix: str = "switchboard:sign-in:",
    ) -> None:
        self._url = redis_url
        self._limit = limit
        self._window = window
        self._clock = clock
        self._prefix = prefix
        self._redis: Redis | None = None

    def _client(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(self._url, health_check_interval=30)
        return self._redis

    def _key(self, key: str) -> str:
        return self._prefix + hashlib.sha256(key.encode()).hexdigest()

    async def blocked_for(self, key: str) -> float | None:
        now = self._clock().timestamp()
        try:
            oldest = await self._client().eval(  # type: ignore[misc]
                _OLDEST_IF_FULL, 1, self._key(key), now, self._window, self._limit
            )
        except Exception as exc:
            # The password is still checked; only the brake is off while Redis is away.
            _LOGGER.warning("sign-in limiter: redis unavailable (%s); not limiting", exc)
            return None
        if oldest is None:
            return None
        return max(0.0, float(oldest) + self._window - now)

    async def hit(self, key: str) -> None:
        now = self._clock().timestamp()
        member = f"{now}:{secrets.token_hex(8)}"
        try:
            await self._client().eval(  # type: ignore[misc]
                _HIT, 1, self._key(key), now, self._window, self._limit, member
            )
        except Exception as exc:
            _LOGGER.warning("sign-in limiter: redis unavailable (%s); failure not counted", exc)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def sign_in_limiter(redis_url: str | None, clock: Callable[[], datetime]) -> SignInLimiter:
    """The shared limiter when scaled out, else the in-process one."""
    if redis_url:
        return RedisSignInLimiter(redis_url, SIGN_IN_ATTEMPTS, SIGN_IN_WINDOW, clock)
    return LocalSignInLimiter(SIGN_IN_ATTEMPTS, SIGN_IN_WINDOW, clock)
