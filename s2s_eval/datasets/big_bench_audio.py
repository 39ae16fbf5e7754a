"""Big Bench Audio: the four Big-Bench-Hard tasks that Artificial Analysis asks aloud (250 questions each).

Loaded with Hugging Face `datasets` from a local data directory (`big_bench_hard/<task>.json`) or, without one,
from the official Big-Bench-Hard repository. Sample ids are `<category>_<index>`, the index being the position in
the task's `examples` list, so ids are stable across sources.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from s2s_eval import paths
from s2s_eval.datasets.sample import Sample
from s2s_eval.datasets.spec import EvalSpec
from s2s_eval.datasets.tts import spoken_form
from s2s_eval.errors import DataError, UserError


def _load_examples(location: str) -> list[dict[str, Any]]:
    """Rows of one task file (its `examples` list), read through `datasets`."""
    import datasets  # heavy: imported only when data is loaded

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    table = datasets.load_dataset("json", data_files=location, field="examples", split="train",
                                  cache_dir=str(paths.cache_dir() / "hf"))
    return table.to_list()


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0][:160]}" if text else type(cause).__name__


def _read_local(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.exists():
        raise DataError(f"{path}: not found; --data-dir / S2S_DATA_DIR must hold big_bench_hard/<task>.json")
    try:
        return _load_examples(str(path))
    except Exception as exc:  # `datasets` wraps parse errors in several exception types
        raise DataError(f"{what}: cannot read {path}: {_first_line(exc)}") from None


def _download(url: str, what: str) -> list[dict[str, Any]]:
    try:
        return _load_examples(url)
    except Exception as exc:  # network and Hub failures: many exception types, one message
        raise UserError(f"cannot download {what} from {url} ({_first_line(exc)}); offline? pass --data-dir DIR "
                        "(or set S2S_DATA_DIR) with a local copy laid out as big_bench_hard/<task>.json") from None


def _check(rows: list[dict[str, Any]], where: str) -> list[dict[str, str]]:
    checked = []
    for index, row in enumerate(rows):
        for key in ("input", "target"):
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where}: example {index} has no usable {key!r}")
        checked.append({"input": row["input"], "target": row["target"].strip()})
    if not checked:
        raise DataError(f"{where}: no examples")
    return checked


def load_samples(spec: EvalSpec, data_dir: Path | None) -> tuple[list[Sample], dict[str, Any]]:
    """All samples of the eval (round-robin across categories) and a description of where they came from."""
    per_category: dict[str, list[dict[str, str]]] = {}
    for category in spec.categories:
        what = f"{spec.name}/{category}"
        if data_dir is not None:
            path = Path(data_dir) / spec.source["local"].format(category=category)
            location, rows = str(path), _read_local(path, what)
        else:
            location = spec.source["url"].format(category=category)
            rows = _download(location, what)
        per_category[category] = _check(rows, location)

    digest = hashlib.sha256(json.dumps(per_category, sort_keys=True).encode("utf-8")).hexdigest()
    source = {
        "kind": "local" if data_dir is not None else "url",
        "location": str(Path(data_dir).resolve()) if data_dir is not None else spec.source["url"],
        "revision": "local copy" if data_dir is not None else spec.source.get("revision", "unknown"),
        "content_sha256": digest,
        "n_total": sum(len(rows) for rows in per_category.values()),
    }
    return _interleave(spec.name, per_category), source


def _interleave(eval_name: str, per_category: dict[str, list[dict[str, str]]]) -> list[Sample]:
    """Order samples index-major, category-minor, so that any --limit covers every category evenly."""
    samples = []
    longest = max(len(rows) for rows in per_category.values())
    for index in range(longest):
        for category, rows in per_category.items():
            if index < len(rows):
                row = rows[index]
                samples.append(Sample(sample_id=f"{category}_{index}", eval=eval_name, category=category,
                                      prompt_text=spoken_form(row["input"]), target=row["target"],
                                      metadata={"question": row["input"]}))
    return samples
