"""Graders turn a model's answer into a `Grade`. One registry maps an eval's grader name to its function."""

from __future__ import annotations

from collections.abc import Callable

from s2s_eval.datasets.sample import Sample
from s2s_eval.errors import UserError
from s2s_eval.graders.base import Grade

Grader = Callable[[Sample, str | None], Grade]


def get_grader(name: str) -> Grader:
    """The grading function registered under `name`."""
    from s2s_eval.graders import big_bench_audio

    graders: dict[str, Grader] = {"big_bench_audio": big_bench_audio.grade}
    if name not in graders:
        raise UserError(f"unknown grader {name!r}; available: {', '.join(graders)}")
    return graders[name]


__all__ = ["Grade", "Grader", "get_grader"]
