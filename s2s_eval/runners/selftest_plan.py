"""What `selftest` will run, decided before anything starts: the levels, their session counts and an estimate of
the duration. Kept free of I/O and of heavy imports, so `s2s-eval --help` can state the rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from s2s_eval.runners.client import Pace

CLIP_S = 2.0  # the question, cut or padded to this length: the naive client's 2 s of the measurement notes
MIN_SESSIONS = 20  # a level's floor: fewer TTFA samples say little about a p99
SESSION_OVERHEAD_S = 0.15  # connect, configure and the answer's frames, beyond the clip and the delay (estimate)
SERVER_START_S = 5.0  # server start-up per event loop, and the first synthesis of the question (estimate)
Client = Literal["s2s-eval", "naive"]
SESSIONS_RULE = (f"a level of concurrency C runs max(C, min(N, max({MIN_SESSIONS}, 2C))) sessions: twice C, at least "
                 f"{MIN_SESSIONS}, at most N (--sessions), never fewer than C")


def sessions_for_level(concurrency: int, cap: int) -> int:
    """Sessions a level runs (see SESSIONS_RULE): enough for a p99, yet c=1 stays short whatever the cap."""
    return max(concurrency, min(cap, max(MIN_SESSIONS, 2 * concurrency)))


@dataclass(frozen=True)
class Level:
    """One row of the table: which client, how uploads are paced, how many sessions at once and in all."""

    client: Client
    pace: Pace
    concurrency: int
    sessions: int


def plan_levels(loads: Sequence[tuple[Pace, int]], cap: int, clients: Sequence[Client]) -> list[Level]:
    """Each (pace, concurrency) load for each client, back to back (the clients of one load are adjacent)."""
    return [Level(client, pace, c, sessions_for_level(c, cap)) for pace, c in loads for client in clients]


def estimate_s(levels: Sequence[Level], delay_ms: float, n_loops: int = 1) -> float:
    """Expected duration on an idle machine: each session lasts its upload (the clip, when paced), the delay and an
    overhead; a level runs ceil(sessions / concurrency) of them one after another, after a paced level's stagger."""
    from s2s_eval.runners.run import STAGGER_S  # noqa: PLC0415 (run.py is heavy; --help reads this module)

    total = 0.0
    for level in levels:
        session_s = (CLIP_S if level.pace == "realtime" else 0.0) + delay_ms / 1000 + SESSION_OVERHEAD_S
        stagger_s = STAGGER_S if level.pace == "realtime" and level.concurrency > 1 else 0.0
        total += math.ceil(level.sessions / level.concurrency) * session_s + stagger_s
    return n_loops * (total + SERVER_START_S)
