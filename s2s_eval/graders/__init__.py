"""Graders turn what a model did in a session into a `Grade`. One registry maps an eval's grader name to one.

A grader may keep per-attempt state while the session runs (`episode`: e.g. ComplexFuncBench answers each function
call with its golden observation and records how the calls matched), then grades the finished attempt (`grade`,
async because an LLM judge may be asked). Rule graders that only read the final transcript are plain functions
`(sample, text) -> Grade`, wrapped by `RuleGrader`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from s2s_eval.datasets.sample import Sample
from s2s_eval.errors import UserError
from s2s_eval.graders.base import Grade

RuleGrade = Callable[[Sample, str | None], Grade]


class Episode(Protocol):
    """Per-attempt state a grader keeps while the session runs."""

    def on_function_call(self, name: str, call_id: str, arguments: str) -> str:
        """The output to send back for one function call the model made."""
        ...


@dataclass(frozen=True)
class Answer:
    """What a grader sees of one finished attempt."""

    text: str  # the model's transcript of its final answer
    responses: list[Any] = field(default_factory=list)  # ResponseObservation of every response, in order
    episode: Episode | None = None
    dynamics: Any = None  # full-duplex scenarios: the `Dynamics` the session measured (runners/duplex.py)


@dataclass(frozen=True)
class GradeContext:
    """What graders share across a run: the LLM judge and the transcription backend, when configured (else None)."""

    judge: Any | None = None
    transcriber: Any | None = None


class Grader(Protocol):
    def episode(self, sample: Sample) -> Episode | None: ...

    async def grade(self, sample: Sample, answer: Answer, context: GradeContext) -> Grade: ...


@dataclass(frozen=True)
class RuleGrader:
    """A grader that reads only the final transcript."""

    rule: RuleGrade

    def episode(self, sample: Sample) -> Episode | None:
        return None

    async def grade(self, sample: Sample, answer: Answer, context: GradeContext) -> Grade:
        return self.rule(sample, answer.text)


# Bump a grader's version when its rules change what it decides: runs graded by different versions are not
# compared like for like (compare flags them), and `regrade` records which version produced each grade.
GRADER_VERSIONS = {"big_bench_audio": "1", "big_bench_audio_judge": "1", "multichallenge": "1",
                   "complexfuncbench": "1", "turn_taking": "1"}


def grader_version(name: str) -> str | None:
    """The version of the grader registered under `name` (None for a name this harness does not know)."""
    return GRADER_VERSIONS.get(name)


def get_grader(name: str) -> Grader:
    """The grader registered under `name`."""
    from s2s_eval.graders import big_bench_audio, big_bench_audio_judge, complexfuncbench, multichallenge, turn_taking

    graders: dict[str, Grader] = {"big_bench_audio": RuleGrader(big_bench_audio.grade),
                                  "big_bench_audio_judge": big_bench_audio_judge.ExtractJudgeGrader(),
                                  "multichallenge": multichallenge.MultiChallengeGrader(),
                                  "complexfuncbench": complexfuncbench.ComplexFuncBenchGrader(),
                                  "turn_taking": turn_taking.TurnTakingGrader()}
    if name not in graders:
        raise UserError(f"unknown grader {name!r}; available: {', '.join(graders)}")
    return graders[name]


__all__ = ["GRADER_VERSIONS", "Answer", "Episode", "Grade", "GradeContext", "Grader", "RuleGrader", "get_grader",
           "grader_version"]
