"""Big Bench Audio: the four Big-Bench-Hard tasks that Artificial Analysis asks aloud (250 questions each).

Loaded with Hugging Face `datasets` from a local data directory (`big_bench_hard/<task>.json`) or, without one,
from the official Big-Bench-Hard repository. Sample ids are `<category>_<index>`, the index being the position in
the task's `examples` list, so ids are stable across sources.

With `audio_source: official` the questions are asked with Artificial Analysis's published recordings
(`ArtificialAnalysis/big_bench_audio` on the Hub, or a copy under `<data dir>/big_bench_audio/`: `metadata.jsonl`
plus the audio files it names). The recordings' metadata is read with `datasets`, its audio column cast to
`Audio(decode=False)` and the files decoded with soundfile: nothing goes through torch. (`load_dataset` on the
repository itself cannot be used without torch: `datasets` encodes every audio file through torchcodec while it
builds a sound-folder dataset, even when decoding is off.) Recordings are matched to Big-Bench-Hard rows by their
transcript when the metadata has one, else by position within the category (ordered by `id`); either way the
recording's `official_answer` is checked against the Big-Bench-Hard target, and the agreement goes into the run's
`spec.json` (`dataset.official_audio`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from s2s_eval import paths
from s2s_eval.datasets.sample import Sample, round_robin
from s2s_eval.datasets.spec import EvalSpec
from s2s_eval.errors import DataError, UserError, first_line
from s2s_eval.speech.asr import normalise_for_wer
from s2s_eval.speech.tts import spoken_form


def _load_examples(location: str) -> list[dict[str, Any]]:
    """Rows of one task file (its `examples` list), read through `datasets`."""
    import datasets  # heavy: imported only when data is loaded

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    table = datasets.load_dataset("json", data_files=location, field="examples", split="train",
                                  cache_dir=str(paths.cache_dir() / "hf"))
    return table.to_list()


def _read_local(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.exists():
        raise DataError(f"{path}: not found; --data-dir / S2S_DATA_DIR must hold big_bench_hard/<task>.json")
    try:
        return _load_examples(str(path))
    except Exception as exc:  # `datasets` wraps parse errors in several exception types
        raise DataError(f"{what}: cannot read {path}: {first_line(exc)}") from None


def _download(url: str, what: str) -> list[dict[str, Any]]:
    try:
        return _load_examples(url)
    except Exception as exc:  # network and Hub failures: many exception types, one message
        raise UserError(f"cannot download {what} from {url} ({first_line(exc)}); offline? pass --data-dir DIR "
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
    source: dict[str, Any] = {
        "kind": "local" if data_dir is not None else "url",
        "location": str(Path(data_dir).resolve()) if data_dir is not None else spec.source["url"],
        "revision": "local copy" if data_dir is not None else spec.source.get("revision", "unknown"),
        "content_sha256": digest,
        "n_total": sum(len(rows) for rows in per_category.values()),
    }
    samples = _interleave(spec.name, per_category)
    if spec.audio_source == "official":
        samples, source["official_audio"] = _with_official_audio(spec, samples, data_dir)
    return samples, source


def _interleave(eval_name: str, per_category: dict[str, list[dict[str, str]]]) -> list[Sample]:
    """Order samples index-major, category-minor, so that any --limit covers every category evenly."""
    return round_robin([Sample(sample_id=f"{category}_{index}", eval=eval_name, category=category,
                               prompt_text=spoken_form(row["input"]), target=row["target"],
                               metadata={"question": row["input"]}) for index, row in enumerate(rows)]
                       for category, rows in per_category.items())


# --- official recordings --------------------------------------------------------------------------------------

OFFICIAL_REPO = "ArtificialAnalysis/big_bench_audio"
_TEXT_COLUMNS = ("transcript", "question", "input", "text", "prompt")
MIN_ANSWER_AGREEMENT = 0.9  # below this, recordings matched by position are not the questions they claim to be


def _official_root(spec: EvalSpec, data_dir: Path | None) -> tuple[str, str, str]:
    """(root of metadata.jsonl and the audio files, repository, revision): the local copy if there is one."""
    repo = spec.source.get("official_audio", OFFICIAL_REPO)
    revision = spec.source.get("official_audio_revision", "main")
    if data_dir is not None:
        local = Path(data_dir) / spec.source.get("official_audio_local", "big_bench_audio")
        if (local / "metadata.jsonl").is_file():
            return str(local.resolve()), repo, "local copy"
    return f"hf://datasets/{repo}@{revision}", repo, revision


def _official_rows(root: str, repo: str, revision: str) -> list[dict[str, Any]]:
    """The recordings' metadata rows, each with `audio` = {"path", "bytes"} (not decoded)."""
    import datasets
    from datasets import Audio

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        table = datasets.load_dataset("json", data_files=f"{root}/metadata.jsonl", split="train",
                                      cache_dir=str(paths.cache_dir() / "hf"))
    except Exception as exc:  # offline, missing repository, network: many exception types, one message
        why = first_line(exc)
        if "offline" in why.lower():
            why = "Hugging Face offline mode is on (HF_HUB_OFFLINE=1)"
        raise UserError(f"cannot load the official Big Bench Audio recordings ({repo}@{revision}) from the "
                        f"Hugging Face Hub: {why}; go online once (they are cached), put a copy under "
                        "<data dir>/big_bench_audio/ (metadata.jsonl + data/), or use the eval big_bench_audio "
                        "(synthesised speech)") from None
    if "file_name" not in table.column_names or "category" not in table.column_names:
        raise DataError(f"{root}/metadata.jsonl: expected columns file_name and category, found "
                        f"{', '.join(table.column_names)}")
    table = table.add_column("audio", [f"{root}/{name}" for name in table["file_name"]])
    return table.cast_column("audio", Audio(decode=False)).to_list()


def read_official_audio(path: str) -> bytes:
    """The bytes of one recording: a local file, or `hf://datasets/<repo>@<revision>/<file>` (cached download)."""
    match = re.fullmatch(r"hf://datasets/([^@]+/[^@/]+)@([^/]+)/(.+)", path)
    try:
        if match is None:
            return Path(path).read_bytes()
        from huggingface_hub import hf_hub_download

        repo, revision, filename = match.groups()
        local = hf_hub_download(repo, filename, repo_type="dataset", revision=revision,
                                cache_dir=str(paths.cache_dir() / "hf"))
        return Path(local).read_bytes()
    except Exception as exc:
        raise UserError(f"cannot read the official recording {path} ({first_line(exc)})") from None


def _category(value: Any, known: list[str]) -> str | None:
    name = re.sub(r"[^a-z]+", "_", str(value).lower()).strip("_")
    if name in known:
        return name
    return next((k for k in known if name.startswith(k) or k.startswith(name)), None)


def _order_key(row: dict[str, Any], position: int) -> tuple[int, Any]:
    value = row.get("id")
    try:
        return (0, int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, position)


def _with_official_audio(spec: EvalSpec, samples: list[Sample], data_dir: Path | None,
                         ) -> tuple[list[Sample], dict[str, Any]]:
    """The samples that have a recording, each pointing at it, and how the recordings were matched."""
    from dataclasses import replace

    root, repo, revision = _official_root(spec, data_dir)
    rows = _official_rows(root, repo, revision)
    by_category: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for position, row in enumerate(rows):
        category = _category(row.get("category"), spec.categories)
        if category is not None:
            by_category.setdefault(category, []).append((position, row))
    text_column = next((c for c in _TEXT_COLUMNS if rows and isinstance(rows[0].get(c), str)), None)
    by_id = {s.sample_id: s for s in samples}
    matched: dict[str, dict[str, Any]] = {}
    for category, entries in by_category.items():
        entries.sort(key=lambda e: _order_key(e[1], e[0]))
        if text_column:
            index = {normalise_for_wer(s.prompt_text): s.sample_id for s in samples if s.category == category}
            pairs = [(index.get(normalise_for_wer(spoken_form(row[text_column]))), row) for _, row in entries]
        else:
            pairs = [(f"{category}_{i}", row) for i, (_, row) in enumerate(entries)]
        matched.update({sample_id: row for sample_id, row in pairs if sample_id in by_id})

    agree = sum(normalise_for_wer(str(row.get("official_answer", ""))) == normalise_for_wer(by_id[i].target)
                for i, row in matched.items())
    agreement = agree / len(matched) if matched else 0.0
    facts = {"dataset": repo, "revision": revision, "location": root, "rows": len(rows), "matched": len(matched),
             "matched_by": text_column or "position within category (by id)",
             "missing": sorted(set(by_id) - set(matched)), "answer_agreement": round(agreement, 4)}
    if not matched:
        raise DataError(f"{root}/metadata.jsonl: no recording matches a question of {spec.name} (categories "
                        f"{', '.join(sorted({str(r.get('category')) for r in rows}))})")
    if agreement < MIN_ANSWER_AGREEMENT:
        raise DataError(f"{root}: only {agreement:.0%} of the recordings' official answers equal the "
                        f"Big-Bench-Hard targets of the questions they were matched to ({facts['matched_by']}); "
                        "the recordings do not line up with this copy of Big-Bench-Hard")
    with_audio = []
    for sample in samples:
        row = matched.get(sample.sample_id)
        if row is not None:
            ref = {"path": row["audio"]["path"], "file_name": row["file_name"], "id": row.get("id"),
                   "official_answer": row.get("official_answer"), "dataset": repo, "revision": revision}
            with_audio.append(replace(sample, metadata={**sample.metadata, "official_audio": ref}))
    return with_audio, facts
