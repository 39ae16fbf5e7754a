"""TTS engines and the content-addressed clip cache: espeak-ng for real, edge-tts and an OpenAI-compatible
`/v1/audio/speech` endpoint through loopback stand-ins (`tests/tts_fakes.py`) driven by the real clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from s2s_eval import audio
from s2s_eval.errors import UserError
from s2s_eval.speech import loudness, tts_engines
from s2s_eval.speech.tts import EspeakEngine, Synthesizer, TTSSettings, spoken_form
from tests.conftest import ROOT, TIMING_SCALE
from tests.openai_fake import closed_port
from tests.tts_fakes import FakeEdge, FakeSpeech, encoded, tone


def test_speech_is_24khz_mono_pcm16_and_cached(tmp_path: Path) -> None:
    synth = Synthesizer(TTSSettings(), cache_root=tmp_path)
    pcm = synth.speech("How many musical instruments do I have?")
    samples = audio.from_pcm16(pcm)
    assert 1.0 < audio.duration_s(pcm) < 6.0
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence
    info = sf.info(synth.path("How many musical instruments do I have?"))
    assert (info.samplerate, info.channels, info.subtype) == (24_000, 1, "PCM_16")
    assert synth.speech("How many musical instruments do I have?") == pcm  # lossless cache round trip


def test_every_clip_records_what_spoke_it(tmp_path: Path) -> None:
    synth = Synthesizer(TTSSettings(voice="en-gb+f3", rate=160), cache_root=tmp_path)
    synth.speech("Is the argument valid?")
    facts = json.loads(synth.path("Is the argument valid?").with_suffix(".json").read_text())
    measured = {key: facts.pop(key) for key in ("source_lufs", "gain_db", "loudness_lufs", "peak_limited")}
    assert facts == {"text": "Is the argument valid?", "engine": "espeak-ng", "voice": "en-gb+f3", "rate": 160,
                     "engine_version": synth.engine.version, "sample_rate": 24_000, "loudness_target_lufs": -23.0,
                     "loudness_meter": loudness.meter_name()}
    assert measured["loudness_lufs"] == pytest.approx(-23.0, abs=0.5) and measured["peak_limited"] is False
    assert facts["engine_version"].startswith("1.")


def test_cache_key_covers_text_voice_rate_and_engine_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = Synthesizer(TTSSettings(), cache_root=tmp_path)
    keys = {
        base.key("Hello."),
        base.key("Hello!"),
        Synthesizer(TTSSettings(voice="en-gb"), cache_root=tmp_path).key("Hello."),
        Synthesizer(TTSSettings(voice="en-us+f3"), cache_root=tmp_path).key("Hello."),
        Synthesizer(TTSSettings(rate=140), cache_root=tmp_path).key("Hello."),
    }
    newer = Synthesizer(TTSSettings(), cache_root=tmp_path)
    newer.engine.__dict__["version"] = "9.99"  # the cached_property, as another espeak-ng release would report it
    keys.add(newer.key("Hello."))
    keys.add(Synthesizer(TTSSettings(loudness_lufs=-16.0), cache_root=tmp_path).key("Hello."))
    keys.add(Synthesizer(TTSSettings(loudness_lufs=None), cache_root=tmp_path).key("Hello."))
    assert len(keys) == 8  # a clip at another level is another clip: old, unnormalised clips are never reused
    # The voice mix, its seed and the verification rules are not part of a clip's sound: same key.
    mixed = TTSSettings(voices=("en-us", "en-gb"), seed=7, verify={"max_wer": 0.3})
    assert Synthesizer(mixed, cache_root=tmp_path).key("Hello.") == base.key("Hello.")
    # Aliases name the same engine, so the same clips.
    assert Synthesizer(TTSSettings(engine="espeak"), cache_root=tmp_path).key("Hello.") == base.key("Hello.")


class QuietEngine(EspeakEngine):
    """espeak-ng 26 dB down: an engine that speaks far below the others."""

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        return audio.to_pcm16(audio.from_pcm16(super().synthesize(text, settings)) * 0.05)


@pytest.mark.parametrize("target", [-23.0, -30.0])
def test_voices_at_different_raw_levels_arrive_at_the_target_loudness(tmp_path: Path, target: float) -> None:
    text = "Question: today, Sam says the box holds three apples. How many apples are in the box?"
    voices = [(TTSSettings(voice="en-us"), None), (TTSSettings(voice="en-gb+f3"), None),
              (TTSSettings(voice="en-us+m3"), QuietEngine())]
    raw = [loudness.measure_lufs(Synthesizer(s.model_copy(update={"loudness_lufs": None}), tmp_path, e).speech(text))
           for s, e in voices]
    assert max(raw) - min(raw) > 20  # the quiet engine, and espeak-ng's own voices differ too
    for settings, engine in voices:
        pcm = Synthesizer(settings.model_copy(update={"loudness_lufs": target}), tmp_path, engine).speech(text)
        assert loudness.measure_lufs(pcm) == pytest.approx(target, abs=0.5)


def test_pyttsx3_speaks_in_a_worker_process_of_its_own(tmp_path: Path) -> None:
    """On Linux pyttsx3 drives libespeak-ng: the same voices as espeak-ng, through the system-voices engine that
    macOS and Windows users get (NSSpeechSynthesizer, SAPI5)."""
    engine = tts_engines.Pyttsx3Engine()
    try:
        engine.check()
    except UserError as exc:
        pytest.skip(f"pyttsx3 has no working driver here: {exc}")
    try:
        synth = Synthesizer(TTSSettings(engine="pyttsx3", voice="en-us"), cache_root=tmp_path, engine=engine)
        texts = ["How many musical instruments do I have?", "Does Sam tell the truth?", "Take three steps left."]
        assert synth.prepare(texts, workers=3, progress=False) == 3  # threads queue on the one worker process
        pcm = synth.speech(texts[0])
        assert 1.0 < audio.duration_s(pcm) < 6.0
        assert loudness.measure_lufs(pcm) == pytest.approx(-23.0, abs=0.5)
        assert engine.worker_pid() != os.getpid()  # pyttsx3's global engine is not in the runner's process
        facts = synth.describe()
        assert facts["engine"] == "pyttsx3" and facts["engine_version"] == "2.99"
        if sys.platform.startswith("linux"):
            assert facts["driver"] == "espeak"
        with pytest.raises(UserError, match="no voice 'xx-nowhere'"):
            Synthesizer(TTSSettings(engine="pyttsx3", voice="xx-nowhere"), tmp_path, engine).speech("Hello.")
    finally:
        engine.close()


def test_rate_changes_the_sound(tmp_path: Path) -> None:
    fast = Synthesizer(TTSSettings(rate=250), cache_root=tmp_path).speech("One two three four five six.")
    slow = Synthesizer(TTSSettings(rate=120), cache_root=tmp_path).speech("One two three four five six.")
    assert audio.duration_s(slow) > 1.5 * audio.duration_s(fast)


def test_variants_change_the_voice_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    plain = Synthesizer(TTSSettings(voice="en-us"), cache_root=tmp_path).speech("Turn left.")
    female = Synthesizer(TTSSettings(voice="en-us+f3"), cache_root=tmp_path).speech("Turn left.")
    assert plain != female
    # espeak-ng itself would silently speak the plain voice for an unknown variant; the engine refuses it.
    with pytest.raises(UserError, match="no voice variant 'nosuch'"):
        Synthesizer(TTSSettings(voice="en-us+nosuch"), cache_root=tmp_path).speech("Turn left.")


def test_prepare_synthesises_only_what_is_missing(tmp_path: Path) -> None:
    synth = Synthesizer(TTSSettings(), cache_root=tmp_path)
    texts = [f"Question number {i}." for i in range(6)]
    synth.speech(texts[0])
    assert synth.prepare(texts, progress=False) == 5
    assert all(synth.cached(t) for t in texts)
    assert synth.prepare(texts, progress=False) == 0


def test_missing_espeak_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts_engines.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install espeak-ng"):
        Synthesizer(TTSSettings())


def test_unknown_engine_and_bad_voice(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown TTS engine 'nope'; choose one of .*edge-tts.*espeak-ng.*openai"):
        Synthesizer(TTSSettings(engine="nope"), cache_root=tmp_path)
    with pytest.raises(UserError, match="espeak-ng failed for voice 'xx-no-such-voice'"):
        Synthesizer(TTSSettings(voice="xx-no-such-voice"), cache_root=tmp_path).speech("Hi.")


def test_spoken_form_reads_options_as_a_sentence() -> None:
    assert spoken_form("Is it valid?\nOptions:\n- valid \n- invalid") == "Is it valid? Options: valid, invalid."
    assert spoken_form("Take 3 steps.\nTake 2 steps") == "Take 3 steps. Take 2 steps."


# --- edge-tts -------------------------------------------------------------------------------------------------

def _edge_settings(voice: str = "en-US-AriaNeural", rate: int = 175) -> TTSSettings:
    return TTSSettings(engine="edge", voice=voice, rate=rate)


def test_edge_offline_fails_within_5_s_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens at the service's address (as on a machine without internet): one line, well within 5 s."""
    monkeypatch.setattr("edge_tts.communicate.WSS_URL", f"ws://127.0.0.1:{closed_port()}/edge/v1?x=1")
    synth = Synthesizer(_edge_settings(), cache_root=tmp_path)
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        synth.prepare(["What is two plus two?"], progress=False)
    assert time.monotonic() - started < 4.0 + 1.0 * TIMING_SCALE  # the 4 s reachability deadline, plus slack
    message = str(caught.value)
    assert "\n" not in message
    assert "edge-tts: the Microsoft Edge speech service is unreachable" in message
    assert "choose another engine" in message and "--tts espeak" in message


def test_edge_hanging_dns_still_fails_within_5_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that never answers (a captive or broken network) cannot hold the check past its deadline."""
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> list[object]:
        release.wait(30)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(tts_engines.socket, "getaddrinfo", hang)
    synth = Synthesizer(_edge_settings(), cache_root=tmp_path)
    started = time.monotonic()
    try:
        with pytest.raises(UserError, match=r"unreachable \(DNS lookup of speech.platform.bing.com timed out"):
            synth.speech("Hello.")
    finally:
        release.set()
    assert time.monotonic() - started < 4.0 + 1.0 * TIMING_SCALE  # the 4 s reachability deadline, plus slack


def test_edge_cli_offline_is_one_line_within_5_s(tmp_path: Path, data_dir: Path) -> None:
    """`s2s-eval prepare --tts edge` as a user runs it on this offline machine: the real service, one line."""
    try:
        socket.getaddrinfo("speech.platform.bing.com", 443)
        pytest.skip("this machine can resolve the Edge service: the offline check does not apply")
    except OSError:
        pass
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "s2s_eval", "prepare", "--eval", "big_bench_audio", "--limit", "1",
                           "--tts", "edge", "--voice", "en-US-AriaNeural", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "S2S_CACHE_DIR": str(tmp_path)})
    elapsed = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("s2s-eval: error: edge-tts: the Microsoft Edge speech service "
                                                   "is unreachable (DNS lookup of speech.platform.bing.com failed")
    assert "choose another engine" in lines[0]
    assert elapsed < 5.0 * TIMING_SCALE + 3.0  # interpreter start-up and imports on top of the 5 s budget


@pytest.fixture
def edge_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEdge]:
    """A FakeEdge on a thread of its own (the engine runs its own event loop per clip, as in prepare's pool)."""
    loop = asyncio.new_event_loop()
    server = FakeEdge()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(10)
    monkeypatch.setattr("edge_tts.communicate.WSS_URL", server.url)
    yield server
    asyncio.run_coroutine_threadsafe(server.__aexit__(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_edge_speaks_through_the_real_client_and_caches(tmp_path: Path, edge_server: FakeEdge) -> None:
    synth = Synthesizer(_edge_settings(rate=210), cache_root=tmp_path)
    pcm = synth.speech("Is the argument valid?")
    raw = audio.decode_to_pcm16(edge_server.mp3)
    assert len(pcm) == len(raw) and loudness.measure_lufs(pcm) == pytest.approx(-23.0, abs=0.5)
    request = edge_server.plan.requests[0]
    assert "AriaNeural" in request["ssml"] and "rate='+20%'" in request["ssml"]  # 210 wpm = 175 wpm + 20%
    assert "Is the argument valid?" in request["ssml"]
    facts = synth.describe()
    assert facts["engine"] == "edge-tts" and facts["engine_version"] == "7.3.1"
    assert synth.speech("Is the argument valid?") == pcm and len(edge_server.plan.requests) == 1  # from the cache
    unscaled = _edge_settings(rate=210).model_copy(update={"loudness_lufs": None})
    assert Synthesizer(unscaled, cache_root=tmp_path).speech("Is the argument valid?") == raw  # the engine's bytes


def test_edge_retries_transient_failures_only(tmp_path: Path, edge_server: FakeEdge,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts_engines.time, "sleep", lambda s: None)
    edge_server.plan.statuses = [503, 429]
    pcm = Synthesizer(_edge_settings(), cache_root=tmp_path).speech("First.")
    assert pcm and len(edge_server.plan.requests) == 1  # two refused handshakes, then one full request

    edge_server.plan.statuses = [400]
    with pytest.raises(UserError, match="edge-tts failed for voice 'en-US-AriaNeural' after 1 attempt: "
                                        "WSServerHandshakeError"):
        Synthesizer(_edge_settings(), cache_root=tmp_path).speech("Second.")

    edge_server.plan.statuses = [503] * tts_engines.EDGE_ATTEMPTS
    with pytest.raises(UserError, match=f"after {tts_engines.EDGE_ATTEMPTS} attempts"):
        Synthesizer(_edge_settings(), cache_root=tmp_path).speech("Third.")


def test_edge_rejects_a_malformed_voice_at_once(tmp_path: Path, edge_server: FakeEdge) -> None:
    with pytest.raises(UserError, match="edge-tts rejected voice 'not a voice'"):
        Synthesizer(_edge_settings(voice="not a voice"), cache_root=tmp_path).speech("Hello.")
    assert edge_server.plan.requests == []


# --- OpenAI-compatible /v1/audio/speech -----------------------------------------------------------------------

@pytest.fixture
def speech_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSpeech]:
    loop = asyncio.new_event_loop()
    server = FakeSpeech(wav=encoded(tone(0.8, 300.0), "WAV"))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(10)
    monkeypatch.setenv("S2S_TTS_BASE_URL", server.base_url)
    monkeypatch.setenv("S2S_TTS_MODEL", "fake-tts-2025-01-01")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield server
    asyncio.run_coroutine_threadsafe(server.__aexit__(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_openai_engine_speaks_and_keys_by_endpoint_and_model(tmp_path: Path, speech_server: FakeSpeech) -> None:
    synth = Synthesizer(TTSSettings(engine="openai", voice="coral", rate=210), cache_root=tmp_path)
    pcm = synth.speech("Count the fruit.")
    assert abs(audio.duration_s(pcm) - 0.8) < 0.01
    body = speech_server.plan.requests[0]["body"]
    assert body == {"model": "fake-tts-2025-01-01", "voice": "coral", "input": "Count the fruit.",
                    "response_format": "wav", "speed": pytest.approx(1.2)}
    facts = synth.describe()
    assert facts["engine_version"] == "fake-tts-2025-01-01" and facts["base_url"] == speech_server.base_url
    assert synth.speech("Count the fruit.") == pcm and len(speech_server.plan.requests) == 1


def test_openai_engine_errors_are_one_line(tmp_path: Path, speech_server: FakeSpeech,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2S_TTS_MAX_RETRIES", "1")
    speech_server.plan.statuses = [503]  # transient: the SDK retries it
    assert Synthesizer(TTSSettings(engine="openai", voice="coral"), cache_root=tmp_path).speech("One.")
    speech_server.plan.statuses = [400]
    with pytest.raises(UserError, match=r"the TTS endpoint refused the request \(HTTP 400\).*planned HTTP 400"):
        Synthesizer(TTSSettings(engine="openai", voice="coral"), cache_root=tmp_path).speech("Two.")
    monkeypatch.setenv("S2S_TTS_BASE_URL", "https://api.example.invalid/v1")
    with pytest.raises(UserError, match=r"openai TTS: \$OPENAI_API_KEY is not set"):
        Synthesizer(TTSSettings(engine="openai", voice="coral"), cache_root=tmp_path).prepare(["Three."])
