"""The run log: typed and versioned, the only thing readers read, the one judge of "the same run".

Runs here are real runs against the embedded server or a scripted one on loopback; the readers run as the `s2s-eval`
command would, in a subprocess whose PATH has no espeak-ng, after the data copy and the audio cache are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s2s_eval import audio
from s2s_eval.errors import UserError
from s2s_eval.log import SCHEMA_VERSION, SampleRecord, parse_record, read_records, run_spec, sample_records
from s2s_eval.runners.run import RunOptions, execute
from tests.servers import serve_process, write_script
from tests.test_report import page_data, tables


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s2s_eval", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def run_options(out: Path, data: Path, **overrides: Any) -> RunOptions:
    base: dict[str, Any] = dict(model="local", eval="big_bench_audio", limit=8, out=out, data_dir=data,
                                progress=False)
    return RunOptions(**{**base, **overrides})


@pytest.fixture
def private_data(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A data copy and an audio cache that belong to this test alone, so it can delete both."""
    data = tmp_path / "data"
    shutil.copytree(data_dir / "big_bench_hard", data / "big_bench_hard")
    cache = tmp_path / "cache"
    monkeypatch.setenv("S2S_CACHE_DIR", str(cache))
    return data, cache


def without_espeak() -> dict[str, str]:
    """The environment with a PATH that holds only this interpreter's folder (no espeak-ng, no TTS at all)."""
    path = str(Path(sys.executable).parent)
    assert shutil.which("espeak-ng", path=path) is None
    return {**os.environ, "PATH": path}


async def test_readers_need_only_the_log(tmp_path: Path, private_data: tuple[Path, Path]) -> None:
    data, cache = private_data
    base, _ = await execute(run_options(tmp_path / "base", data))
    shards = [(await execute(run_options(tmp_path / f"shard{k}", data, shard=(k, 2))))[0] for k in (1, 2)]
    clips = {r.sample_id: r.input_clip for r in sample_records(base)}
    assert all(c is not None and c.kept == "run" for c in clips.values())
    shutil.rmtree(data)
    shutil.rmtree(cache)
    env = without_espeak()

    merged = tmp_path / "merged"
    done = cli("merge", *shards, "--out", merged, env=env)
    assert done.returncode == 0, done.stderr
    assert {r["sample_id"] for r in read_records(merged)} == set(clips)
    done = cli("compare", base, merged, env=env)
    assert done.returncode == 0 and "paired samples: 8" in done.stdout, done.stdout + done.stderr
    out = tmp_path / "report" / "index.html"
    done = cli("report", base, merged, "--out", out, env=env)
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    rows = tables(html)["samples"]
    assert len(rows) == 16
    for row, entry in zip(rows, page_data(html)["samples"], strict=True):
        clip = clips[row[1].replace(" ", "")]
        assert clip is not None and "in" in entry, entry  # every question plays, from the run's own copy
        assert hashlib.sha256(audio.read_wav(out.parent / entry["in"])).hexdigest() == clip.sha256


async def test_a_resume_that_would_mix_conditions_is_refused_and_writes_nothing(
        tmp_path: Path, private_data: tuple[Path, Path]) -> None:
    data, _ = private_data
    run, _ = await execute(run_options(tmp_path / "run", data, limit=4))
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    done = cli("run", "--model", "local", "--eval", "big_bench_audio", "--limit", "8", "--out", run, "--resume",
               "--input", "text", "--voice", "alloy", "--data-dir", data)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "--input: audio in the run, text now" in lines[0] and "--voice: marin in the run, alloy now" in lines[0]
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    # Told to, it mixes them, and says so in spec.json.
    done = cli("run", "--model", "local", "--eval", "big_bench_audio", "--limit", "8", "--out", run, "--resume",
               "--voice", "alloy", "--data-dir", data, "--accept-changes")
    assert done.returncode == 0, done.stderr
    spec = run_spec(run)
    assert spec.changes and "--voice: marin in the run, alloy now" in spec.changes[0]["differences"]
    assert len(list(read_records(run))) == 8 and len(spec.resumed_at) == 1
    # Another model never goes into the run, even when told to.
    done = cli("run", "--model", "openai-compatible", "--url", "ws://127.0.0.1:9/v1/realtime", "--eval",
               "big_bench_audio", "--out", run, "--resume", "--accept-changes", "--data-dir", data)
    assert done.returncode != 0 and "--model" in done.stderr and "choose another --out" in done.stderr


async def test_attempts_bill_every_try(tmp_path: Path, data_dir: Path, no_api_key: None) -> None:
    """`--attempts 3` against a server whose usage per response is fixed: 3x the usage and cost of one try."""
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": "The answer is no."}]}])
    with serve_process("--engine", "scripted", "--script", str(script), log=tmp_path / "server.log") as url:
        one, _ = await execute(RunOptions(model="gpt-realtime", eval="big_bench_audio", limit=4, url=url,
                                          out=tmp_path / "one", data_dir=data_dir, progress=False))
        three, summary = await execute(RunOptions(model="gpt-realtime", eval="big_bench_audio", limit=4, url=url,
                                                  out=tmp_path / "three", data_dir=data_dir, progress=False,
                                                  trials=3))
    singles = {r.sample_id: r for r in sample_records(one)}
    triples = list(sample_records(three))
    assert len(triples) == 4
    for r in triples:
        single = singles[r.sample_id]
        assert single.cost_usd and single.usage["total_tokens"] > 0
        assert r.usage["total_tokens"] == 3 * single.usage["total_tokens"]
        assert r.usage["output_token_details"] == {k: 3 * v for k, v in single.usage["output_token_details"].items()}
        assert r.cost_usd == pytest.approx(3 * single.cost_usd, abs=1e-8)
        assert r.attempts == 3 and r.trials is not None and len(r.trials) == 3
        assert all(len(t.attempts) == 1 and t.attempts[0].cost_usd == pytest.approx(single.cost_usd) for t in r.trials)
    assert summary["cost"]["usd"] == pytest.approx(sum(r.cost_usd or 0 for r in triples), abs=1e-6)
    assert summary["usage"]["total_tokens"] == sum(r.usage["total_tokens"] for r in triples)
    assert summary["attempts"]["total"] == 12


def test_every_line_validates_and_the_previous_format_is_read(tmp_path: Path) -> None:
    version0 = {"sample_id": "navigate_0", "eval": "big_bench_audio", "model": "gpt-realtime", "category": "navigate",
                "status": "ok", "error": None, "correct": True, "score": 1.0,
                "grade": {"correct": True, "score": 1.0, "reason": "matched", "extracted": "yes", "metrics": {},
                          "details": {}},
                "target": "Yes", "response_text": "Yes.", "latency": {"ttfa_ms": 512.0, "ttft_ms": 600.0,
                                                                     "total_ms": 900.0},
                "usage": {"total_tokens": 10}, "cost_usd": 0.001, "attempts": 1, "attempt_errors": [],
                "responses": [{"turn": 0, "text": "Yes.", "function_calls": [{"name": "f", "arguments": "{}"}]}],
                "timeline": [["response.created", 1.5]], "input_audio": "audio/navigate_0.input.wav",
                "trials": [{"status": "ok", "correct": True, "score": 1.0, "response_text": "Yes.", "reason": "m"}]}
    record = parse_record(version0, "old line")
    assert record.schema_version == 0 and record.grade is not None and record.grade.grader is None
    assert record.latency.ttfa_ms == 512.0 and record.responses[0].function_calls[0].call_id == ""
    assert record.as_dict()["input_audio"] == "audio/navigate_0.input.wav"
    with pytest.raises(UserError, match="schema version 4; this s2s-eval reads versions up to 3"):
        parse_record({**version0, "schema_version": 4}, "new line")
    with pytest.raises(UserError, match="bad line: not a sample record .*latency.ttfa_ms"):
        parse_record({**version0, "latency": {"ttfa_ms": "soon"}}, "bad line")
    with pytest.raises(UserError, match="status"):
        parse_record({**version0, "status": "fine"}, "bad line")


def test_a_version_1_line_still_reads() -> None:
    """Version 2 only added optional fields: a version-1 line reads with them None, and nothing else changes."""
    version1 = {"schema_version": 1, "sample_id": "navigate_0", "eval": "big_bench_audio", "model": "local",
                "category": "navigate", "status": "ok", "correct": True, "score": 1.0, "target": "Yes",
                "latency": {"ttfa_ms": 512.0, "ttft_ms": 600.0, "total_ms": 900.0, "output_leading_silence_ms": 20.0,
                            "server_sent_ms": None},
                "input_clip": {"text": "Is it?", "sha256": "ab" * 32, "duration_s": 1.5, "path": "audio/x.wav",
                               "kept": "run"}}
    record = parse_record(version1, "version 1 line")
    assert record.schema_version == 1 and record.latency.output_leading_silence_ms == 20.0
    assert (record.latency.ttfa_voiced_ms, record.latency.voice_detector) == (None, None)
    assert record.input_clip is not None and record.input_clip.loudness_lufs is None
    assert record.input_clip.path == "audio/x.wav"


async def test_a_run_writes_only_valid_current_lines(tmp_path: Path, private_data: tuple[Path, Path]) -> None:
    data, _ = private_data
    run, _ = await execute(run_options(tmp_path / "run", data, limit=4))
    lines = (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        raw = json.loads(line)
        assert raw["schema_version"] == SCHEMA_VERSION
        assert SampleRecord.model_validate(raw).as_dict() == raw  # nothing is lost or added on a round trip
        assert raw["grade"]["grader"] == "big_bench_audio" and raw["grade"]["grader_version"] == "1"
        # Version 2: the question's measured loudness (clips are scaled to the eval's target) and the voiced answer.
        assert raw["tts"]["loudness_target_lufs"] == -23.0
        assert raw["input_clip"]["loudness_lufs"] == pytest.approx(-23.0, abs=0.5)
        assert raw["latency"]["voice_detector"].startswith("silero-vad-v6")
        assert raw["latency"]["ttfa_voiced_ms"] >= raw["latency"]["ttfa_ms"]
    spec = json.loads((run / "spec.json").read_text(encoding="utf-8"))
    assert spec["schema_version"] == SCHEMA_VERSION and spec["grader"] == {"name": "big_bench_audio", "version": "1"}
    assert json.loads((run / "summary.json").read_text(encoding="utf-8"))["schema_version"] == SCHEMA_VERSION
