"""``Coalescer``: calls of one loop turn share one run; calls during a run form the next; a bad item
fails alone (its caller gets the error, the others their results); a cancelled caller's batch still
answers everyone else."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from inbox.batching import Coalescer


class Doubler:
    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.gate: asyncio.Event | None = None  # a run waits here once it has started
        self.started = asyncio.Event()

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.runs.append(list(items))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if 13 in items:
            raise ValueError("unlucky")
        return [2 * i for i in items]


async def test_calls_of_one_turn_share_a_run_and_calls_during_a_run_form_the_next():
    run = Doubler()
    run.gate = asyncio.Event()
    doubled = Coalescer(run)
    first = [asyncio.create_task(doubled(i)) for i in (1, 2, 3)]
    await run.started.wait()
    later = [asyncio.create_task(doubled(i)) for i in (4, 5)]
    run.gate.set()
    assert await asyncio.gather(*first, *later) == [2, 4, 6, 8, 10]
    assert run.runs == [[1, 2, 3], [4, 5]]


async def test_a_bad_item_fails_alone():
    run = Doubler()
    doubled = Coalescer(run)
    results = await asyncio.gather(*(doubled(i) for i in (12, 13, 14)), return_exceptions=True)
    assert results[0] == 24 and results[2] == 28
    assert isinstance(results[1], ValueError)
    assert run.runs == [[12, 13, 14], [12], [13], [14]]


async def test_a_cancelled_caller_does_not_leave_the_others_unanswered():
    run = Doubler()
    run.gate = asyncio.Event()
    doubled = Coalescer(run)
    leader = asyncio.create_task(doubled(1))
    other = asyncio.create_task(doubled(2))
    await run.started.wait()
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    run.gate.set()
    assert await other == 4
    assert run.runs == [[1, 2]]


async def test_batches_are_bounded():
    run = Doubler()
    doubled = Coalescer(run, max_batch=2)
    assert await asyncio.gather(*(doubled(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert [len(r) for r in run.runs] == [2, 2, 1]
