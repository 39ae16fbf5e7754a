"""espeak-ng synthesis and the content-addressed clip cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from s2s_eval import audio
from s2s_eval.datasets import tts
from s2s_eval.datasets.tts import Synthesizer, TTSSettings, spoken_form
from s2s_eval.errors import UserError


def test_speech_is_24khz_mono_pcm16_and_cached(tmp_path: Path) -> None:
    synth = Synthesizer(TTSSettings(), cache_root=tmp_path)
    pcm = synth.speech("How many musical instruments do I have?")
    samples = audio.from_pcm16(pcm)
    assert 1.0 < audio.duration_s(pcm) < 6.0
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence
    info = sf.info(synth.path("How many musical instruments do I have?"))
    assert (info.samplerate, info.channels, info.subtype) == (24_000, 1, "PCM_16")
    assert synth.speech("How many musical instruments do I have?") == pcm  # lossless cache round trip


def test_cache_key_covers_text_voice_rate_and_engine_version(tmp_path: Path) -> None:
    base = Synthesizer(TTSSettings(), cache_root=tmp_path)
    keys = {
        base.key("Hello."),
        base.key("Hello!"),
        Synthesizer(TTSSettings(voice="en-gb"), cache_root=tmp_path).key("Hello."),
        Synthesizer(TTSSettings(rate=140), cache_root=tmp_path).key("Hello."),
    }
    assert len(keys) == 4
    assert base.describe()["engine_version"] and base.key("Hello.") == base.key("Hello.")


def test_rate_changes_the_sound(tmp_path: Path) -> None:
    fast = Synthesizer(TTSSettings(rate=250), cache_root=tmp_path).speech("One two three four five six.")
    slow = Synthesizer(TTSSettings(rate=120), cache_root=tmp_path).speech("One two three four five six.")
    assert audio.duration_s(slow) > 1.5 * audio.duration_s(fast)


def test_prepare_synthesises_only_what_is_missing(tmp_path: Path) -> None:
    synth = Synthesizer(TTSSettings(), cache_root=tmp_path)
    texts = [f"Question number {i}." for i in range(6)]
    synth.speech(texts[0])
    assert synth.prepare(texts, progress=False) == 5
    assert all(synth.cached(t) for t in texts)
    assert synth.prepare(texts, progress=False) == 0


def test_missing_espeak_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install espeak-ng"):
        Synthesizer(TTSSettings())


def test_unknown_engine_and_bad_voice(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown TTS engine"):
        Synthesizer(TTSSettings(engine="nope"), cache_root=tmp_path)
    with pytest.raises(UserError, match="espeak-ng failed"):
        Synthesizer(TTSSettings(voice="xx-no-such-voice"), cache_root=tmp_path).speech("Hi.")


def test_spoken_form_reads_options_as_a_sentence() -> None:
    assert spoken_form("Is it valid?\nOptions:\n- valid \n- invalid") == "Is it valid? Options: valid, invalid."
    assert spoken_form("Take 3 steps.\nTake 2 steps") == "Take 3 steps. Take 2 steps."
