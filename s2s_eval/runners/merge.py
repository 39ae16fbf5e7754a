"""Join the run directories of shards (`run --shard K/N`) into one run directory."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from s2s_eval.errors import UserError
from s2s_eval.log import Journal, RunSpec, SampleRecord, contained_file, run_spec, sample_records


def _check_same_run(specs: list[RunSpec]) -> None:
    """Shards of one run have one identity (every facet) and one selection; one line naming what differs."""
    first = specs[0].identity()
    for spec in specs[1:]:
        differences = first.differences(spec.identity())
        if differences:
            d = differences[0]
            raise UserError(f"the shards differ in {d.facet.label} ({d.show(d.mine)} vs {d.show(d.theirs)}); only "
                            "shards of one run can be merged")
        if [spec.runner.get(k) for k in ("limit", "ids")] != [specs[0].runner.get(k) for k in ("limit", "ids")]:
            raise UserError("the shards differ in sample selection (--limit/--ids); only shards of one run can be "
                            "merged")


def merge(shard_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Copy every shard's records (and audio) into `out`, check the shards belong together, write the summary."""
    if not shard_dirs:
        raise UserError("give the shard run directories to merge")
    specs = [run_spec(d) for d in shard_dirs]
    _check_same_run(specs)
    shards = [s.runner.get("shard") for s in specs]
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
        for record in sample_records(shard_dir):
            if record.sample_id in seen:
                raise UserError(f"sample {record.sample_id} appears in two shards")
            seen.add(record.sample_id)
    journal.open()
    try:
        for shard_dir in shard_dirs:
            for record in sample_records(shard_dir):
                for kept in _kept_files(record):  # the run's own audio: answers and question clips
                    source, _ = contained_file(Path(shard_dir), kept)
                    if source is not None:
                        target = out / kept
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(source, target)
                journal.append(record)
    finally:
        journal.close()
    selected = sum(s.runner["n_selected"] for s in specs)
    spec = specs[0].model_copy(update={"run_id": Path(out).name,
                                       "runner": {**specs[0].runner, "shard": None, "n_selected": selected}})
    journal.write_spec({**spec.as_dict(),
                        "merged_from": [{"run_id": s.run_id, "shard": s.runner["shard"]} for s in specs]})
    return journal.write_summary({"run_id": Path(out).name, "model": spec.model["name"],
                                  "eval": spec.eval["name"], "complete": not missing and len(seen) == selected,
                                  "missing_shards": missing})


def _kept_files(record: SampleRecord) -> list[str]:
    clip = record.input_clip
    kept = [record.output_audio, clip.path if clip is not None and clip.kept == "run" else record.input_audio]
    return list(dict.fromkeys(k for k in kept if k))
