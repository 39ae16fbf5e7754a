"""When to try a failed sample again, how long to wait, and how many sessions may run at once.

Only transient and rate-limited failures are retried (see `errors.py`). Waits grow exponentially with "equal
jitter" (half fixed, half random) drawn from a stream seeded by the run seed, the sample and the attempt, so a
rerun with the same seed waits the same. A rate limit halves the allowed concurrency and pauses new sessions until
the server's hint has passed; successes grow it back one step at a time (AIMD, as TCP does). As TCP halves once per
round trip, the limit halves once per generation of sessions: the rate limits of sessions that started before the
last cut were caused by the old limit and do not cut it again (else one burst takes 8 down to 1 at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from s2s_eval.runners.errors import TurnError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    seed: int = 0

    def should_retry(self, error: TurnError, attempt: int) -> bool:
        return error.error_class != "fatal" and attempt < self.max_attempts

    def backoff_s(self, sample_id: str, attempt: int, error: TurnError) -> float:
        """Wait before attempt `attempt + 1`: the server's hint when it gave one, else jittered exponential."""
        rng = random.Random(f"{self.seed}|{sample_id}|{attempt}")
        if error.error_class == "rate_limited" and error.retry_after_s:
            return error.retry_after_s * (1 + rng.uniform(0, 0.2))  # spread the herd a little past the reset
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class AdaptiveLimiter:
    """A concurrency limit that halves on rate limits and grows back by one per `limit` successes."""

    def __init__(self, limit: int) -> None:
        self.max_limit = limit
        self.limit = limit
        self.active = 0
        self.lowest = limit
        self.paused_until = 0.0
        self.generation = 0  # counts cuts; a session remembers the generation it started in
        self._successes = 0
        self._changed = asyncio.Condition()
        self._wakers: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one session slot for the duration; yields the generation it started in. Safe to cancel while
        waiting."""
        async with self._changed:
            while True:
                pause = self.paused_until - time.monotonic()
                if pause <= 0 and self.active < self.limit:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), pause if pause > 0 else None)
            self.active += 1
        try:
            yield self.generation
        finally:
            async with self._changed:
                self.active -= 1
                self._changed.notify_all()

    def rate_limited(self, retry_after_s: float | None, generation: int | None = None) -> None:
        """A session was rate-limited. `generation`: the one its slot started in (None: always cut)."""
        if generation is None or generation == self.generation:
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.generation += 1
        self._successes = 0
        if retry_after_s:
            self.paused_until = max(self.paused_until, time.monotonic() + retry_after_s)

    def succeeded(self) -> None:
        self._successes += 1
        if self.limit < self.max_limit and self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
            self._wake()

    def _wake(self) -> None:
        """Let waiters re-check a grown limit now, not at the next release (the notify needs the lock: a task)."""
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        try:
            task = asyncio.get_running_loop().create_task(notify())
        except RuntimeError:  # no running loop: nobody can be waiting
            return
        self._wakers.add(task)
        task.add_done_callback(self._wakers.discard)
