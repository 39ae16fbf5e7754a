"""Join the run directories of shards (`run --shard K/N`) into one run directory."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from s2s_eval.errors import UserError
from s2s_eval.runners.journal import Journal, read_records, read_spec


def _same(specs: list[dict[str, Any]], what: str, get: Any) -> None:
    values = {repr(get(spec)) for spec in specs}
    if len(values) > 1:
        raise UserError(f"the shards differ in {what}; only shards of one run can be merged")


def merge(shard_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Copy every shard's records (and audio) into `out`, check the shards belong together, write the summary."""
    if not shard_dirs:
        raise UserError("give the shard run directories to merge")
    specs = [read_spec(d) for d in shard_dirs]
    _same(specs, "model", lambda s: [s["model"].get(k) for k in ("name", "model", "provider", "voice",
                                                                 "output_modalities")])
    _same(specs, "endpoint", lambda s: s.get("endpoint"))
    _same(specs, "eval", lambda s: s["eval"]["name"])
    _same(specs, "eval definition", lambda s: {k: v for k, v in s["eval"].items() if k != "description"})
    _same(specs, "dataset", lambda s: s["dataset"].get("content_sha256"))
    _same(specs, "TTS settings", lambda s: s["tts"])
    _same(specs, "sample selection (--limit/--ids)", lambda s: (s["runner"].get("limit"), s["runner"].get("ids")))
    _same(specs, "turn mode, pace or protocol",
          lambda s: [s["runner"].get(k) for k in ("turn_mode", "pace", "protocol")])
    _same(specs, "input (modality or perturbation)",
          lambda s: [s["runner"].get("input_modality", "audio"), s.get("perturbation")])
    _same(specs, "attempts per sample (--attempts)", lambda s: s["runner"].get("trials", 1))
    shards = [s["runner"].get("shard") for s in specs]
    if None in shards:
        raise UserError("every directory must be a shard (run with --shard K/N)")
    counts = {int(s.split("/")[1]) for s in shards}
    if len(counts) > 1 or len(set(shards)) != len(shards):
        raise UserError(f"inconsistent shards {', '.join(shards)}: each K/N of one N exactly once")
    missing = sorted(set(range(1, counts.pop() + 1)) - {int(s.split("/")[0]) for s in shards})

    journal = Journal(out)
    if journal.done_ids():
        raise UserError(f"{out} already holds a run; merge into a new directory")
    seen: set[str] = set()
    for shard_dir in shard_dirs:  # check before writing: a failed merge must leave no half-merged run in `out`
        for record in read_records(shard_dir):
            if record["sample_id"] in seen:
                raise UserError(f"sample {record['sample_id']} appears in two shards")
            seen.add(record["sample_id"])
    journal.open()
    try:
        for shard_dir in shard_dirs:
            for record in read_records(shard_dir):
                if record.get("output_audio"):
                    target = out / record["output_audio"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(Path(shard_dir) / record["output_audio"], target)
                journal.append(record)
    finally:
        journal.close()
    selected = sum(s["runner"]["n_selected"] for s in specs)
    spec = {**specs[0], "run_id": Path(out).name,
            "runner": {**specs[0]["runner"], "shard": None, "n_selected": selected},
            "merged_from": [{"run_id": s["run_id"], "shard": s["runner"]["shard"]} for s in specs]}
    journal.write_spec(spec)
    return journal.write_summary({"run_id": Path(out).name, "model": spec["model"]["name"],
                                  "eval": spec["eval"]["name"], "complete": not missing and len(seen) == selected,
                                  "missing_shards": missing})
