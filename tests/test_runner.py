"""The runner end to end against a real `s2s-eval serve` process: records, grading, journal, resume, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import UserError
from s2s_eval.log import RECORD_FIELDS, read_records
from s2s_eval.runners.run import EndpointUnreachable, RunOptions, execute
from tests.servers import serve_process, write_script

SECRET = "sk-test-NEVER-WRITE-ME-0123456789"

WRONG = {"valid": "invalid", "invalid": "valid", "Yes": "No", "No": "Yes"}


def spoken_answer(category: str, answer: str) -> str:
    return {"formal_fallacies": f"The argument is {answer}.", "navigate": f"{answer}.",
            "object_counting": f"The answer is {answer}.", "web_of_lies": f"{answer}."}[category]


@pytest.fixture(scope="module")
def first_samples(data_dir: Path):  # type: ignore[no-untyped-def]
    samples, _ = load_samples(load_eval("big_bench_audio"), data_dir)
    return select(samples, None, 8)


@pytest.fixture(scope="module")
def scripted_server(first_samples, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Answers the first 8 samples: right for index 0, wrong for index 1 (the test writes the script)."""
    lines = []
    for sample in first_samples:
        right = sample.sample_id.endswith("_0")
        target = sample.target
        answer = target if right else WRONG.get(target, str(int(target) + 1) if target.isdigit() else "no")
        lines.append({"sample_id": sample.sample_id, "responses": [{"text": spoken_answer(sample.category, answer)}]})
    folder = tmp_path_factory.mktemp("server")
    script = write_script(folder / "script.jsonl", lines)
    with serve_process("--engine", "scripted", "--script", str(script), log=folder / "server.log") as url:
        yield url


def options(url: str, out: Path, **overrides) -> RunOptions:  # type: ignore[no-untyped-def]
    base = dict(model="openai-compatible", eval="big_bench_audio", limit=8, url=url, out=out,
                progress=False, concurrency=3)
    return RunOptions(**{**base, **overrides})


async def test_a_run_journals_graded_timed_records(scripted_server: str, data_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # sent to the loopback server, must never be written
    run_dir, summary = await execute(options(scripted_server, tmp_path / "run", data_dir=data_dir))

    records = list(read_records(run_dir))
    assert len(records) == 8 and len({r["sample_id"] for r in records}) == 8
    for r in records:
        assert set(RECORD_FIELDS) <= set(r)
        assert r["status"] == "ok" and r["error"] is None and r["attempts"] == 1
        assert r["model"] == "openai-compatible" and r["eval"] == "big_bench_audio"
        assert r["correct"] is r["sample_id"].endswith("_0"), (r["sample_id"], r["response_text"], r["grade"])
        assert r["score"] == (1.0 if r["correct"] else 0.0)
        latency = r["latency"]
        assert 0 < latency["ttft_ms"] <= latency["total_ms"] and 0 < latency["ttfa_ms"] <= latency["total_ms"]
        assert r["usage"]["total_tokens"] > 0
        info = sf.info(run_dir / r["output_audio"])
        assert info.samplerate == 24_000 and info.duration == pytest.approx(r["output_audio_s"], abs=0.01)

    assert summary["counts"] == {"total": 8, "ok": 8, "error": 0, "error_kinds": {}, "error_classes": {}}
    assert summary["accuracy"] == 0.5 and summary["complete"] is True
    assert {c: v["accuracy"] for c, v in summary["by_category"].items()} == {
        "formal_fallacies": 0.5, "navigate": 0.5, "object_counting": 0.5, "web_of_lies": 0.5}
    assert summary["latency"]["ttfa_ms"]["n"] == 8
    assert json.loads((run_dir / "summary.json").read_text()) == summary

    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["model"]["name"] == "openai-compatible" and spec["model"]["auth_env"] == "OPENAI_API_KEY"
    assert spec["eval"]["name"] == "big_bench_audio" and len(spec["dataset"]["content_sha256"]) == 64
    assert spec["tts"]["engine"] == "espeak-ng" and spec["tts"]["engine_version"]
    assert spec["runner"]["compression"] is False and spec["runner"]["concurrency"] == 3
    assert spec["harness"]["version"]
    assert spec["host"]["event_loop"] == "asyncio"  # pytest-asyncio's loop; `s2s-eval run` prefers uvloop

    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"secret written to {path}"


async def test_an_empty_answer_is_a_finished_sample_graded_wrong_as_empty(data_dir: Path, tmp_path: Path) -> None:
    """A model that answers nothing: the session succeeded, so the record is ok, and the grader says why it is
    wrong (`empty`) instead of the runner calling it a failure or a grader guessing."""
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": ""}]}])
    with serve_process("--engine", "scripted", "--script", str(script), log=tmp_path / "server.log") as url:
        run_dir, summary = await execute(options(url, tmp_path / "run", data_dir=data_dir, limit=4))
    records = list(read_records(run_dir))
    assert len(records) == 4
    for r in records:
        assert (r["status"], r["error"], r["attempts"], r["response_text"]) == ("ok", None, 1, "")
        assert (r["correct"], r["score"], r["grade"]["reason"]) == (False, 0.0, "empty")
        assert [x["status"] for x in r["responses"]] == ["completed"]
        assert r["output_audio"] is None and r["output_audio_s"] == 0 and r["latency"]["ttfa_ms"] is None
        assert r["latency"]["total_ms"] > 0
    assert summary["counts"]["ok"] == 4 and summary["accuracy"] == 0.0


async def test_resume_skips_journaled_samples_and_drops_a_torn_line(scripted_server: str, data_dir: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "run"
    await execute(options(scripted_server, out, data_dir=data_dir, limit=4))
    journal = out / "samples.jsonl"
    first_four = journal.read_text()
    with journal.open("a") as f:
        f.write('{"sample_id": "formal_fallacies_1", "eval": "big_')  # a crash mid-write

    with pytest.raises(UserError, match="--resume"):
        await execute(options(scripted_server, out, data_dir=data_dir))
    with pytest.raises(UserError, match="--model: .*name openai-compatible.* in the run, .*name local.* now"):
        await execute(options(scripted_server, out, data_dir=data_dir, model="local", resume=True))

    _, summary = await execute(options(scripted_server, out, data_dir=data_dir, resume=True))
    lines = journal.read_text().splitlines()
    assert journal.read_text().startswith(first_four)  # finished samples are never rewritten
    ids = [json.loads(line)["sample_id"] for line in lines]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert summary["counts"]["total"] == 8 and summary["complete"] is True
    assert "resumed_at" in json.loads((out / "spec.json").read_text())


async def test_an_unreachable_endpoint_stops_the_run_in_one_line_and_resume_finishes_it(
        data_dir: Path, tmp_path: Path) -> None:
    """Nothing listens: the first sample's attempts all fail to connect and no session ever has, so the run stops
    with one line instead of retrying every sample; nothing is journaled, and --resume once the server is up runs
    every sample."""
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/v1/realtime"
    with pytest.raises(EndpointUnreachable) as raised:
        await execute(options(url, tmp_path / "run", data_dir=data_dir, limit=6, max_attempts=2))
    message = str(raised.value)
    assert "\n" not in message and f"cannot connect to {url}" in message and "--resume" in message
    assert list(read_records(tmp_path / "run")) == []
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["complete"] is False

    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": "Yes."}]}])
    with serve_process("--engine", "scripted", "--script", str(script), "--port", str(port)):
        run_dir, summary = await execute(options(url, tmp_path / "run", data_dir=data_dir, limit=6, resume=True))
    records = list(read_records(run_dir))
    assert len(records) == 6 and {r["status"] for r in records} == {"ok"} and summary["complete"] is True


async def test_the_local_profile_starts_its_own_server(data_dir: Path, tmp_path: Path, no_api_key: None) -> None:
    run_dir, summary = await execute(RunOptions(model="local", eval="big_bench_audio", limit=2, data_dir=data_dir,
                                                out=tmp_path / "run", progress=False))
    records = list(read_records(run_dir))
    assert [r["status"] for r in records] == ["ok", "ok"]
    # The echo engine speaks the question back and cannot transcribe it: graded as an empty answer, not guessed.
    assert all(r["response_text"] == "" and r["grade"]["reason"] == "empty" and r["correct"] is False
               for r in records)
    assert all(r["output_audio_s"] == pytest.approx(r["input_audio_s"], abs=0.01) for r in records)
    assert (run_dir / "server.log").exists() and summary["complete"]
