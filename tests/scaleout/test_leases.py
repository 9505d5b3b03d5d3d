"""A leased task runs in one process of the cluster at a time and moves when its holder dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

import pytest

from gateway.leases import RedisLeases

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.leases import RedisLeases

    async def main():
        leases = RedisLeases(sys.argv[1], ttl=0.6)
        async def body():
            print("running", flush=True)
            await asyncio.Event().wait()
        leases.run_exclusive("poller:1", body)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_lease_moves_to_another_process_when_its_holder_is_killed(redis_db: str):
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, redis_db, stdout=asyncio.subprocess.PIPE, cwd=os.getcwd()
    )
    leases = RedisLeases(redis_db, ttl=0.6)
    started = asyncio.Event()

    async def body() -> None:
        started.set()
        await asyncio.Event().wait()

    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"running\n"
        ours = leases.run_exclusive("poller:1", body)
        # While the holder lives and renews (every 0.2 s), we never get it: 5 lease lifetimes.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ours.held.wait(), 3.0)
        assert not started.is_set()

        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        await asyncio.wait_for(started.wait(), 5)  # expiry (0.6 s) plus one try interval
        assert ours.held.is_set()
        assert await leases.owner("poller:1") is not None

        # A clean stop lets go at once, and the body is cancelled.
        await ours.stop()
        assert await leases.owner("poller:1") is None
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await leases.close()
