"""The unit every adapter produces and every runner consumes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def round_robin(groups: Iterable[Sequence[T]]) -> list[T]:
    """The first of each group, then the second of each, ...: any prefix (a --limit) covers every group evenly."""
    groups = list(groups)
    longest = max(len(group) for group in groups)
    return [group[i] for i in range(longest) for group in groups if i < len(group)]


@dataclass(frozen=True)
class Message:
    """A prior turn of a conversation, replayed before the spoken question."""

    role: Literal["user", "assistant", "system"]
    text: str


@dataclass(frozen=True)
class Scenario:
    """What the caller says, and when, in a full-duplex turn-taking scenario (the `turn_taking` eval).

    `parts` are spoken with `pause_ms` of silence between consecutive parts; `cue` (interruption or backchannel) is
    spoken into the model's answer once `cue_at_ms` of it has played. The runner streams all of it in real time.
    """

    parts: tuple[str, ...]
    pause_ms: int = 0
    cue: str | None = None
    cue_at_ms: int | None = None


@dataclass(frozen=True)
class Sample:
    """One benchmark item.

    `prompt_text` is the text that is spoken to the model (the last user turn); `history` the turns before it, which
    the runner injects as conversation items (user turns spoken, assistant turns as text, per the eval spec);
    `tools` the function tools the session offers (Realtime shape: type, name, description, parameters). `target`
    is the gold answer and `metadata` the grader's material (golden calls, judge questions): neither is ever sent
    to a server. `category` groups samples in reports.
    """

    sample_id: str
    eval: str
    category: str
    prompt_text: str
    target: str
    metadata: dict[str, Any] = field(default_factory=dict)
    history: tuple[Message, ...] = ()
    tools: tuple[dict[str, Any], ...] = ()
    scenario: Scenario | None = None  # full-duplex evals: the caller's script (sent as speech, never as text)
