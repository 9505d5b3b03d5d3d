"""A hung test fails by name and says where it waits.

pytest-timeout (``timeout`` in pyproject.toml, ``signal`` method) fails a test that runs too long and
prints the other threads' stacks. For our asyncio tests that is not enough: a hung test's event loop
sits idle in ``select()``, so the main thread's stack names nothing. This hook prints, before the
failure, every task of the loop with its chain of awaits down to the innermost frame and what that
frame waits on, e.g. ``MailQueue.stop -> await self._task`` then the mail task's own chain.

Imported into tests/conftest.py, which makes pytest register the hook.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import signal
import sys
import threading
import traceback
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest


def _frame_of(awaitable: Any) -> FrameType | None:
    for attr in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(awaitable, attr, None)
        if frame is not None:
            return frame
    return None


def _awaited_by(awaitable: Any) -> Any:
    """What a suspended coroutine / generator / async generator is waiting on, if it can be told."""
    for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
        inner = getattr(awaitable, attr, None)
        if inner is not None:
            return inner
    if _frame_of(awaitable) is not None:
        return None
    # Wrappers without attributes (an async generator's ``asend`` object, as ``async with`` on an
    # @asynccontextmanager awaits) still hold the generator they drive.
    for ref in gc.get_referents(awaitable):
        if _frame_of(ref) is not None:
            return ref
    return None


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    """The task's awaits, outermost first, as ``file:line in function`` plus the source line."""
    lines: list[str] = []
    awaitable: Any = task.get_coro()
    for _ in range(200):  # a bound, not a limit anyone should reach
        if awaitable is None:
            break
        frame = _frame_of(awaitable)
        if frame is not None:
            code = frame.f_code
            lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_qualname}')
            source = linecache.getline(code.co_filename, frame.f_lineno).strip()
            if source:
                lines.append(f"    {source}")
        awaitable = _awaited_by(awaitable)
    waiter = getattr(task, "_fut_waiter", None)  # the future the task is blocked on (CPython)
    if waiter is not None:
        lines.append(f"  waiting on {waiter!r}")
    return lines


def describe_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """Every task of ``loop`` with its await chain: what a hung test is waiting for."""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    # Idle workers share one chain (16 job workers on queue.get()): print each chain once.
    chains: dict[tuple[str, ...], list[str]] = {}
    for task in tasks:
        name = f"{task.get_name()!r}{' (cancelling)' if task.cancelling() else ''}"
        chains.setdefault(tuple(await_chain(task)), []).append(name)
    out = [f"{len(tasks)} asyncio tasks in {loop!r}:"]
    for chain, names in chains.items():
        out.append(f"Task {', '.join(names)}:")
        out.extend(chain)
    return "\n".join(out)


def _driven_task(frame: FrameType | None) -> asyncio.Task[Any] | None:
    """The task ``run_until_complete`` is driving in the interrupted thread: the test's (or fixture's)."""
    while frame is not None:
        if frame.f_code.co_name == "run_until_complete":
            future = frame.f_locals.get("future")
            if isinstance(future, asyncio.Task):
                return future
        frame = frame.f_back
    return None


@pytest.hookimpl(wrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Generator[None, Any, Any]:
    """After pytest-timeout armed its SIGALRM timer, put the task dump in front of its handler."""
    result = yield
    fail = signal.getsignal(signal.SIGALRM)
    if threading.current_thread() is not threading.main_thread() or not callable(fail):
        return result  # the thread method: pytest-timeout's thread dump, then it exits

    def dump_tasks_then_fail(signum: int, frame: FrameType | None) -> None:
        try:
            loop = asyncio.get_running_loop()  # the signal interrupts the loop's own thread
        except RuntimeError:  # a sync test, or between tests: pytest-timeout's dump is all there is
            loop = None
        if loop is not None:
            stuck = _driven_task(frame)
            terminal = item.config.get_terminal_writer()
            terminal.sep("+", title=f"asyncio tasks of {item.nodeid}")
            if stuck is not None:
                terminal.write(f"The test (or fixture) runs as task {stuck.get_name()!r}.\n")
            try:
                terminal.write(describe_tasks(loop) + "\n")
            except Exception:  # the dump must never stop the failure
                traceback.print_exc()
            terminal.flush()
            sys.stderr.flush()
            if stuck is not None:
                # pytest-timeout's exception leaves the loop, not the test: without this cancel the
                # hung test would go on in the background of the next tests (the loop is shared).
                loop.call_soon_threadsafe(stuck.cancel)
        fail(signum, frame)

    signal.signal(signal.SIGALRM, dump_tasks_then_fail)
    return result
