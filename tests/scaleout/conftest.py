from __future__ import annotations

import itertools

import pytest

_redis_dbs = itertools.count(1)


@pytest.fixture
def redis_db(redis_url: str) -> str:
    """A Redis database of its own for one test (the server is shared by the session)."""
    number = next(_redis_dbs)
    assert number < 16, "redis-server has 16 databases by default"
    return f"{redis_url.rsplit('/', 1)[0]}/{number}"
