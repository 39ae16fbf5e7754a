"""How a run's sessions are laid out over time and processes, and the one place finished samples are journaled.

A run has `concurrency` session slots. Paced runs start them spread over `STAGGER_S`, not all in one instant. With
`--workers N` the slots are dealt round-robin to N processes (`split`): worker k holds slots k, k + N, k + 2N, ...
and starts each at the moment that slot would start in one process, so the run's start-up load is the same whatever
N is. Samples are dealt round-robin too, like shards. Whatever runs the sessions, the parent process journals each
finished sample (`Progress`): one writer per journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from s2s_eval.log import Journal, SampleRecord

__all__ = ["STAGGER_S", "Progress", "SlotPlan", "split"]

STAGGER_S = 1.0  # paced sessions start spread over this window, not all in the same instant


@dataclass(frozen=True)
class SlotPlan:
    """The session slots one process holds: `count` of the run's `total`, the first at `first`, then every `step`."""

    count: int
    total: int
    first: int = 0
    step: int = 1

    @classmethod
    def whole(cls, concurrency: int) -> SlotPlan:
        """Every slot of the run, in one process."""
        return cls(count=concurrency, total=concurrency)

    def start_delay_s(self, local: int) -> float:
        """When this process's `local`-th slot starts in a paced run: its place among all the run's slots."""
        return STAGGER_S * (self.first + local * self.step) / self.total


def split(concurrency: int, n_samples: int, workers: int) -> list[SlotPlan]:
    """The slots of each worker process. No more workers than slots or samples: an idle process helps nobody."""
    n = max(1, min(workers, concurrency, n_samples))
    return [SlotPlan(count=len(range(k, concurrency, n)), total=concurrency, first=k, step=n) for k in range(n)]


class Progress:
    """Journals each finished sample as it arrives (flushed before it counts as done) and shows the progress bar."""

    def __init__(self, journal: Journal, total: int, description: str, enabled: bool) -> None:
        self.journal = journal
        self.bar = tqdm(total=total, desc=description, unit="sample", disable=not enabled)
        self.counts = {"ok": 0, "error": 0, "correct": 0}

    def add(self, record: SampleRecord, limit: Any) -> None:
        """`limit`: the concurrency limit now in force (lowered by rate limits), shown beside the counts."""
        self.journal.append(record)
        self.counts[record.status] += 1
        self.counts["correct"] += bool(record.correct)
        self.bar.set_postfix(errors=self.counts["error"], correct=self.counts["correct"], limit=limit, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
