"""`s2s-eval regrade`: grade a finished run again from its log alone, without contacting the model.

After a grader rule is fixed or a judge is configured, a paid run need not be paid for again. Each record is
graded from what the log holds: the sample as asked (`items.jsonl`), the final transcript, every response with its
function calls (replayed through a fresh grader episode, so ComplexFuncBench's step matching is rebuilt exactly),
and, with a transcription backend configured, the output audio for the ASR consistency check. With `--attempts K`
each trial is graded again and pass@k recomputed. Records whose session failed keep their error: they have nothing
to grade. The new run directory records the grader (name and version) and the judge that produced the grades, and
each record says when it was re-graded and what grade it replaced, so `compare` flags runs graded differently.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from tqdm import tqdm

from s2s_eval import audio
from s2s_eval.datasets.sample import Sample
from s2s_eval.errors import UserError
from s2s_eval.graders import Answer, GradeContext, Grader, get_grader, grader_version
from s2s_eval.graders.judge import NOT_CONFIGURED, load_judge
from s2s_eval.graders.turn_taking import graded
from s2s_eval.log import (
    ITEMS,
    SAMPLES,
    SCHEMA_VERSION,
    SPEC,
    SUMMARY,
    Dynamics,
    GradeInfo,
    Journal,
    ResponseInfo,
    SampleRecord,
    contained_file,
    read_items,
    run_spec,
    sample_records,
)
from s2s_eval.speech import asr

# Graders that can stand in for one another: the same items, the same answers, another way of deciding.
COMPATIBLE = ({"big_bench_audio", "big_bench_audio_judge"},)


def _check_compatible(current: str, wanted: str) -> None:
    if wanted != current and not any({current, wanted} <= group for group in COMPATIBLE):
        raise UserError(f"grader {wanted!r} cannot grade a run graded by {current!r}: its samples are another "
                        "eval's; compatible graders: "
                        + (", ".join(sorted(next((g for g in COMPATIBLE if current in g), {current})))))


async def _grade(grader: Grader, grader_name: str, sample: Sample, text: str | None,
                 responses: list[ResponseInfo], context: GradeContext, dynamics: Dynamics | None = None) -> GradeInfo:
    episode = grader.episode(sample)
    if episode is not None:  # replay the calls the model made, in order: the episode answers as it did live
        for response in responses:
            for call in response.function_calls:
                episode.on_function_call(call.name, call.call_id, call.arguments)
    grade = await grader.grade(sample, Answer(text or "", list(responses), episode, dynamics), context)
    return GradeInfo(**grade.as_dict(), grader=grader_name, grader_version=grader_version(grader_name))


async def _regrade_record(record: SampleRecord, sample: Sample, grader: Grader, grader_name: str,
                          context: GradeContext, run_dir: Path, when: str) -> SampleRecord:
    if record.status != "ok":
        return record
    update: dict[str, Any] = {"regraded": {"at": when, "previous_grade": record.grade.model_dump(mode="json")
                                           if record.grade else None}}
    if record.trials:
        trials = []
        for trial in record.trials:
            if trial.status == "ok":
                grade = await _grade(grader, grader_name, sample, trial.response_text, trial.responses, context)
                trial = trial.model_copy(update={"grade": grade, "correct": grade.correct, "score": grade.score,
                                                 "reason": grade.reason})
            trials.append(trial)
        shown = next((i for i, t in enumerate(record.trials) if t.response_text == record.response_text), 0)
        return record.with_trials(trials, shown).model_copy(update=update)
    grade = await _grade(grader, grader_name, sample, record.response_text, record.responses, context,
                         record.dynamics)
    update.update(grade=grade, correct=grade.correct, score=grade.score, dynamics=graded(record.dynamics, grade))
    if context.transcriber is not None:
        kept, _ = contained_file(run_dir, record.output_audio)
        spoken = audio.read_wav(kept) if kept is not None else None
        update["asr"] = (await asr.measure_consistency(context.transcriber, spoken, record.response_text)).as_dict()
    return record.model_copy(update=update)


def _was_complete(run_dir: Path) -> bool | None:
    try:
        return json.loads((run_dir / SUMMARY).read_text(encoding="utf-8")).get("complete")
    except (OSError, ValueError, AttributeError):
        return None  # no summary (a crashed run) or an unreadable one: completeness unknown


def _target(run_dir: Path, out: Path | None, in_place: bool) -> Path:
    if in_place == (out is not None):
        raise UserError("give either --out NEW_DIR (a new run directory) or --in-place")
    if in_place:
        return run_dir
    assert out is not None
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; re-grade into a new directory")
    return out


async def regrade(run_dir: Path, *, out: Path | None = None, in_place: bool = False, grader_name: str | None = None,
                  progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Grade every record of `run_dir` again; write the result to `out` (or back into `run_dir`)."""
    target = _target(run_dir, out, in_place)
    spec = run_spec(run_dir)
    records = list(sample_records(run_dir))
    items = read_items(run_dir)
    missing = [r.sample_id for r in records if r.sample_id not in items]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"{run_dir} does not record its samples ({ITEMS}; runs made before schema version 1 "
                        f"lack it): cannot re-grade {missing[0]}{more} without the model")
    current = str(spec.grader.get("name") or spec.eval.get("grader"))
    name = grader_name or current
    _check_compatible(current, name)
    grader = get_grader(name)
    judge, transcriber = load_judge(), asr.load_transcriber()
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        context = GradeContext(judge, transcriber)
        regraded = [await _regrade_record(r, items[r.sample_id], grader, name, context, run_dir, when)
                    for r in tqdm(records, desc=f"regrade {spec.run_id}", unit="sample", disable=not progress)]
    finally:
        for backend in (judge, transcriber):
            if backend is not None:
                await backend.aclose()
    if target != run_dir:
        shutil.copytree(run_dir, target, dirs_exist_ok=True,
                        ignore=lambda folder, names: [n for n in names if n in (SAMPLES, SPEC, SUMMARY)]
                        if Path(folder) == run_dir else [])
    journal = Journal(target)
    new_spec = spec.model_copy(update={
        "run_id": target.name,
        "grader": {"name": name, "version": grader_version(name)},
        "judge": judge.describe() if judge else {"configured": False, "reason": NOT_CONFIGURED},
        "asr": transcriber.describe() if transcriber else spec.asr,
    })
    history = {"at": when, "from_run": spec.run_id, "previous_grader": spec.grader or {"name": current},
               "previous_judge": spec.judge}
    journal.write_spec({**new_spec.as_dict(), "regraded": [*(spec.model_extra or {}).get("regraded", []), history]})
    partial = target / f".{SAMPLES}.regrade"
    with partial.open("w", encoding="utf-8") as f:  # all or nothing: a crash leaves the old journal whole
        f.writelines(r.model_copy(update={"schema_version": SCHEMA_VERSION}).line() + "\n" for r in regraded)
    partial.replace(target / SAMPLES)
    complete = _was_complete(run_dir)
    summary = journal.write_summary({"run_id": target.name, "model": spec.model.get("name"),
                                     "eval": spec.eval.get("name"), "complete": complete, "regraded_at": when})
    return target, summary
