"""`s2s-eval regrade`: new grades from the log alone, with no Realtime server listening.

Each run is a real scripted run on loopback; the server is stopped before re-grading, so any attempt to open a
session would fail. Judges are the recorded fake on loopback (tests/openai_fake.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.complexfuncbench import FIXTURE_DIR, golden_script
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import UserError
from s2s_eval.log import ITEMS, read_records, run_spec
from s2s_eval.reports.compare import Thresholds, compare
from s2s_eval.runners.regrade import regrade
from s2s_eval.runners.run import RunOptions, execute
from tests.openai_fake import FakeOpenAI, Reply, extraction, score
from tests.servers import serve_process, write_script
from tests.test_multichallenge import ANSWERS, EXPECTED, JUDGE_ENV, ROWS, judge_replies, use_judge, write_data


@pytest.fixture(autouse=True)
def no_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path / "cache"))
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)


async def scripted_run(folder: Path, lines: list[dict[str, Any]], **options: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = write_script(folder / "script.jsonl", lines)
    with serve_process("--engine", "scripted", "--script", str(script), log=folder / "server.log") as url:
        run_dir, _ = await execute(RunOptions(model="openai-compatible", url=url, out=folder / "run",
                                              progress=False, max_attempts=1, **options))
    return run_dir  # the server is gone from here on


def grades(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each record's verdict, without the bookkeeping a re-grade adds."""
    return {r["sample_id"]: {"correct": r["correct"], "score": r["score"], "grade": r["grade"]}
            for r in read_records(run_dir)}


async def test_big_bench_audio_rules_then_a_judge(tmp_path: Path, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch, no_api_key: None) -> None:
    samples = select(load_samples(load_eval("big_bench_audio"), data_dir)[0], None, 4)
    spoken = {s.sample_id: f"Step by step, {word}. The answer is {s.target if right else 'something else'}."
              for s, word, right in zip(samples, ("alpha", "bravo", "charlie", "delta"), (True, True, False, False),
                                        strict=True)}
    run = await scripted_run(tmp_path / "rules", [{"sample_id": i, "responses": [{"text": t}]}
                                                  for i, t in spoken.items()],
                             eval="big_bench_audio", limit=4, data_dir=data_dir)
    before = grades(run)
    assert [before[s.sample_id]["correct"] for s in samples] == [True, True, False, False]

    again, _ = await regrade(run, out=tmp_path / "again", progress=False)
    assert grades(again) == before  # the same rules, the same grades, every field
    assert all(r["regraded"]["previous_grade"] == before[r["sample_id"]]["grade"] for r in read_records(again))

    # Another compatible grader: the judge extracts the answer. It reads the second transcript as wrong and
    # cannot read the fourth: exactly those two change (and the third stays wrong).
    flip = {"Yes": "No", "No": "Yes", "valid": "invalid", "invalid": "valid"}
    wrong = [flip.get(s.target) or str(int(s.target) + 1) for s in samples]
    replies = {spoken[samples[0].sample_id]: extraction(samples[0].target),
               spoken[samples[1].sample_id]: extraction(wrong[1]),
               spoken[samples[2].sample_id]: extraction(wrong[2]),
               spoken[samples[3].sample_id]: Reply("Probably yes.")}

    def judge(body: dict[str, Any]) -> Reply:
        prompt = json.dumps(body["messages"])
        return next(reply for text, reply in replies.items() if json.dumps(text)[1:-1] in prompt)

    async with FakeOpenAI(chat=judge) as fake:
        use_judge(monkeypatch, fake)
        judged, summary = await regrade(run, out=tmp_path / "judged", grader_name="big_bench_audio_judge",
                                        progress=False)
    after = grades(judged)
    assert [after[s.sample_id]["correct"] for s in samples] == [True, False, False, None]
    assert {r["grade"]["grader"] for r in read_records(judged)} == {"big_bench_audio_judge"}
    assert summary["accuracy"] == pytest.approx(1 / 3) and summary["graded"] == 3
    spec = run_spec(judged)
    assert spec.grader == {"name": "big_bench_audio_judge", "version": "1"} and spec.judge["model"] == "judge-fake"
    warnings = "\n".join(compare(run, judged, Thresholds()).warnings)
    assert "graders (name or version) differ" in warnings and "judges differ" in warnings
    assert run_spec(run).grader["name"] == "big_bench_audio"  # the original is untouched

    with pytest.raises(UserError, match="cannot grade a run graded by 'big_bench_audio'"):
        await regrade(run, out=tmp_path / "x", grader_name="multichallenge", progress=False)


async def test_multichallenge_judged_after_the_fact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   no_api_key: None) -> None:
    data = write_data(tmp_path / "data", ROWS)
    run = await scripted_run(tmp_path / "mc", [{"sample_id": sid, "responses": [{"text": text}]}
                                               for sid, (text, _) in ANSWERS.items()],
                             eval="multichallenge", data_dir=data, concurrency=2)
    assert {r["sample_id"]: r["correct"] for r in read_records(run)} == dict.fromkeys(EXPECTED)  # no judge: None
    (data / "multichallenge" / "benchmark_questions.jsonl").unlink()  # the log is all re-grading needs
    async with FakeOpenAI(chat=judge_replies({text: reply for text, reply in ANSWERS.values()})) as fake:
        use_judge(monkeypatch, fake)
        _, summary = await regrade(run, in_place=True, progress=False)
    assert {r["sample_id"]: r["correct"] for r in read_records(run)} == EXPECTED
    assert summary["graded"] == 3 and run_spec(run).judge["model"] == "judge-fake"


async def test_complexfuncbench_reproduces_its_call_matching(tmp_path: Path, no_api_key: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    samples = {s.sample_id: s for s in load_samples(load_eval("complexfuncbench"), FIXTURE_DIR)[0]}
    lines = [golden_script(s, skip=[s.metadata["golden_calls"] - 1] if i % 2 else []) for i, s in
             enumerate(samples.values())]
    run = await scripted_run(tmp_path / "cfb", lines, eval="complexfuncbench", data_dir=FIXTURE_DIR, concurrency=4)
    before = grades(run)
    assert sorted(g["grade"]["reason"] for g in before.values()) == ["stop_early"] * 3 + ["success"] * 4
    again, _ = await regrade(run, out=tmp_path / "again", progress=False)
    assert grades(again) == before  # step-by-step matching rebuilt from the recorded calls, exactly

    async with FakeOpenAI(chat=lambda body: score(2)) as fake:  # now the answers' completeness can be scored
        use_judge(monkeypatch, fake)
        judged, summary = await regrade(run, out=tmp_path / "judged", progress=False)
    after = grades(judged)
    assert {i: g["correct"] for i, g in after.items()} == {i: g["correct"] for i, g in before.items()}
    assert summary["metrics"]["answer_completeness"]["n"] == 7


async def test_a_run_without_its_samples_cannot_be_regraded(tmp_path: Path, data_dir: Path,
                                                            no_api_key: None) -> None:
    run = await scripted_run(tmp_path / "old", [{"sample_id": "*", "responses": [{"text": "Yes."}]}],
                             eval="big_bench_audio", limit=2, data_dir=data_dir)
    (run / ITEMS).unlink()  # as in a run made before schema version 1
    with pytest.raises(UserError, match="does not record its samples"):
        await regrade(run, out=tmp_path / "new", progress=False)
    with pytest.raises(UserError, match="either --out NEW_DIR"):
        await regrade(run, progress=False)
