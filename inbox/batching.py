"""Group commit for calls that arrive together: one ``run(items)`` (one transaction) for many callers.

Each caller awaits the result for its own item. The first caller of a quiet moment waits one loop turn
for the others of that turn; callers arriving while a batch runs form the next one (no timer: under
load the batches grow by themselves, alone a call costs one loop turn). If ``run`` raises, each item of
that batch is run again alone, so a bad item fails alone and its caller gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")

MAX_BATCH = 64


class Coalescer(Generic[I, R]):
    """``await coalescer(item)`` → ``run([... item ...])``'s result for that item."""

    def __init__(
        self, run: Callable[[Sequence[I]], Awaitable[Sequence[R]]], max_batch: int = MAX_BATCH
    ) -> None:
        self._run = run
        self._max = max_batch
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._lock = asyncio.Lock()
        self.batches = 0  # how many runs (with ``items``: the mean batch size, for benchmarks)
        self.items = 0

    async def __call__(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        async with self._lock:
            if not future.done():
                await asyncio.sleep(0)  # the others of this loop turn join the batch
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                if not batch:  # ours was taken by a batch whose caller was cancelled: it still runs
                    return await future
                # Its own task: a caller cancelled meanwhile does not leave the others unanswered.
                await asyncio.shield(asyncio.ensure_future(self._flush(batch)))
        return await future

    async def _flush(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item, future in batch:  # again one by one: only the bad one fails
                try:
                    (result,) = await self._run([item])
                except Exception as one:
                    _settle(future, one)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        except BaseException as exc:
            for _, future in batch:
                _settle(future, exc)
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _settle(future: asyncio.Future[R], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
