"""The sign-in brake holds across gateways: failures counted on one gateway count on the others (Redis)."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from gateway.demo import ADMIN_EMAIL
from tests.gateway.test_web_api import Browser
from tests.harness import ManualClock, start_gateway


async def test_password_guesses_spread_over_two_gateways_meet_one_limit(tmp_path: Path, redis_db: str):
    clock = ManualClock()
    cluster = {"redis_url": redis_db}  # both gateways share the SQLite file in tmp_path and the Redis
    a = await start_gateway(tmp_path, clock=clock, settings=cluster)
    b = await start_gateway(tmp_path, clock=clock, settings=cluster)
    on_a, on_b = Browser(a), Browser(b)
    try:
        for attempt in range(10):  # five wrong passwords on each gateway: neither sees ten by itself
            status, _ = await (on_a if attempt % 2 else on_b).sign_in(password="not-the-password")
            assert status == 401
        for browser in (on_a, on_b):
            status, body = await browser.sign_in()
            assert status == 429 and body["error"]["code"] == "too_many_attempts"
            assert 0 < body["error"]["details"]["retry_after"] <= 15 * 60 + 1

        redis = Redis.from_url(redis_db)
        try:
            keys = [key.decode() for key in await redis.keys("switchboard:sign-in:*")]
        finally:
            await redis.aclose()
        assert len(keys) == 2  # one for the email, one for the client address ...
        assert not any(ADMIN_EMAIL in key or "127.0.0.1" in key for key in keys)  # ... both hashed

        clock.advance(minutes=16)
        status, body = await on_a.sign_in()
        assert status == 200, body
    finally:
        await on_b.close()
        await on_a.close()
        await b.close()
        await a.close()
