"""One eval across the levels of one perturbation (e.g. noise at 30, 20 and 10 dB SNR): a run per level, one after
the other, each a normal run directory whose `spec.json` and records carry the perturbation and its level, so one
report over them can draw accuracy against the level.

The same samples, voices and noise draws are used at every level (the perturbation's random draws do not depend on
the level), so two levels differ only in the level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from s2s_eval import paths
from s2s_eval.datasets.perturb import UNITS, NoiseType, Perturbation
from s2s_eval.errors import UserError
from s2s_eval.runners.run import RunOptions, execute

__all__ = ["SweepLevel", "level_name", "perturbation_at", "sweep", "sweep_dir"]


@dataclass(frozen=True)
class SweepLevel:
    """One level's run."""

    level: float
    run_dir: Path
    summary: dict[str, Any]


def level_name(kind: str, level: float) -> str:
    """The run directory name of one level: `noise-30`, `rate-1.25`, `packet_loss-5`."""
    return f"{kind}-{level:g}"


def perturbation_at(kind: str, level: float, noise: NoiseType = "white", seed: int = 0) -> Perturbation:
    """The perturbation of one level; an impossible one (tempo 0, 120% loss) is one clear error."""
    if UNITS.get(kind, "") is None:
        raise UserError(f"{kind} has no level to sweep; use an eval spec with `perturb: {{kind: {kind}}}` instead")
    try:
        return Perturbation(kind=kind, level=level, noise=noise, seed=seed)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise UserError(f"--perturb {kind} --levels ...{level:g}: {exc.errors()[0]['msg']}") from None


def sweep_dir(options: RunOptions, kind: str) -> Path:
    """Default folder of a sweep's runs: runs/<time>-sweep-<model>-<eval>-<kind>."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return paths.home() / "runs" / f"{stamp}-sweep-{options.model}-{options.eval}-{kind}"


async def sweep(base: RunOptions, kind: str, levels: Sequence[float], out_root: Path, noise: NoiseType = "white",
                seed: int = 0, on_level: Callable[[SweepLevel], None] | None = None) -> list[SweepLevel]:
    """Run `base` once per level (in the given order) into `out_root/<kind>-<level>`; return every level's run.

    Every level is checked before the first run starts. Not safe to cancel mid-run beyond what `execute` is: an
    interrupted level is resumable with `s2s-eval run --resume --out <its directory>`.
    """
    if not levels:
        raise UserError("--levels: give at least one level")
    plans = [(level, perturbation_at(kind, level, noise, seed)) for level in levels]
    names = [level_name(kind, level) for level in levels]
    if len(set(names)) != len(names):
        raise UserError(f"--levels: a level is repeated ({', '.join(names)})")
    finished = []
    for (level, perturbation), name in zip(plans, names, strict=True):
        run_dir, summary = await execute(replace(base, perturb=perturbation, out=out_root / name))
        result = SweepLevel(level, run_dir, summary)
        finished.append(result)
        if on_level is not None:
            on_level(result)
    return finished
