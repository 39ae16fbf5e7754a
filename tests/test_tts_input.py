"""A run's spoken input end to end: the voice mix, round-trip verification against a loopback transcription server,
perturbations recorded per sample, and the runs of the embedded server that carry them."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from s2s_eval import audio
from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.perturb import Perturbation
from s2s_eval.datasets.spec import EvalSpec, load_eval
from s2s_eval.datasets.tts_input import InputAudio, assign_voice
from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import RunOptions, execute, texts_to_speak
from s2s_eval.speech.asr import _wav_bytes, load_transcriber
from s2s_eval.speech.tts import Verification
from tests.openai_fake import FakeOpenAI, Reply

MIX = ("en-us", "en-gb+f3")


def mixed_spec(**tts: object) -> EvalSpec:
    spec = load_eval("big_bench_audio")
    verify = spec.tts.verify.model_copy(update={"enabled": True, "on_fail": "resynthesize"})
    return spec.model_copy(update={"tts": spec.tts.model_copy(update={"voices": MIX, "verify": verify, **tts})})


def test_voice_assignment_is_seeded_stable_and_spread() -> None:
    ids = [f"{c}_{i}" for c in ("navigate", "web_of_lies", "object_counting", "formal_fallacies") for i in range(250)]
    voices = [assign_voice(i, MIX, seed=0) for i in ids]
    assert voices == [assign_voice(i, MIX, seed=0) for i in ids]  # a pure function of the id
    assert voices != [assign_voice(i, MIX, seed=1) for i in ids]  # the seed changes it
    counts = Counter(voices)
    assert set(counts) == set(MIX) and abs(counts["en-us"] - 500) < 60  # about half each over 1,000 samples
    three = Counter(assign_voice(i, ("a", "b", "c"), seed=0) for i in ids)
    assert min(three.values()) > 280


def test_a_sample_keeps_its_voice_whatever_the_selection(data_dir: Path) -> None:
    spec = mixed_spec()
    samples, _ = load_samples(spec, data_dir)
    speech = InputAudio(spec)
    every = {s.sample_id: speech.voice_of(s) for s in samples}
    assert set(every.values()) == set(MIX)
    for sample in select(samples, None, 8):
        assert speech.voice_of(sample) == every[sample.sample_id]


async def test_mixed_voices_speak_differently_and_are_recorded(data_dir: Path, tmp_path: Path) -> None:
    spec = mixed_spec()
    samples = select(load_samples(spec, data_dir)[0], None, 8)
    speech = InputAudio(spec, cache_root=tmp_path)
    prepared = await speech.prepare(samples, lambda s: texts_to_speak([s], spec), None, progress=False)
    assert prepared.clips == 8 and prepared.synthesized == 8 and not prepared.excluded
    for sample in samples:
        label = speech.voice_of(sample)
        pcm = speech.speech(sample, sample.prompt_text)
        assert pcm == speech.synth(label).speech(sample.prompt_text)  # clean: the cached clip of its voice
        other = speech.synth(next(v for v in MIX if v != label)).speech(sample.prompt_text)
        assert pcm != other
        record = speech.record(sample)
        assert record["voice"] == label and record["perturbation"] is None
        assert record["tts"]["voice"] == label and record["tts"]["engine"] == "espeak-ng"
        assert record["tts"]["engine_version"] and record["tts"]["rate"] == 175
        assert record["tts"]["verification"]["status"] == "not measured"
    described = speech.describe()
    assert [v["label"] for v in described["voices"]] == list(MIX) and described["voice"] == "en-us + en-gb+f3"


def _transcripts_by_audio(spec: EvalSpec, samples: list, heard: dict[tuple[str, str], str]) -> dict[str, str]:
    """What the fake backend 'hears' for each clip, keyed by the SHA-256 of the uploaded WAV."""
    speech = InputAudio(spec)
    table = {}
    for sample in samples:
        for voice in MIX:
            wav = _wav_bytes(speech.synth(voice).speech(sample.prompt_text))
            table[hashlib.sha256(wav).hexdigest()] = heard.get((sample.sample_id, voice), sample.prompt_text)
    return table


async def test_round_trip_verification_resynthesises_or_excludes(data_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    spec = mixed_spec()
    samples = select(load_samples(spec, data_dir)[0], None, 8)
    speech = InputAudio(spec)
    first, second, third = samples[0], samples[1], samples[2]
    garbled = "completely different words were heard here"
    heard = {(first.sample_id, speech.voice_of(first)): garbled,  # its own voice fails; the other passes
             (second.sample_id, "en-us"): garbled, (second.sample_id, "en-gb+f3"): garbled,  # every voice fails
             # one word missed out of many: WER under 0.1 passes
             (third.sample_id, speech.voice_of(third)): " ".join(third.prompt_text.split()[1:])}
    table = _transcripts_by_audio(spec, samples, heard)
    uploads: list[bytes] = []

    def transcribe(body: dict) -> Reply:
        uploads.append(body["file"])
        return Reply(table.get(hashlib.sha256(body["file"]).hexdigest(), "an answer"))

    async with FakeOpenAI(transcriptions=transcribe) as fake:
        monkeypatch.setenv("S2S_ASR_BASE_URL", fake.base_url)
        monkeypatch.setenv("S2S_ASR_MODEL", "asr-verify-fake")  # its own cache entries
        monkeypatch.setenv("S2S_ASR_API_KEY_ENV", "S2S_TEST_UNSET_KEY")
        transcriber = load_transcriber()
        mixed = InputAudio(spec)
        prepared = await mixed.prepare(samples, lambda s: texts_to_speak([s], spec), transcriber, progress=False)
        await transcriber.aclose()
    assert prepared.excluded.keys() == {second.sample_id}
    assert "WER above 0.1 with every voice tried" in prepared.excluded[second.sample_id]
    assert prepared.verification == Counter({"passed": 6, "resynthesized": 1, "excluded": 1})
    other = next(v for v in MIX if v != speech.voice_of(first))
    assert mixed.voice_of(first) == other  # re-synthesised with the other voice of the mix
    assert mixed.speech(first, first.prompt_text) == mixed.synth(other).speech(first.prompt_text)
    record = mixed.record(first)["tts"]["verification"]
    assert record["status"] == "resynthesized" and [t["voice"] for t in record["tried"]] == [speech.voice_of(first),
                                                                                              other]
    assert record["tried"][0]["wer"] > 0.5 and record["tried"][1]["wer"] == 0.0
    assert mixed.record(third)["tts"]["verification"]["status"] == "passed"
    assert 0 < mixed.record(third)["tts"]["verification"]["wer"] <= 0.1
    summary = mixed.verification_summary
    assert (summary["passed"], summary["resynthesized"], summary["excluded"]) == (6, 1, 1)
    assert list(summary["excluded_ids"]) == [second.sample_id]
    assert len(uploads) == 8 + 1 + 1  # each sample's own voice, then the other voice for the first and the second


async def test_verification_in_a_run_leaves_failing_samples_out_and_says_so(data_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_eval("big_bench_audio_noisy")
    samples = select(load_samples(spec, data_dir)[0], None, 8)
    victim = samples[3]
    table = _transcripts_by_audio(spec, samples, {(victim.sample_id, v): "nothing like it" for v in MIX})

    def transcribe(body: dict) -> Reply:
        return Reply(table.get(hashlib.sha256(body["file"]).hexdigest(), "an answer"))

    async with FakeOpenAI(transcriptions=transcribe) as fake:
        monkeypatch.setenv("S2S_ASR_BASE_URL", fake.base_url)
        monkeypatch.setenv("S2S_ASR_MODEL", "asr-verify-run-fake")
        monkeypatch.setenv("S2S_ASR_API_KEY_ENV", "S2S_TEST_UNSET_KEY")
        run_dir, summary = await execute(RunOptions(model="local", eval="big_bench_audio_noisy", limit=8,
                                                    data_dir=data_dir, out=tmp_path / "run", progress=True))
    records = list(read_records(run_dir))
    assert len(records) == 7 and victim.sample_id not in {r["sample_id"] for r in records}
    assert summary["complete"] is True and summary["counts"]["total"] == 7
    spec_json = read_spec(run_dir)
    assert spec_json["tts_verification"]["excluded"] == 1
    assert list(spec_json["tts_verification"]["excluded_ids"]) == [victim.sample_id]
    assert spec_json["runner"]["n_selected"] == 7
    err = capsys.readouterr().err
    assert ("round-trip verification of 8 samples (WER <= 0.1): 7 passed, 0 re-synthesised with another voice, "
            "1 excluded, 0 flagged, 0 not measured") in err


async def test_noisy_mixed_run_records_voice_and_perturbation_per_sample(data_dir: Path, tmp_path: Path) -> None:
    """The `make eval MODEL=local EVAL=big_bench_audio_noisy LIMIT=8` path, in process."""
    run_dir, summary = await execute(RunOptions(model="local", eval="big_bench_audio_noisy", limit=8,
                                                data_dir=data_dir, out=tmp_path / "run", progress=False))
    records = list(read_records(run_dir))
    assert len(records) == 8 and summary["counts"]["ok"] == 8
    assert {r["voice"] for r in records} == set(MIX)  # both voices of the mix were heard
    spec = load_eval("big_bench_audio_noisy")
    speech = InputAudio(spec)
    for r in records:
        assert r["voice"] == assign_voice(r["sample_id"], MIX, 0)
        assert r["tts"]["voice"] == r["voice"] and r["tts"]["engine"] == "espeak-ng"
        p = r["perturbation"]
        assert (p["kind"], p["level"], p["unit"], p["noise"]) == ("noise", 10.0, "dB SNR", "white")
        assert abs(p["measured_snr_db"] - 10.0) < 0.5
        # The heard question is kept: the voice's clean clip plus noise, 10 dB down.
        heard, _ = sf.read(run_dir / r["input_audio"], dtype="float64")
        sample = next(s for s in select(load_samples(spec, data_dir)[0], None, 8) if s.sample_id == r["sample_id"])
        clean = audio.from_pcm16(speech.synth(r["voice"]).speech(sample.prompt_text)).astype(np.float64)
        assert heard.size == clean.size and not np.array_equal(heard, clean)
        assert 10 * np.log10(np.mean(clean**2) / np.mean((heard - clean) ** 2)) < 10.0
    spec_json = read_spec(run_dir)
    assert spec_json["perturbation"] == {"kind": "noise", "level": 10.0, "unit": "dB SNR", "noise": "white",
                                         "seed": 0}
    assert spec_json["eval"]["perturb"]["level"] == 10.0
    assert spec_json["tts"]["voice"] == "en-us + en-gb+f3"


async def test_every_perturbation_kind_runs_against_the_embedded_server(data_dir: Path, tmp_path: Path) -> None:
    for perturbation in (Perturbation(kind="rate", level=1.3), Perturbation(kind="telephone"),
                         Perturbation(kind="packet_loss", level=20.0, burst_frames=3),
                         Perturbation(kind="noise", level=5.0, noise="babble")):
        run_dir, summary = await execute(RunOptions(model="local", eval="big_bench_audio", limit=2,
                                                    data_dir=data_dir, out=tmp_path / perturbation.kind,
                                                    progress=False, perturb=perturbation))
        records = list(read_records(run_dir))
        assert summary["counts"]["ok"] == 2, summary
        assert all(r["perturbation"]["kind"] == perturbation.kind for r in records)
        assert read_spec(run_dir)["perturbation"] == perturbation.describe()
        assert read_spec(run_dir)["eval"]["perturb"] == json.loads(perturbation.model_dump_json())
        for r in records:
            assert (run_dir / r["input_audio"]).is_file()
            if perturbation.kind == "rate":
                assert r["perturbation"]["duration_s"] == pytest.approx(r["input_audio_s"], abs=0.01)
            if perturbation.kind == "packet_loss":
                assert r["perturbation"]["lost_frames"] > 0


async def test_verification_is_opt_in_per_eval(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend configured to measure the models' output does not, by itself, change an eval's sample set:
    big_bench_audio only flags a failing clip (`on_fail: keep`), and with verification off nothing is sent."""
    spec = load_eval("big_bench_audio")
    assert spec.tts.verify.enabled and spec.tts.verify.on_fail == "keep"
    samples = select(load_samples(spec, data_dir)[0], None, 2)
    off = spec.model_copy(update={"tts": spec.tts.model_copy(update={"verify": Verification()})})
    async with FakeOpenAI(transcriptions=lambda body: Reply("nothing like the question")) as fake:
        monkeypatch.setenv("S2S_ASR_BASE_URL", fake.base_url)
        monkeypatch.setenv("S2S_ASR_MODEL", "asr-opt-in-fake")
        transcriber = load_transcriber()
        speech = InputAudio(off)
        prepared = await speech.prepare(samples, lambda s: texts_to_speak([s], off), transcriber, progress=False)
        assert fake.count("/audio/transcriptions") == 0
        assert not prepared.excluded and speech.verification_summary["reason"].endswith("(tts.verify.enabled)")
        assert speech.record(samples[0])["tts"]["verification"]["status"] == "not measured"
        flagging = InputAudio(spec)
        prepared = await flagging.prepare(samples, lambda s: texts_to_speak([s], spec), transcriber, progress=False)
        await transcriber.aclose()
        assert fake.count("/audio/transcriptions") == 2
    assert not prepared.excluded and prepared.verification == Counter({"flagged": 2})
    assert flagging.record(samples[0])["tts"]["verification"]["wer"] > 0.1
