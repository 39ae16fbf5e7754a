"""Dataset adapters: each turns an eval spec into `Sample`s. One registry maps adapter names to loaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from s2s_eval.datasets import big_bench_audio, complexfuncbench, multichallenge, turn_taking
from s2s_eval.datasets.sample import Sample
from s2s_eval.datasets.spec import EvalSpec
from s2s_eval.errors import UserError

Loader = Callable[[EvalSpec, Path | None], tuple[list[Sample], dict[str, Any]]]

ADAPTERS: dict[str, Loader] = {
    "big_bench_audio": big_bench_audio.load_samples,
    "multichallenge": multichallenge.load_samples,
    "complexfuncbench": complexfuncbench.load_samples,
    "turn_taking": turn_taking.load_samples,
}


def load_samples(spec: EvalSpec, data_dir: Path | None) -> tuple[list[Sample], dict[str, Any]]:
    """The samples of an eval and where they came from."""
    if spec.adapter not in ADAPTERS:
        raise UserError(f"eval {spec.name!r} names unknown adapter {spec.adapter!r}")
    return ADAPTERS[spec.adapter](spec, data_dir)


def select(samples: list[Sample], ids: list[str] | None, limit: int | None) -> list[Sample]:
    """Pick samples by id (in the given order) and/or the first `limit`; unknown ids are an error."""
    if ids:
        by_id = {s.sample_id: s for s in samples}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise UserError(f"unknown sample id(s): {', '.join(unknown[:5])}"
                            f"{' ...' if len(unknown) > 5 else ''} (e.g. {samples[0].sample_id})")
        samples = [by_id[i] for i in ids]
    return samples[:limit] if limit is not None else samples


__all__ = ["ADAPTERS", "EvalSpec", "Sample", "load_samples", "select"]
