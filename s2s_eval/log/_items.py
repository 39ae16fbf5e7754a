"""`items.jsonl`: the samples a run asked, as asked (question, history, tools, target, grader material).

Written when a run starts (and extended by a resume that selects more), so that re-grading needs only the run
directory: no dataset, no network, no adapter. The target and the grader's material are here, as they are in each
record's `target`: a run directory is the evaluator's, never the model's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from s2s_eval.datasets.sample import Message, Sample, Scenario
from s2s_eval.errors import DataError

ITEMS = "items.jsonl"


def read_items(run_dir: Path) -> dict[str, Sample]:
    """The samples a run recorded, by id (empty when the run predates `items.jsonl`)."""
    path = Path(run_dir) / ITEMS
    if not path.exists():
        return {}
    items = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # torn by a crash mid-write: the next run start writes it again
            try:
                data = json.loads(line)
                scenario = data.get("scenario")
                sample = Sample(**{**data, "history": tuple(Message(**m) for m in data.get("history", ())),
                                   "tools": tuple(data.get("tools", ())),
                                   "scenario": None if scenario is None else Scenario(
                                       **{**scenario, "parts": tuple(scenario["parts"])})})
            except (json.JSONDecodeError, TypeError) as exc:
                raise DataError(f"{path}:{number}: not a recorded sample ({exc})") from None
            items[sample.sample_id] = sample
    return items


def write_items(run_dir: Path, samples: Iterable[Sample]) -> None:
    """Append the samples not recorded yet, flushed before the run asks any of them."""
    known = read_items(run_dir)
    path = Path(run_dir) / ITEMS
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with path.open("r+b") as f:  # drop a torn last line
            data = f.read()
            f.seek(0)
            f.truncate()
            f.write(data[: data.rfind(b"\n") + 1])
    with path.open("a", encoding="utf-8") as f:
        for sample in samples:
            if sample.sample_id not in known:
                f.write(json.dumps(dataclasses.asdict(sample), ensure_ascii=False, default=str) + "\n")
        f.flush()
