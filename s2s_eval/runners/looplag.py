"""How late the runner's own event loop wakes up: the floor under every latency it measures.

A task asks to sleep for `interval` again and again and records how much later than asked it woke. A busy loop
(too many sessions, a burst upload, a slow callback) shows up here before it shows up as latency error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import AsyncIterator
from typing import Any

from s2s_eval.graders.latency import describe
from s2s_eval.runners.tasks import background


class LoopLagMonitor:
    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.lag_ms = array("d")  # 8 bytes a sample: an hour at 100 Hz is under 3 MB

    async def _watch(self) -> None:
        while True:
            asked = time.perf_counter() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.lag_ms.append((time.perf_counter() - asked) * 1000)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLagMonitor]:
        """Watch while the block runs. Safe to cancel: the watcher stops and the cancellation propagates."""
        async with background(self._watch()):
            yield self

    def summary(self) -> dict[str, Any]:
        return {"interval_ms": self.interval_s * 1000, **describe(self.lag_ms)}
