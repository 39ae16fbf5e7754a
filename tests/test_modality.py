"""Modality ablation: the same items as speech→speech, speech→text, text→speech and text→text."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import UserError
from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import RunOptions, execute
from tests.servers import serve_process, write_script


@pytest.fixture(scope="module")
def scripted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    samples = select(load_samples(load_eval("big_bench_audio"), data_dir)[0], None, 4)
    script = write_script(tmp_path_factory.mktemp("script") / "script.jsonl",
                          [{"sample_id": s.sample_id, "responses": [{"text": f"The answer is {s.target}."}]}
                           for s in samples])
    with serve_process("--engine", "scripted", "--script", str(script)) as url:
        yield url, [s.sample_id for s in samples]


@pytest.mark.parametrize(("given", "answered"), [("audio", "audio"), ("audio", "text"), ("text", "audio"),
                                                  ("text", "text")])
async def test_each_modality_pair_runs_the_same_items_and_records_the_modality(
        scripted: tuple[str, list[str]], data_dir: Path, tmp_path: Path, given: str, answered: str) -> None:
    url, ids = scripted
    run_dir, summary = await execute(RunOptions(
        model="openai-compatible", eval="big_bench_audio", url=url, ids=ids, data_dir=data_dir, out=tmp_path / "run",
        progress=False, save_audio=False, input_modality=given, output_modality=answered))
    records = list(read_records(run_dir))
    assert [r["sample_id"] for r in records] and {r["sample_id"] for r in records} == set(ids)
    assert all(r["status"] == "ok" and r["correct"] is True for r in records), records[0]
    assert all(r["modality"] == {"input": given, "output": answered} for r in records)
    spec = read_spec(run_dir)["runner"]
    assert spec["input_modality"] == given and spec["output_modalities"] == [answered]
    for r in records:
        assert (r["input_audio_s"] > 0.5) is (given == "audio")  # text input sends no audio at all
        assert (r["latency"]["ttfa_ms"] is not None) is (answered == "audio")  # text output has no audio
        assert r["latency"]["ttft_ms"] is not None
        assert (r["output_audio_s"] > 0) is (answered == "audio")
    assert summary["accuracy"] == 1.0


async def test_text_input_with_server_vad_is_refused_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--input text needs --turn-mode manual"):
        await execute(RunOptions(model="local", eval="big_bench_audio", limit=1, data_dir=data_dir,
                                 out=tmp_path / "run", progress=False, input_modality="text", turn_mode="vad"))
