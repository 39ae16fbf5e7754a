"""A task that runs beside a block of code, structured: it cannot outlive the block, and cancellation reaches both.

The hand-written alternative (`task.cancel()` then `await task` under `suppress(CancelledError)`) swallows a
cancellation of the *caller* that lands while it waits for the task to finish: the caller's task then ends as if
nothing had been asked of it, and whoever cancelled it (a TaskGroup shutting down a run, a timeout) waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run `coroutine` as a task while the block runs; cancel it when the block ends.

    Both live in one `asyncio.TaskGroup`: if the task fails, the block is cancelled and the task's exception is
    raised; if the block fails, the task is cancelled and the block's exception is raised. A lone exception leaves
    as itself, not wrapped in an `ExceptionGroup`, so callers catch what they always caught. Safe to cancel: a
    cancellation of the caller cancels the task too, waits for it, and propagates.
    """
    lone: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(coroutine)
            try:
                yield task
            finally:
                task.cancel()
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) > 1:
            raise
        lone = failed.exceptions[0]
    if lone is not None:
        raise lone  # outside the handler: its cause and context stay its own, not the group's
