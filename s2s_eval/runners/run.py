"""One eval run end to end: select samples, prepare audio, run sessions concurrently, grade, journal, summarise."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from s2s_eval import __version__, audio, paths
from s2s_eval.datasets import Sample, load_samples, select
from s2s_eval.datasets.spec import EvalSpec, load_eval
from s2s_eval.datasets.tts import Synthesizer
from s2s_eval.errors import UserError
from s2s_eval.graders import Grader, get_grader
from s2s_eval.runners.client import run_turn
from s2s_eval.runners.journal import Journal, read_spec
from s2s_eval.runners.local_server import local_server
from s2s_eval.runners.profile import LocalServerSettings, RunnerProfile, auth_headers, endpoint, load_profile
from s2s_eval.runners.session import INPUT_CHUNK_MS, TurnMachine


@dataclass(frozen=True)
class RunOptions:
    model: str
    eval: str
    limit: int | None = None
    ids: list[str] | None = None
    concurrency: int | None = None
    url: str | None = None
    out: Path | None = None
    resume: bool = False
    data_dir: Path | None = None
    progress: bool = True
    save_audio: bool = True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def default_data_dir() -> Path | None:
    """`$S2S_DATA_DIR` when set; otherwise None (the adapters then use the official sources)."""
    return Path(os.environ["S2S_DATA_DIR"]) if os.environ.get("S2S_DATA_DIR") else None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.home(), capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def host_facts() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count()}


def session_update(profile: RunnerProfile, spec: EvalSpec) -> dict[str, Any]:
    """The GA session for a manual-commit turn: no turn detection, the eval's instructions, the profile's voice."""
    fmt = {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}
    output: dict[str, Any] = {"format": fmt}
    if profile.voice:
        output["voice"] = profile.voice
    return {"type": "realtime", "output_modalities": list(profile.output_modalities),
            "instructions": spec.instructions,
            "audio": {"input": {"format": fmt, "turn_detection": None}, "output": output}}


def _run_dir(options: RunOptions) -> Path:
    if options.out:
        return Path(options.out)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return paths.home() / "runs" / f"{stamp}-{options.model}-{options.eval}"


def _check_resumable(journal: Journal, options: RunOptions) -> set[str]:
    """Journaled ids when resuming; refuse to mix a different model/eval into a run, or to overwrite one."""
    has_records = (journal.run_dir / "samples.jsonl").exists() and bool(journal.done_ids())
    if not options.resume:
        if has_records:
            raise UserError(f"{journal.run_dir} already holds a run; add --resume to continue it, "
                            "or choose another --out")
        return set()
    if not (journal.run_dir / "spec.json").exists():
        return set()
    old = read_spec(journal.run_dir)
    if old["model"]["name"] != options.model or old["eval"]["name"] != options.eval:
        raise UserError(f"{journal.run_dir} is a run of {old['model']['name']} on {old['eval']['name']}; "
                        f"cannot resume it with {options.model} on {options.eval}")
    return journal.done_ids()


@contextlib.asynccontextmanager
async def _endpoint(profile: RunnerProfile, options: RunOptions, run_dir: Path) -> AsyncIterator[str]:
    if profile.provider == "local" and not options.url:
        async with local_server(profile.server or LocalServerSettings(), run_dir / "server.log",
                                compression=profile.compression) as url:
            yield endpoint(profile, url)
    else:
        yield endpoint(profile, options.url)


def build_record(sample: Sample, profile: RunnerProfile, machine: TurnMachine, grader: Grader,
                 output_audio: str | None) -> dict[str, Any]:
    """The journal line of one finished sample (see the run directory contract)."""
    obs, error = machine.observation, machine.error
    grade = grader(sample, obs.response_text) if error is None else None
    return {
        "sample_id": sample.sample_id, "eval": sample.eval, "model": profile.name, "category": sample.category,
        "status": "ok" if error is None else "error",
        "error": error.as_dict() if error else None,
        "correct": grade.correct if grade else None,
        "score": grade.score if grade else None,
        "grade": grade.as_dict() if grade else None,
        "target": sample.target,
        "response_text": obs.response_text,
        "latency": {"ttfa_ms": obs.ttfa_ms, "ttft_ms": obs.ttft_ms, "total_ms": obs.total_ms},
        "usage": obs.usage or {},
        "attempts": 1,
        "response_id": obs.response_id,
        "response_status": obs.status,
        "input_audio_s": round(audio.duration_s(machine.input_pcm), 3),
        "output_audio_s": round(audio.duration_s(bytes(obs.audio_pcm)), 3),
        "output_audio": output_audio,
        "timeline": obs.timeline,
        "finished_at": _now(),
    }


async def _run_samples(samples: list[Sample], *, url: str, headers: dict[str, str], profile: RunnerProfile,
                       spec: EvalSpec, synth: Synthesizer, journal: Journal, concurrency: int,
                       options: RunOptions) -> None:
    grader = get_grader(spec.grader)
    update = session_update(profile, spec)
    limit = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(samples), desc=f"{profile.name} × {spec.name}", unit="sample", disable=not options.progress)
    counts = {"ok": 0, "error": 0, "correct": 0}

    async def one(sample: Sample) -> None:
        async with limit:
            pcm = await asyncio.to_thread(synth.speech, sample.prompt_text)
            machine = TurnMachine(update, pcm, {"sample_id": sample.sample_id})
            await run_turn(url, headers, machine, timeout_s=profile.turn_timeout_s, compression=profile.compression)
        output_audio = None
        if options.save_audio and machine.observation.audio_pcm:
            output_audio = f"audio/{sample.sample_id}.wav"
            pcm = bytes(machine.observation.audio_pcm)
            await asyncio.to_thread(audio.write_wav, journal.run_dir / output_audio, pcm)
        record = build_record(sample, profile, machine, grader, output_audio)
        journal.append(record)
        counts[record["status"]] += 1
        counts["correct"] += bool(record["correct"])
        bar.set_postfix(errors=counts["error"], correct=counts["correct"], refresh=False)
        bar.update(1)

    try:
        async with asyncio.TaskGroup() as group:
            for sample in samples:
                group.create_task(one(sample))
    finally:
        bar.close()


async def execute(options: RunOptions) -> tuple[Path, dict[str, Any]]:
    """Run an eval; return the run directory and its summary."""
    profile = load_profile(options.model)
    spec = load_eval(options.eval)
    if profile.provider != "local" or options.url:
        auth_headers(profile, endpoint(profile, options.url))  # a missing key stops the run before any work
    samples, source = load_samples(spec, options.data_dir or default_data_dir())
    selected = select(samples, options.ids, options.limit)
    journal = Journal(_run_dir(options))
    done = _check_resumable(journal, options)
    todo = [s for s in selected if s.sample_id not in done]
    concurrency = options.concurrency or profile.concurrency

    synth = Synthesizer(spec.tts)
    synth.prepare([s.prompt_text for s in todo], progress=options.progress)
    run_spec = {
        "run_id": journal.run_dir.name, "started_at": _now(),
        "harness": {"name": "s2s-eval", "version": __version__, "git_commit": git_commit()},
        "model": profile.public(), "eval": spec.public(), "dataset": source, "tts": synth.describe(),
        "runner": {"concurrency": concurrency, "turn_mode": "manual", "pace": "burst", "input_chunk_ms": INPUT_CHUNK_MS,
                   "compression": profile.compression, "turn_timeout_s": profile.turn_timeout_s,
                   "limit": options.limit, "ids": options.ids, "n_selected": len(selected)},
        "host": host_facts(),
    }
    if done:
        run_spec = {**read_spec(journal.run_dir), "resumed_at": _now()}
    journal.write_spec(run_spec)
    journal.open()
    try:
        async with _endpoint(profile, options, journal.run_dir) as url:
            headers = auth_headers(profile, url)
            await _run_samples(todo, url=url, headers=headers, profile=profile, spec=spec, synth=synth,
                               journal=journal, concurrency=concurrency, options=options)
    finally:
        journal.close()
        finished = journal.done_ids()
        summary = journal.write_summary({
            "run_id": journal.run_dir.name, "model": profile.name, "eval": spec.name,
            "complete": all(s.sample_id in finished for s in selected), "updated_at": _now()})
    return journal.run_dir, summary
