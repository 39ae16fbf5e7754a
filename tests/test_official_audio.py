"""Big Bench Audio's official recordings: read from a local copy laid out like `ArtificialAnalysis/big_bench_audio`
(metadata.jsonl + MP3 files, made here with espeak-ng), matched to Big-Bench-Hard rows, decoded without torch, and
asked in a run; offline without a copy, one clear line."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from s2s_eval import audio
from s2s_eval.datasets import load_samples
from s2s_eval.datasets.spec import load_eval
from s2s_eval.datasets.tts_input import InputAudio
from s2s_eval.errors import DataError, UserError
from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import RunOptions, execute
from tests.conftest import TIMING_SCALE

CATEGORIES = ("formal_fallacies", "navigate", "object_counting", "web_of_lies")
PER_CATEGORY = 2


def _bbh(data_dir: Path, category: str) -> list[dict[str, str]]:
    return json.loads((data_dir / "big_bench_hard" / f"{category}.json").read_text())["examples"]


def _mp3(text: str, path: Path) -> None:
    wav = subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "190", "--stdout"], input=text.encode(),
                         capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, format="MP3")


def make_copy(root: Path, data_dir: Path, *, transcripts: bool, category_names: dict[str, str] | None = None,
              misaligned: bool = False) -> Path:
    """A data dir with Big-Bench-Hard (linked) and a small official-audio copy: 2 recordings per category, listed
    out of order with ids that put them back in order."""
    (root / "big_bench_hard").symlink_to(data_dir / "big_bench_hard")
    rows = []
    next_id = 100
    for category in CATEGORIES:
        examples = _bbh(data_dir, category)[:PER_CATEGORY]
        for index, example in enumerate(examples):
            file_name = f"data/question_{next_id}.mp3"
            _mp3(example["input"].split("\n")[0][:120], root / "big_bench_audio" / file_name)
            row = {"file_name": file_name, "id": next_id,
                   "category": (category_names or {}).get(category, category),
                   "official_answer": examples[1 - index]["target"] if misaligned else example["target"]}
            if transcripts:
                row["transcript"] = example["input"]
            rows.append(row)
            next_id += 1
    rows.reverse()  # the file's order is not the questions' order
    (root / "big_bench_audio" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def official_copy(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return make_copy(tmp_path_factory.mktemp("official"), data_dir, transcripts=False,
                     category_names={"formal_fallacies": "Formal Fallacies", "web_of_lies": "web of lies"})


def test_recordings_match_questions_by_position_within_category(official_copy: Path, data_dir: Path) -> None:
    spec = load_eval("big_bench_audio_official")
    samples, source = load_samples(spec, official_copy)
    assert [s.sample_id for s in samples] == [f"{c}_{i}" for i in range(PER_CATEGORY) for c in CATEGORIES]
    facts = source["official_audio"]
    assert facts["matched"] == 8 and facts["rows"] == 8 and facts["answer_agreement"] == 1.0
    assert facts["matched_by"] == "position within category (by id)" and facts["revision"] == "local copy"
    assert len(facts["missing"]) == 1000 - 8
    first = next(s for s in samples if s.sample_id == "navigate_0")
    ref = first.metadata["official_audio"]
    assert ref["id"] == 102 and ref["file_name"] == "data/question_102.mp3"  # ordered by id, not by file order
    assert first.target == _bbh(data_dir, "navigate")[0]["target"].strip()
    assert first.prompt_text  # the text stays: text-input runs and graders still have it


def test_recordings_match_by_transcript_when_the_metadata_has_one(tmp_path: Path, data_dir: Path) -> None:
    copy = make_copy(tmp_path, data_dir, transcripts=True)
    rows = [json.loads(line) for line in (copy / "big_bench_audio" / "metadata.jsonl").read_text().splitlines()]
    for row in rows:  # ids that would mislead a positional match: only the transcripts say which is which
        row["id"] = -row["id"]
    (copy / "big_bench_audio" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples, source = load_samples(load_eval("big_bench_audio_official"), copy)
    assert source["official_audio"]["matched_by"] == "transcript" and source["official_audio"]["matched"] == 8
    assert {s.sample_id: s.metadata["official_audio"]["id"] for s in samples}["navigate_0"] == -102


def test_misaligned_recordings_are_refused(tmp_path: Path, data_dir: Path) -> None:
    copy = make_copy(tmp_path, data_dir, transcripts=False, misaligned=True)
    with pytest.raises(DataError, match=r"only \d+% of the recordings' official answers equal the Big-Bench-Hard"):
        load_samples(load_eval("big_bench_audio_official"), copy)


def test_offline_without_a_copy_is_one_line_quickly(data_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        load_samples(load_eval("big_bench_audio_official"), data_dir)  # no big_bench_audio/ here: the Hub
    message = str(caught.value)
    assert time.monotonic() - started < 5.0 * TIMING_SCALE and "\n" not in message
    assert message.startswith("cannot load the official Big Bench Audio recordings "
                              "(ArtificialAnalysis/big_bench_audio@main) from the Hugging Face Hub: Hugging Face "
                              "offline mode is on (HF_HUB_OFFLINE=1)")
    assert "use the eval big_bench_audio" in message


async def test_a_run_asks_with_the_official_recordings(official_copy: Path, tmp_path: Path) -> None:
    run_dir, summary = await execute(RunOptions(model="local", eval="big_bench_audio_official", limit=4,
                                                data_dir=official_copy, out=tmp_path / "run", progress=False))
    records = list(read_records(run_dir))
    assert summary["counts"]["ok"] == 4
    for r in records:
        assert r["voice"] == "official" and r["tts"]["source"] == "official" and r["perturbation"] is None
        file_name = r["tts"]["file_name"]
        expected = audio.decode_to_pcm16((official_copy / "big_bench_audio" / file_name).read_bytes())
        heard = audio.read_wav(run_dir / r["input_audio"])
        assert len(heard) == len(expected) > 1000  # the recording, scaled to the target loudness
        scale = float(np.dot(audio.from_pcm16(heard), audio.from_pcm16(expected)) /
                      np.dot(audio.from_pcm16(expected), audio.from_pcm16(expected)))
        assert np.allclose(audio.from_pcm16(heard), scale * audio.from_pcm16(expected), atol=2 / 32768)
        assert r["tts"]["loudness_target_lufs"] == -23.0
        assert r["input_clip"]["loudness_lufs"] == pytest.approx(-23.0, abs=0.5)
        assert r["input_audio_s"] == pytest.approx(audio.duration_s(expected), abs=0.01)
    spec = read_spec(run_dir)
    assert spec["tts"]["source"] == "official" and spec["dataset"]["official_audio"]["answer_agreement"] == 1.0
    assert spec["tts_verification"]["reason"].startswith("not run")


def test_official_clip_is_decoded_mp3_at_24_khz(official_copy: Path, tmp_path: Path) -> None:
    spec = load_eval("big_bench_audio_official")
    samples, _ = load_samples(spec, official_copy)
    speech = InputAudio(spec, cache_root=tmp_path)
    pcm = speech.speech(samples[0], samples[0].prompt_text)
    source = official_copy / "big_bench_audio" / samples[0].metadata["official_audio"]["file_name"]
    original, rate = sf.read(source, dtype="float32")
    assert rate == 22_050 and abs(audio.duration_s(pcm) - original.size / rate) < 0.01
    assert np.sqrt(np.mean(audio.from_pcm16(pcm) ** 2)) > 0.01
