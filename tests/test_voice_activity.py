"""Voice activity with the real detector (Silero VAD through onnxruntime) on real speech (espeak-ng): the first
voiced output sample after known silence, `ttfa_voiced_ms`, the energy fallback when the detector is missing, and
which detector measured, in the record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from s2s_eval import audio
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn
from s2s_eval.speech import voice_activity
from s2s_eval.speech.tts import EspeakEngine, TTSSettings

UPDATE = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


@pytest.fixture(scope="module")
def spoken() -> bytes:
    """An espeak-ng answer cut to start at its first non-silent sample, so the silence put before it is exact."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    pcm = EspeakEngine().synthesize("The answer is four instruments.", TTSSettings())
    x = audio.from_pcm16(pcm)
    first = int(np.flatnonzero(np.abs(x) > 1e-3)[0])
    return pcm[2 * first :]


@pytest.fixture
def energy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without the detector: faster-whisper's VAD cannot be imported."""
    monkeypatch.setattr(voice_activity, "_silero", lambda: None)


def answered(pcm: bytes, ttfa_s: float = 0.3):  # type: ignore[no-untyped-def]
    """A session whose one response starts sending `pcm` `ttfa_s` after time zero."""
    machine = SessionMachine(SessionPlan(session_update=UPDATE, turns=(UserTurn(pcm=audio.silence(500)),)))
    machine.on_event({"type": "session.created"}, 0.0)
    machine.on_event({"type": "session.updated"}, 0.1)
    [create] = machine.on_event({"type": "input_audio_buffer.committed", "item_id": "i1"}, 0.3)
    machine.sent(create, 10.0)
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 10.01)
    for index, chunk in enumerate(audio.chunks(pcm, 100)):
        machine.on_event({"type": "response.output_audio.delta", "response_id": "r1", "delta": audio.b64(chunk)},
                         10.0 + ttfa_s + index * 0.01)
    machine.on_event({"type": "response.done", "response": {"id": "r1", "status": "completed"}}, 12.0)
    return machine.final()


@pytest.mark.parametrize("silence_ms", [0, 150, 300, 517, 1200])
def test_ttfa_voiced_is_ttfa_plus_the_leading_silence_by_silero(spoken: bytes, silence_ms: int) -> None:
    obs = answered(audio.silence(silence_ms) + spoken + audio.silence(300))
    assert obs.output_voice is not None and obs.output_voice.detector.startswith("silero-vad-v6")
    assert obs.ttfa_ms == pytest.approx(300.0)
    assert obs.ttfa_voiced_ms - obs.ttfa_ms == pytest.approx(silence_ms, abs=20)
    assert obs.output_leading_silence_ms == pytest.approx(silence_ms, abs=20)
    alone = voice_activity.voiced_span(spoken)
    assert alone is not None and obs.output_voice.end_ms == pytest.approx(silence_ms + alone.end_ms, abs=20)


def test_silero_hears_speech_under_a_noise_floor_and_no_speech_in_noise(spoken: bytes) -> None:
    rng = np.random.default_rng(0)
    floor = rng.standard_normal(24_000 // 2 + len(spoken) // 2) * 0.003  # about -50 dBFS of hiss throughout
    noisy = audio.to_pcm16(audio.from_pcm16(audio.silence(500) + spoken) + floor)
    span = voice_activity.voiced_span(noisy)
    assert span is not None and span.start_ms == pytest.approx(500, abs=20)
    assert voice_activity.voiced_span(audio.to_pcm16(rng.standard_normal(24_000) * 0.05)) is None  # hiss alone
    assert voice_activity.voiced_span(audio.silence(1000)) is None
    assert voice_activity.voiced_span(b"") is None


def test_without_the_detector_the_energy_rule_measures_and_says_so(spoken: bytes, energy_only: None) -> None:
    obs = answered(audio.silence(300) + spoken)
    assert obs.output_voice is not None and obs.output_voice.detector == voice_activity.ENERGY
    assert obs.ttfa_voiced_ms - obs.ttfa_ms == pytest.approx(300, abs=20)


@pytest.mark.parametrize("detector", ["silero", "energy"])
async def test_the_record_names_the_detector(detector: str, data_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if detector == "energy":
        monkeypatch.setattr(voice_activity, "_silero", lambda: None)
    run, _ = await execute(RunOptions(model="local", eval="big_bench_audio", limit=1, data_dir=data_dir,
                                      out=tmp_path / "run", progress=False))
    [line] = (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    latency = json.loads(line)["latency"]
    assert latency["voice_detector"] == voice_activity.detector()
    assert latency["voice_detector"].startswith("silero-vad-v6" if detector == "silero" else "energy")
    assert latency["ttfa_voiced_ms"] == pytest.approx(latency["ttfa_ms"] + latency["output_leading_silence_ms"])
    spec = json.loads((run / "spec.json").read_text(encoding="utf-8"))
    assert spec["runner"]["voice_detector"] == latency["voice_detector"]
