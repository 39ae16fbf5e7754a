"""Synthetic run directories shaped exactly like the runner's (spec.json, samples.jsonl, summary.json, audio/).

For report and compare tests and for `benchmarks/report_size.py`: realistic record sizes (transcripts, event
timelines, usage details, ASR blocks), seeded so the same arguments give the same runs.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from s2s_eval import audio
from s2s_eval.graders.summary import summarise
from s2s_eval.log import SampleRecord

CATEGORIES = ("formal_fallacies", "navigate", "object_counting", "web_of_lies")
TARGETS = {"formal_fallacies": ("valid", "invalid"), "navigate": ("Yes", "No"), "object_counting": ("3", "7"),
           "web_of_lies": ("Yes", "No")}
EVENTS = ("response.created", "response.output_item.added", "response.content_part.added",
          "response.output_audio.delta", "response.output_audio_transcript.delta", "response.output_audio.done",
          "response.output_audio_transcript.done", "response.content_part.done", "response.output_item.done",
          "response.done")
WORDS = ("the", "answer", "is", "because", "first", "then", "so", "we", "count", "each", "step", "left", "right",
         "truth", "lie", "therefore", "argument", "premise", "valid", "objects", "turn", "forward", "back")


def sample_ids(n: int) -> list[str]:
    """Big Bench Audio ids, round-robin over the four categories (as the adapter orders them)."""
    return [f"{CATEGORIES[i % 4]}_{i // 4}" for i in range(n)]


def record(sample_id: str, model: str, *, correct: bool | None, rng: random.Random, ttfa_ms: float | None = None,
           status: str = "ok", text: str | None = None, output_audio: str | None = None,
           eval_name: str = "big_bench_audio") -> dict[str, Any]:
    """One journal record as the runner writes it."""
    category = sample_id.rsplit("_", 1)[0]
    target = TARGETS.get(category, ("Yes", "No"))[0]
    ok = status == "ok"
    if text is None:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 60))).capitalize()
        text += f". The answer is {target if correct else 'something else'}."
    ttfa = (ttfa_ms if ttfa_ms is not None else rng.lognormvariate(6.0, 0.25)) if ok else None
    total = ttfa + rng.uniform(1500, 6000) if ttfa is not None else None
    timeline = []
    if ok and ttfa is not None and total is not None:
        times = sorted([rng.uniform(5, ttfa * 0.6) for _ in range(3)] + [ttfa]
                       + [rng.uniform(ttfa, total) for _ in range(5)] + [total])
        timeline = [[name, round(t, 3)] for name, t in zip(EVENTS, times, strict=True)]
    grade = {"correct": correct, "score": None if correct is None else float(correct),
             "reason": "matched the target" if correct else "extracted answer differs from the target",
             "extracted": target if correct else "other", "metrics": {}, "details": {}} if ok else None
    return {
        "sample_id": sample_id, "eval": eval_name, "model": model, "category": category, "status": status,
        "error": None if ok else {"kind": "timeout", "class": "transient", "message": "no response.done in 60 s"},
        "correct": correct if ok else None, "score": None if not ok or correct is None else float(correct),
        "grade": grade, "target": target, "response_text": text if ok else "",
        "latency": {"ttfa_ms": None if ttfa is None else round(ttfa, 3), "ttft_ms": None if ttfa is None else
                    round(ttfa + rng.uniform(20, 200), 3), "total_ms": None if total is None else round(total, 3),
                    "output_leading_silence_ms": 20.0 if ok else None},
        "usage": {"total_tokens": 600, "input_tokens": 200, "output_tokens": 400,
                  "input_token_details": {"text_tokens": 44, "audio_tokens": 156, "cached_tokens": 0},
                  "output_token_details": {"text_tokens": 90, "audio_tokens": 310}},
        "cost_usd": 0.0312 if ok else None, "attempts": 1 if ok else 3,
        "attempt_errors": [] if ok else [{"kind": "disconnect", "class": "transient", "message": "closed"}] * 2,
        "responses": [{"turn": 0, "response_id": f"resp_{rng.getrandbits(64):016x}", "status": "completed",
                       "ttfa_ms": ttfa, "ttft_ms": None, "total_ms": total, "text": text,
                       "function_calls": []}] if ok else [],
        "premature_responses": 0, "input_audio_s": round(rng.uniform(6, 14), 3),
        "output_audio_s": round(rng.uniform(4, 12), 3) if ok else 0.0, "output_audio": output_audio,
        "timeline": timeline, "finished_at": "2025-08-29T10:00:00+00:00",
        "asr": {"wer": None, "reason": "not measured: no transcription backend configured", "asr_text": None,
                "reference": text, "hypothesis": "", "reference_words": len(text.split())} if ok else None,
    }


def write_run(run_dir: Path, records: list[dict[str, Any]], *, model: str, started_at: dt.datetime | None = None,
              concurrency: int = 8, tts: dict[str, Any] | None = None, dataset_sha: str = "ab" * 32,
              judge: dict[str, Any] | None = None, eval_name: str = "big_bench_audio",
              summary: bool = True, complete: bool = True, duplex: dict[str, Any] | None = None) -> Path:
    """Write a run directory (spec, journal, summary) holding `records`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    started = started_at or dt.datetime(2025, 8, 29, 10, 0, tzinfo=dt.UTC)
    spec = {
        "run_id": run_dir.name, "started_at": started.isoformat(timespec="seconds"),
        "harness": {"name": "s2s-eval", "version": "0.1.0", "git_commit": "0123456789abcdef"},
        "model": {"name": model, "model": f"{model}-2025-08-28", "provider": "openai", "concurrency": concurrency},
        "eval": {"name": eval_name, "adapter": eval_name, "grader": eval_name, "categories": list(CATEGORIES)},
        "dataset": {"kind": "url", "location": "https://example.invalid/bbh", "revision": "main",
                    "content_sha256": dataset_sha, "n_total": 1000},
        "tts": tts or {"engine": "espeak-ng", "voice": "en-us", "rate": 175, "engine_version": "1.51",
                       "sample_rate": 24000},
        "judge": judge or {"configured": False, "reason": "not judged: no judge configured"},
        "runner": {"concurrency": concurrency, "turn_mode": "manual", "pace": "burst", "protocol": "ga",
                   "trials": 1, "limit": None, "ids": None, "shard": None, "n_selected": len(records)},
    }
    if duplex is not None:  # a full-duplex run (turn_taking): its playback policy and longest expected pause
        spec["runner"]["duplex"] = duplex
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    with (run_dir / "samples.jsonl").open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if summary:
        validated = (SampleRecord.model_validate(r).as_dict() for r in records)  # as the journal reads them
        data = {**summarise(validated), "run_id": run_dir.name, "model": model, "eval": eval_name,
                "complete": complete}
        (run_dir / "summary.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return run_dir


def make_run(run_dir: Path, model: str, n: int, accuracy: float, *, seed: int = 0, ttfa_scale: float = 1.0,
             error_rate: float = 0.0, audio_s: float = 0.0, correct_of: Callable[[int], bool] | None = None,
             **spec: Any) -> Path:
    """A run of `n` Big Bench Audio samples with about `accuracy` right (or exactly `correct_of(i)`).

    `audio_s` > 0 writes a real WAV of that length per successful sample (a tone), as runs keep output audio.
    """
    rng = random.Random(f"{model}/{seed}")
    records = []
    for i, sample_id in enumerate(sample_ids(n)):
        status = "error" if rng.random() < error_rate else "ok"
        correct = correct_of(i) if correct_of else rng.random() < accuracy
        rel = None
        if audio_s > 0 and status == "ok":
            rel = f"audio/{sample_id}.wav"
            audio.write_wav(run_dir / rel, tone(audio_s, 220 + 20 * (i % 7)))
        ttfa = rng.lognormvariate(6.0, 0.25) * ttfa_scale
        records.append(record(sample_id, model, correct=correct, rng=rng, ttfa_ms=ttfa, status=status,
                              output_audio=rel))
    return write_run(run_dir, records, model=model, **spec)


def tone(seconds: float, hz: float) -> bytes:
    """A quiet sine tone as 24 kHz PCM16."""
    import numpy as np

    t = np.arange(int(seconds * audio.SAMPLE_RATE)) / audio.SAMPLE_RATE
    return audio.to_pcm16((0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32))


DUPLEX = {"policy": "stop_at_speech_started", "max_pause_ms": 2000.0, "frame_ms": 20}


def scenario_verdict(scenario: str, facts: dict[str, Any]) -> bool:
    """The scenario's good behaviour, as the turn_taking grader decides it."""
    if scenario == "pause":
        return not facts.get("takeover")
    if scenario == "interruption":
        return bool(facts.get("yielded"))
    if scenario == "backchannel":
        return not facts.get("false_yield")
    return facts.get("turn_end_latency_ms") is not None


def dynamics_record(sample_id: str, model: str, scenario: str, *, rng: random.Random, policy: str = DUPLEX["policy"],
                    **facts: Any) -> dict[str, Any]:
    """A turn_taking record of `scenario` whose `dynamics` holds `facts` (the rest: a plausible timeline)."""
    base = record(sample_id, model, correct=True, rng=rng, eval_name="turn_taking")
    caller_end = facts.get("caller_end_ms", 2400.0)
    events = [["caller.first_frame", 0.0], ["caller.voiced_end", caller_end]]
    if facts.get("cue_onset_ms") is not None:
        events.append(["caller.cue_onset", facts["cue_onset_ms"]])
    if facts.get("yield_latency_ms") is not None and facts.get("cue_onset_ms") is not None:
        events.append(["model.playback_stopped", facts["cue_onset_ms"] + facts["yield_latency_ms"]])
    if facts.get("turn_end_latency_ms") is not None:
        events.append(["model.first_voiced_audio", caller_end + facts["turn_end_latency_ms"]])
    dynamics = {"scenario": scenario, "policy": policy, "max_pause_ms": DUPLEX["max_pause_ms"],
                "caller_end_ms": caller_end, "verdict": f"{scenario}: as scripted", "events": sorted(
                    events, key=lambda e: e[1]), **facts}
    correct = scenario_verdict(scenario, facts)
    grade = {**base["grade"], "correct": correct, "score": float(correct), "reason": dynamics["verdict"]}
    return {**base, "category": scenario, "correct": correct, "score": float(correct), "grade": grade,
            "target": None, "dynamics": dynamics}


def make_dynamics_run(run_dir: Path, model: str, scenarios: dict[str, list[dict[str, Any]]], *,
                      duplex: dict[str, Any] | None = None, **spec: Any) -> Path:
    """A turn_taking run: per scenario, one record per facts dict, ids `<scenario>_<index>`."""
    rng = random.Random(model)
    records = [dynamics_record(f"{scenario}_{i}", model, scenario, rng=rng, **facts)
               for scenario, items in scenarios.items() for i, facts in enumerate(items)]
    return write_run(run_dir, records, model=model, eval_name="turn_taking", duplex=duplex or DUPLEX, **spec)
