"""Big Bench Audio in extract-only judge mode, end to end: runner, scripted server, and a fake judge on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import RunOptions, execute
from tests.openai_fake import FakeOpenAI, Reply, extraction
from tests.servers import serve_process, write_script


async def test_judge_extract_grades_records_and_reports_agreement_with_the_rules(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = select(load_samples(load_eval("big_bench_audio_judged"), data_dir)[0], None, 4)
    assert [s.category for s in samples] == ["formal_fallacies", "navigate", "object_counting", "web_of_lies"]
    spoken = {s.sample_id: f"Thinking it through, {word}. The answer is {s.target}."  # distinct transcripts
              for s, word in zip(samples, ("alpha", "bravo", "charlie", "delta"), strict=True)}
    counting = samples[2]
    # What the fake judge extracts from each transcript: right twice, wrong once (rules say right), malformed once.
    replies = {spoken[samples[0].sample_id]: extraction(samples[0].target),
               spoken[samples[1].sample_id]: extraction(samples[1].target),
               spoken[counting.sample_id]: extraction(str(int(counting.target) + 1)),
               spoken[samples[3].sample_id]: Reply("The answer is probably yes.")}

    def judge(body: dict) -> Reply:
        prompt = json.dumps(body["messages"])
        return next(reply for text, reply in replies.items() if json.dumps(text)[1:-1] in prompt)

    script = write_script(tmp_path / "script.jsonl", [{"sample_id": i, "responses": [{"text": t}]}
                                                     for i, t in spoken.items()])
    async with FakeOpenAI(chat=judge) as fake:
        monkeypatch.setenv("S2S_JUDGE_BASE_URL", fake.base_url)
        monkeypatch.setenv("S2S_JUDGE_MODEL", "judge-fake")
        monkeypatch.setenv("S2S_JUDGE_API_KEY_ENV", "S2S_TEST_UNSET_KEY")
        monkeypatch.setenv("S2S_JUDGE_MAX_RETRIES", "0")
        with serve_process("--engine", "scripted", "--script", str(script)) as url:
            run_dir, summary = await execute(RunOptions(
                model="openai-compatible", eval="big_bench_audio_judged", url=url, limit=4, data_dir=data_dir,
                out=tmp_path / "run", progress=False, save_audio=False))
    records = {r["sample_id"]: r for r in read_records(run_dir)}
    assert [records[s.sample_id]["correct"] for s in samples] == [True, True, False, None]
    assert all(records[s.sample_id]["grade"]["details"]["rule"]["correct"] is True for s in samples)
    assert records[samples[3].sample_id]["grade"]["reason"].startswith("not judged")
    assert summary["accuracy"] == pytest.approx(2 / 3) and summary["graded"] == 3
    assert summary["metrics"]["judge_rule_agreement"] == {"mean": pytest.approx(2 / 3, abs=1e-6), "n": 3}
    assert read_spec(run_dir)["judge"]["model"] == "judge-fake"


async def test_asr_consistency_is_measured_on_the_output_audio_or_says_not_measured(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = select(load_samples(load_eval("big_bench_audio"), data_dir)[0], None, 2)
    spoken = {samples[0].sample_id: "The answer is invalid.", samples[1].sample_id: "The answer is no."}
    heard = {samples[0].sample_id: "the answer is invalid", samples[1].sample_id: "the answer is yes"}
    uploads: list[bytes] = []

    def transcribe(body: dict) -> Reply:
        if len(body["file"]) > 8 * 48_000:  # a question clip (over 8 s), checked by big_bench_audio's round trip
            return Reply("a question")
        uploads.append(body["file"])
        # Which sample's answer is this? Concurrency 1: the answers come in the order of the samples.
        return Reply(heard[samples[len(uploads) - 1].sample_id])

    script = write_script(tmp_path / "script.jsonl", [{"sample_id": i, "responses": [{"text": t}]}
                                                     for i, t in spoken.items()])
    with serve_process("--engine", "scripted", "--script", str(script)) as url:
        options = RunOptions(model="openai-compatible", eval="big_bench_audio", url=url, ids=list(spoken),
                             concurrency=1, data_dir=data_dir, progress=False, save_audio=False,
                             out=tmp_path / "unmeasured")
        run_dir, summary = await execute(options)
        assert [r["asr"]["wer"] for r in read_records(run_dir)] == [None, None]
        assert all(r["asr"]["reason"].startswith("not measured") for r in read_records(run_dir))
        assert "asr_wer" not in summary["metrics"] and read_spec(run_dir)["asr"]["configured"] is False

        async with FakeOpenAI(transcriptions=transcribe) as fake:
            monkeypatch.setenv("S2S_ASR_BASE_URL", fake.base_url)
            monkeypatch.setenv("S2S_ASR_MODEL", "asr-fake")
            monkeypatch.setenv("S2S_ASR_API_KEY_ENV", "S2S_TEST_UNSET_KEY")
            run_dir, summary = await execute(RunOptions(**{**options.__dict__, "out": tmp_path / "measured"}))
    records = {r["sample_id"]: r for r in read_records(run_dir)}
    assert records[samples[0].sample_id]["asr"]["wer"] == 0.0
    assert records[samples[1].sample_id]["asr"]["wer"] == pytest.approx(1 / 4)  # "no" heard as "yes"
    assert summary["metrics"]["asr_wer"] == {"mean": pytest.approx(1 / 8), "n": 2}
    assert len(uploads) == 2 and all(len(u) > 1000 for u in uploads)  # real audio went to the backend
