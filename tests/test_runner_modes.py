"""The runner against real `s2s-eval serve` processes: shards and merge, beta servers, VAD turns, cost, loop lag,
attempts, and Azure's key header. Every server here is a separate process on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from s2s_eval import audio, pricing
from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.log import read_records
from s2s_eval.runners.profile import load_profile
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.runners.session import INPUT_CHUNK_MS
from s2s_eval.speech.tts import Synthesizer
from tests.conftest import TIMING_SCALE
from tests.servers import serve_process, serve_subprocess, write_script
from tests.test_cli import assert_one_clear_line, cli
from tests.test_runner import WRONG, spoken_answer

LIMIT = 8


@pytest.fixture(scope="module")
def script(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Right answers for the samples at index 0, wrong ones otherwise, so accuracy is neither 0 nor 1."""
    samples, _ = load_samples(load_eval("big_bench_audio"), data_dir)
    lines = []
    for sample in select(samples, None, LIMIT):
        target = sample.target
        answer = target if sample.sample_id.endswith("_0") else WRONG.get(
            target, str(int(target) + 1) if target.isdigit() else "no")
        lines.append({"sample_id": sample.sample_id, "responses": [{"text": spoken_answer(sample.category, answer)}]})
    return write_script(tmp_path_factory.mktemp("script") / "script.jsonl", lines)


@pytest.fixture(scope="module")
def ga_server(script: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("ga-server") / "server.log"
    with serve_process("--engine", "scripted", "--script", str(script), log=log) as url:
        yield url


@pytest.fixture(scope="module")
def beta_server(script: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("beta-server") / "server.log"
    with serve_process("--engine", "scripted", "--script", str(script), "--protocol", "beta", log=log) as url:
        yield url


def options(url: str | None, out: Path, data_dir: Path, **overrides: Any) -> RunOptions:
    base: dict[str, Any] = dict(model="openai-compatible", eval="big_bench_audio", limit=LIMIT, url=url, out=out,
                                data_dir=data_dir, progress=False, concurrency=3)
    return RunOptions(**{**base, **overrides})


def by_id(run_dir: Path) -> dict[str, dict[str, Any]]:
    records = list(read_records(run_dir))
    assert len(records) == len({r["sample_id"] for r in records})
    return {r["sample_id"]: r for r in records}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# -- shards and merge -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shard_runs(ga_server: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One unsharded run and the same run split in three shards."""
    import asyncio

    folder = tmp_path_factory.mktemp("shards")

    async def run_all() -> dict[str, Path]:
        runs = {"whole": (await execute(options(ga_server, folder / "whole", data_dir)))[0]}
        for k in (1, 2, 3):
            runs[f"{k}/3"] = (await execute(options(ga_server, folder / f"shard{k}", data_dir, shard=(k, 3))))[0]
        return runs

    return asyncio.run(run_all())


def test_merged_shards_equal_the_unsharded_run(shard_runs: dict[str, Path], tmp_path: Path) -> None:
    shards = [shard_runs[f"{k}/3"] for k in (1, 2, 3)]
    parts = [set(by_id(s)) for s in shards]
    assert [len(p) for p in parts] == [3, 3, 2] and not (parts[0] & parts[1] or parts[0] & parts[2] or
                                                         parts[1] & parts[2])
    done = cli("merge", *map(str, shards), "--out", str(tmp_path / "merged"))
    assert done.returncode == 0, done.stderr
    assert f"{LIMIT} samples from 3 shards" in done.stdout

    merged, whole = by_id(tmp_path / "merged"), by_id(shard_runs["whole"])
    assert sorted(merged) == sorted(whole) and len(merged) == LIMIT
    for sample_id, record in merged.items():
        assert (record["status"], record["correct"]) == (whole[sample_id]["status"], whole[sample_id]["correct"])
        assert (tmp_path / "merged" / record["output_audio"]).is_file()
    summary, unsharded = read_json(tmp_path / "merged" / "summary.json"), read_json(shard_runs["whole"] /
                                                                                    "summary.json")
    assert summary["counts"] == unsharded["counts"] == {"total": 8, "ok": 8, "error": 0, "error_kinds": {},
                                                         "error_classes": {}}
    assert (summary["accuracy"], summary["by_category"]) == (unsharded["accuracy"], unsharded["by_category"])
    assert summary["accuracy"] == 0.5 and summary["complete"] is True and summary["missing_shards"] == []
    spec = read_json(tmp_path / "merged" / "spec.json")
    assert spec["runner"]["shard"] is None and spec["runner"]["n_selected"] == LIMIT
    assert [m["shard"] for m in spec["merged_from"]] == ["1/3", "2/3", "3/3"]


def test_a_merge_missing_a_shard_is_incomplete_and_fails(shard_runs: dict[str, Path], tmp_path: Path) -> None:
    done = cli("merge", str(shard_runs["1/3"]), str(shard_runs["3/3"]), "--out", str(tmp_path / "merged"))
    assert done.returncode == 1 and "missing shards [2]" in done.stdout
    summary = read_json(tmp_path / "merged" / "summary.json")
    assert summary["complete"] is False and summary["counts"]["total"] == 5


def tampered(shard: Path, to: Path, **changes: Any) -> Path:
    """A copy of a shard whose spec says something else (for mismatches no real run here can produce)."""
    shutil.copytree(shard, to)
    spec = read_json(to / "spec.json")
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        spec[section][key] = value
    (to / "spec.json").write_text(json.dumps(spec))
    return to


async def test_overlapping_or_mismatched_shards_are_refused_in_one_line(shard_runs: dict[str, Path], ga_server: str,
                                                                         data_dir: Path, tmp_path: Path) -> None:
    one, two, three = (str(shard_runs[f"{k}/3"]) for k in (1, 2, 3))
    other_model, _ = await execute(options(ga_server, tmp_path / "model", data_dir, model="gpt-realtime",
                                           shard=(2, 3)))
    other_limit, _ = await execute(options(ga_server, tmp_path / "limit", data_dir, limit=6, shard=(2, 3)))
    other_eval = tampered(shard_runs["2/3"], tmp_path / "eval", eval__name="multichallenge")
    other_mode = tampered(shard_runs["2/3"], tmp_path / "mode", runner__turn_mode="vad")
    overlapping = tampered(shard_runs["1/3"], tmp_path / "overlap", runner__shard="2/3")  # shard 1's samples as 2
    other_id = tampered(shard_runs["2/3"], tmp_path / "model-id", model__model="gpt-realtime-2025-08-28")
    other_endpoint = tampered(shard_runs["2/3"], tmp_path / "endpoint")
    spec = read_json(other_endpoint / "spec.json")
    (other_endpoint / "spec.json").write_text(json.dumps({**spec, "endpoint": "ws://127.0.0.1:1/v1/realtime"}))
    typed = tampered(shard_runs["2/3"], tmp_path / "typed", runner__input_modality="text")

    cases = {
        (one, one, three): "inconsistent shards 1/3, 1/3, 3/3",
        (one, str(other_model), three): "the shards differ in model",
        (one, str(other_eval), three): "the shards differ in eval",
        (one, str(other_limit), three): "the shards differ in sample selection",
        (one, str(other_mode), three): "the shards differ in turn mode",
        (one, str(overlapping), three): "appears in two shards",
        (one, str(other_id), three): "the shards differ in model",
        (one, str(other_endpoint), three): "the shards differ in endpoint",
        (one, str(typed), three): "the shards differ in input modalities",
        (one, str(tmp_path / "nowhere")): "no such run directory",
    }
    for index, (dirs, message) in enumerate(cases.items()):
        out = tmp_path / f"merged{index}"
        assert_one_clear_line(cli("merge", *dirs, "--out", str(out)), message)
        assert not list(read_records(out)), f"a refused merge left records in {out}"
    # A refused merge leaves nothing behind, so the corrected merge can use the same directory.
    done = cli("merge", one, two, three, "--out", str(tmp_path / f"merged{len(cases) - 2}"))
    assert done.returncode == 0, done.stderr


# -- beta-shaped servers ----------------------------------------------------------------------------------------


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what a consumer of the journal relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_a_beta_server_run_journals_what_a_ga_run_does(ga_server: str, beta_server: str, data_dir: Path,
                                                             tmp_path: Path) -> None:
    ga_dir, _ = await execute(options(ga_server, tmp_path / "ga", data_dir, limit=4))
    beta_dir, _ = await execute(options(beta_server, tmp_path / "beta", data_dir, limit=4,
                                        model="openai-compatible-beta"))
    assert read_json(beta_dir / "spec.json")["runner"]["protocol"] == "beta"
    ga, beta = by_id(ga_dir), by_id(beta_dir)
    assert sorted(ga) == sorted(beta) and len(ga) == 4
    for sample_id, g in ga.items():
        b = beta[sample_id]
        assert shape(b) == shape(g), sample_id
        assert b["status"] == g["status"] == "ok" and b["error"] is None
        # The beta server sends response.audio.delta / response.audio_transcript.delta: present only if mapped.
        for key in ("ttfa_ms", "ttft_ms", "total_ms", "output_leading_silence_ms"):
            assert b["latency"][key] is not None and g["latency"][key] is not None, (sample_id, key)
        assert b["response_text"] == g["response_text"] != "" and b["correct"] == g["correct"]
        assert [kind for kind, _ in b["timeline"]] == [kind for kind, _ in g["timeline"]]
        assert b["output_audio_s"] == pytest.approx(g["output_audio_s"], abs=0.05)
        assert b["usage"]["output_token_details"]["audio_tokens"] > 0


# -- VAD turns --------------------------------------------------------------------------------------------------


async def test_a_vad_run_times_from_the_last_voiced_sample(data_dir: Path, tmp_path: Path,
                                                           no_api_key: None) -> None:
    ids = ["object_counting_0", "web_of_lies_0"]  # the two shortest of the first questions (about 11 and 13 s)
    started = time.perf_counter()
    run_dir, summary = await execute(RunOptions(model="local", eval="big_bench_audio", ids=ids, data_dir=data_dir,
                                                out=tmp_path / "run", progress=False, turn_mode="vad"))
    elapsed_s = time.perf_counter() - started
    spec = read_json(run_dir / "spec.json")
    assert (spec["runner"]["turn_mode"], spec["runner"]["pace"]) == ("vad", "realtime")

    vad = load_profile("local").vad
    eval_spec = load_eval("big_bench_audio")
    synth = Synthesizer(eval_spec.tts)
    questions = {s.sample_id: s for s in select(load_samples(eval_spec, data_dir)[0], ids, None)}
    records = by_id(run_dir)
    assert sorted(records) == sorted(ids)
    for sample_id, record in records.items():
        assert record["status"] == "ok" and record["premature_responses"] == 0, record["error"]
        pcm = synth.speech(questions[sample_id].prompt_text)
        voiced_start_ms, voiced_end_ms = audio.voiced_span_ms(pcm)
        ttfa = record["latency"]["ttfa_ms"]
        # The server can only hear that speech ended after `silence_duration_ms` of silence has arrived; paced
        # at real time, that silence starts in the chunk that carries the last voiced sample (time zero).
        assert ttfa >= vad.silence_duration_ms - INPUT_CHUNK_MS, (sample_id, ttfa)
        # Timed from the start of the upload instead, it would include all the speech before (seconds).
        assert voiced_end_ms - voiced_start_ms > 5000
        assert ttfa < vad.silence_duration_ms + 1000 * TIMING_SCALE, (sample_id, ttfa)
        # The echo engine speaks the committed turn back; VAD committed it from `prefix_padding_ms` before the
        # speech, so the answer's leading silence is the question's, up to that padding.
        expected = min(voiced_start_ms, vad.prefix_padding_ms)
        assert record["latency"]["output_leading_silence_ms"] == pytest.approx(expected, abs=20), sample_id
    assert summary["latency"]["output_leading_silence_ms"]["n"] == 2
    assert summary["latency"]["ttfa_ms"]["n"] == 2

    # The runner's own loop lag is recorded with the run, the same figures in the spec and the summary.
    lag = summary["measurement"]["loop_lag_ms"]
    assert read_json(run_dir / "spec.json")["measurement"] == summary["measurement"]
    assert read_json(run_dir / "summary.json")["measurement"]["loop_lag_ms"] == lag
    assert lag["interval_ms"] == 10.0
    assert 0 < lag["n"] <= elapsed_s * 1000 / lag["interval_ms"] + 1  # at most one wake-up per interval
    assert isinstance(lag["p50"], float) and isinstance(lag["p99"], float)
    assert 0 <= lag["min"] <= lag["p50"] <= lag["p99"] <= lag["max"]


# -- cost -------------------------------------------------------------------------------------------------------


def independent_cost(usage: dict[str, Any]) -> float:
    """gpt-realtime at the issue's figures, written out by hand (not through the pricing table)."""
    inputs, outputs = usage["input_token_details"], usage["output_token_details"]
    cached = inputs["cached_tokens_details"]
    return ((inputs["text_tokens"] - cached["text_tokens"]) * 4 + cached["text_tokens"] * 0.40
            + (inputs["audio_tokens"] - cached["audio_tokens"]) * 32 + cached["audio_tokens"] * 0.40
            + outputs["text_tokens"] * 16 + outputs["audio_tokens"] * 64) / 1e6


async def test_a_priced_profile_records_cost_per_sample_and_per_run(ga_server: str, data_dir: Path,
                                                                    tmp_path: Path, no_api_key: None) -> None:
    run_dir, summary = await execute(options(ga_server, tmp_path / "priced", data_dir, model="gpt-realtime",
                                             limit=4))
    records = list(read_records(run_dir))
    for r in records:
        assert r["usage"]["input_token_details"]["audio_tokens"] > 0 and r["usage"]["output_tokens"] > 0
        assert r["cost_usd"] == pytest.approx(independent_cost(r["usage"]), abs=1e-8)
        assert r["cost_usd"] > 0
    assert summary["cost"]["priced_samples"] == 4
    assert summary["cost"]["usd"] == pytest.approx(sum(r["cost_usd"] for r in records), abs=1e-6)

    unpriced_dir, unpriced = await execute(options(ga_server, tmp_path / "unpriced", data_dir, limit=2))
    assert all(r["cost_usd"] is None for r in read_records(unpriced_dir))  # unknown price: null, never 0
    assert unpriced["cost"] == {"usd": None, "priced_samples": 0, "usd_per_100_samples": None}
    assert pricing.price_for(load_profile("openai-compatible").model) is not None  # it is the profile that opts out


# -- attempts ---------------------------------------------------------------------------------------------------


async def test_transient_failures_are_retried_up_to_the_cap(data_dir: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": "Yes."}]}])
    # Every response fails with `server_error` (transient): each sample is tried exactly max_attempts times.
    with serve_process("--engine", "scripted", "--script", str(script), "--faults", "server_error",
                       "--fault-rate", "1") as url:
        run_dir, summary = await execute(options(url, tmp_path / "run", data_dir, limit=2, max_attempts=3))
    for r in read_records(run_dir):
        assert r["status"] == "error" and r["error"]["kind"] == "server_error" and r["attempts"] == 3
        assert [e["kind"] for e in r["attempt_errors"]] == ["server_error"] * 3
        assert {e["class"] for e in r["attempt_errors"]} == {"transient"}
    assert summary["attempts"] == {"total": 6, "samples_retried": 2}


async def test_a_lost_endpoint_after_a_good_start_is_an_ordinary_failure(data_dir: Path, tmp_path: Path) -> None:
    """The fail-fast is only for an endpoint never reached: once a session has connected, a later outage costs
    the samples it hits (each retried, then recorded) and the run goes on to the end."""
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": "Yes."}]}])
    out = tmp_path / "run"
    with serve_subprocess("--engine", "scripted", "--script", str(script)) as (url, server):
        run = asyncio.create_task(execute(options(url, out, data_dir, limit=3, max_attempts=2, concurrency=1)))
        async with asyncio.timeout(60):
            while not (out / "samples.jsonl").exists() or not (out / "samples.jsonl").read_text():
                await asyncio.sleep(0.01)
        server.kill()  # the endpoint goes away after the first sample
        run_dir, summary = await run
    records = list(read_records(run_dir))
    assert records[0]["status"] == "ok" and len(records) == 3
    assert {r["status"] for r in records[1:]} == {"error"} and summary["complete"] is True


@pytest.fixture(scope="module")
def keyed_server(script: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("keyed-server") / "server.log"
    with serve_process("--engine", "scripted", "--script", str(script), "--api-key", "azure-key-123",
                       log=log) as url:
        yield url


async def test_azure_sends_the_api_key_header_and_a_wrong_key_is_fatal_at_once(
        keyed_server: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)  # --url replaces the endpoint
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-123")
    run_dir, summary = await execute(options(keyed_server, tmp_path / "right", data_dir, model="azure-gpt-realtime",
                                             limit=2))
    assert summary["counts"]["ok"] == 2 and all(r["cost_usd"] > 0 for r in read_records(run_dir))

    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "wrong-key")
    run_dir, summary = await execute(options(keyed_server, tmp_path / "wrong", data_dir, model="azure-gpt-realtime",
                                             limit=2, max_attempts=6))
    for r in read_records(run_dir):
        assert r["error"]["kind"] == "auth" and r["error"]["class"] == "fatal"
        assert r["attempts"] == 1 and len(r["attempt_errors"]) == 1  # fatal: never retried
    for path in (tmp_path / "right").rglob("*"):
        if path.is_file():
            assert b"azure-key-123" not in path.read_bytes(), f"key written to {path}"
