"""Turn-taking scenarios: pauses, interruptions, backchannels and turn-end latency, from a scenario file.

The file (YAML, documented in its header; the built-in one is `evals/scenarios/turn_taking.yaml`) is authored for
this project, not a published dataset. `source.scenarios` names it: an absolute path, or one relative to the folder
of the eval spec that names it (the built-in evals folder for built-in specs). Sample ids are the scenarios' `id`s;
categories are `pause`, `interruption`, `backchannel` and `turn_end`. `--limit N` takes scenarios round-robin across
the categories. A malformed file stops with one line naming the scenario and the field.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from s2s_eval import paths
from s2s_eval.datasets.sample import Sample, Scenario, round_robin
from s2s_eval.datasets.spec import EvalSpec
from s2s_eval.errors import DataError

CATEGORIES = ("pause", "interruption", "backchannel", "turn_end")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    category: Literal["pause", "interruption", "backchannel", "turn_end"]
    say: str | list[str]
    pause_ms: int = Field(default=0, ge=0)
    cue: str | None = None
    cue_at_ms: int | None = Field(default=None, ge=0)
    expect_any: list[str] = []

    @model_validator(mode="after")
    def _fits_category(self) -> _Row:
        parts = [self.say] if isinstance(self.say, str) else self.say
        if not parts or not all(p.strip() for p in parts):
            raise ValueError("`say` needs non-empty text")
        cued = self.category in ("interruption", "backchannel")
        article = "an" if self.category == "interruption" else "a"
        if cued and (not self.cue or self.cue_at_ms is None):
            raise ValueError(f"{article} {self.category} scenario needs `cue` and `cue_at_ms`")
        if not cued and (self.cue or self.cue_at_ms is not None or self.expect_any):
            raise ValueError(f"{article} {self.category} scenario takes no `cue`, `cue_at_ms` or `expect_any`")
        if self.category == "pause" and (len(parts) < 2 or not self.pause_ms):
            raise ValueError("a pause scenario needs at least two `say` parts and a `pause_ms`")
        return self


def scenario_file(spec: EvalSpec) -> Path:
    """Where the eval's scenarios are."""
    name = spec.source.get("scenarios")
    if not name:
        raise DataError(f"eval {spec.name!r}: source.scenarios must name a scenario file")
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    user = paths.user_registry("evals")
    if user is not None and (user / path).is_file():
        return user / path
    return paths.builtin("evals") / path


def _rows(path: Path) -> list[_Row]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the scenario file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    entries = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a top-level `scenarios:` list")
    rows: list[_Row] = []
    for index, entry in enumerate(entries):
        where = f"{path}: scenario {index + 1}" + (f" ({entry['id']})" if isinstance(entry, dict) and "id" in entry
                                                   else "")
        try:
            rows.append(_Row.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            # A rule across fields (the validator below) has no location: its sentence names the fields itself.
            message = error["msg"].removeprefix("Value error, ")
            raise DataError(f"{where}: {field + ': ' if field else ''}{message}") from None
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise DataError(f"{path}: scenario id {row.id!r} appears twice")
        seen.add(row.id)
    return rows


def _sample(row: _Row, spec: EvalSpec) -> Sample:
    parts = (row.say,) if isinstance(row.say, str) else tuple(row.say)
    if row.pause_ms > (spec.duplex.max_pause_ms if spec.duplex else 0):
        raise DataError(f"scenario {row.id}: pause_ms {row.pause_ms} is longer than the eval's max_pause_ms: a model "
                        "may rightly take its turn in such a pause")
    return Sample(sample_id=row.id, eval=spec.name, category=row.category, prompt_text=" ".join(parts), target="",
                  metadata={"expect_any": row.expect_any} if row.expect_any else {},
                  scenario=Scenario(parts=parts, pause_ms=row.pause_ms, cue=row.cue, cue_at_ms=row.cue_at_ms))


def load_samples(spec: EvalSpec, data_dir: Path | None) -> tuple[list[Sample], dict[str, Any]]:
    """The scenarios of the eval's file, round-robin across categories (data_dir is not used: the file is ours)."""
    if spec.duplex is None:
        raise DataError(f"eval {spec.name!r}: the turn_taking adapter needs a `duplex:` section")
    path = scenario_file(spec)
    rows = _rows(path)
    samples = [_sample(row, spec) for row in rows]
    groups = [[s for s in samples if s.category == c] for c in CATEGORIES]
    source = {"kind": "scenario file", "path": str(path),
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "scenarios": len(samples)}
    return round_robin([g for g in groups if g]), source
