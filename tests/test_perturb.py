"""Perturbations measured from the outside: SNR of the noise actually added, spectrum of the phone line, G.711
against the reference coder, tempo by duration and pitch, packet loss by counting zeroed frames."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from s2s_eval import audio
from s2s_eval.datasets import perturb
from s2s_eval.datasets.perturb import Perturbation
from s2s_eval.datasets.tts_input import BABBLE_TEXTS, BABBLE_VOICES
from s2s_eval.speech.tts import Synthesizer, TTSSettings

SR = audio.SAMPLE_RATE
QUESTION = ("Today, Alice has two apples and a banana, Bob has three oranges. "
            "How many pieces of fruit do they have altogether?")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return Synthesizer(TTSSettings(), cache_root=tmp_path_factory.mktemp("tts")).speech(QUESTION)


@pytest.fixture(scope="module")
def babble(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    root = tmp_path_factory.mktemp("babble")
    talkers = [audio.from_pcm16(b"".join(Synthesizer(TTSSettings(voice=v), cache_root=root).speech(t)
                                         for t in BABBLE_TEXTS[:3])).astype(np.float64) for v in BABBLE_VOICES]
    return perturb.babble_track(talkers, np.random.default_rng(0))


def _active_power(x: np.ndarray) -> float:
    """Written apart from the module under test: mean power of 10 ms frames within 40 dB of the 99th percentile."""
    frames = x[: x.size // 240 * 240].reshape(-1, 240)
    power = (frames**2).mean(axis=1)
    threshold = np.percentile(power[power > 0], 99) / 1e4
    return float(power[power >= threshold].mean())


def _snr_db(clean_pcm: bytes, noisy_pcm: bytes) -> float:
    """SNR of what was added: the clean part is found by projection (the mix may have been scaled down)."""
    clean = audio.from_pcm16(clean_pcm).astype(np.float64)
    noisy = audio.from_pcm16(noisy_pcm).astype(np.float64)
    gain = float(noisy @ clean / (clean @ clean))
    added = noisy - gain * clean
    return 10 * np.log10(_active_power(gain * clean) / float(np.mean(added**2)))


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr_db", [30.0, 10.0, 0.0])
def test_measured_snr_is_within_half_a_db_of_the_request(speech: bytes, babble: np.ndarray, kind: str,
                                                         snr_db: float) -> None:
    p = Perturbation(kind="noise", level=snr_db, noise=kind)
    applied = perturb.apply(speech, p, "object_counting_0|question", babble=lambda: babble)
    measured = _snr_db(speech, applied.pcm)
    assert abs(measured - snr_db) < 0.5, (kind, snr_db, measured)
    assert abs(applied.facts["measured_snr_db"] - snr_db) < 0.5  # and the record says the same
    assert len(applied.pcm) == len(speech)


def test_loud_speech_is_scaled_not_clipped_and_keeps_its_snr(speech: bytes) -> None:
    loud = audio.to_pcm16(audio.from_pcm16(speech) * (0.99 / np.max(np.abs(audio.from_pcm16(speech)))))
    applied = perturb.apply(loud, Perturbation(kind="noise", level=0.0), "k")
    assert applied.facts["gain_db"] < -1.0
    assert np.max(np.abs(np.frombuffer(applied.pcm, dtype="<i2").astype(int))) < 32767
    assert abs(_snr_db(loud, applied.pcm) - 0.0) < 0.5


def test_pink_noise_falls_3_db_per_octave() -> None:
    x = perturb.noise("pink", SR * 20, np.random.default_rng(1))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)

    def band(low: float) -> float:
        return float(spectrum[(freqs >= low) & (freqs < 2 * low)].sum())

    slopes = [10 * np.log10(band(2 * f) / band(f)) for f in (125, 250, 500, 1000, 2000)]  # up to 8 kHz
    # Pink noise has equal power per octave (-3 dB per octave in density); white would gain +3 dB per octave.
    assert all(abs(s) < 0.5 for s in slopes), slopes


def test_babble_is_speech_shaped_and_fluctuates(babble: np.ndarray) -> None:
    spectrum = np.abs(np.fft.rfft(babble)) ** 2
    freqs = np.fft.rfftfreq(babble.size, 1 / SR)
    assert spectrum[(freqs > 200) & (freqs < 2000)].sum() > 5 * spectrum[(freqs > 6000) & (freqs < 8000)].sum()
    levels = 10 * np.log10(np.maximum((babble[: babble.size // 2400 * 2400].reshape(-1, 2400) ** 2).mean(1), 1e-12))
    # Six talkers: their level wanders by dB from one 100 ms to the next (white noise: by hundredths of a dB),
    # but without one talker's pauses (tens of dB).
    assert 1.0 < np.std(levels) < 6.0


def test_same_key_same_noise_other_key_other_noise_and_levels_share_draws(speech: bytes) -> None:
    p10 = Perturbation(kind="noise", level=10.0)
    a = perturb.apply(speech, p10, "navigate_0|q").pcm
    assert perturb.apply(speech, p10, "navigate_0|q").pcm == a
    assert perturb.apply(speech, p10, "navigate_1|q").pcm != a
    assert perturb.apply(speech, p10.model_copy(update={"seed": 1}), "navigate_0|q").pcm != a
    # The 20 dB clip holds the same noise as the 10 dB one, 10 dB quieter.
    b = perturb.apply(speech, Perturbation(kind="noise", level=20.0), "navigate_0|q").pcm
    clean = audio.from_pcm16(speech).astype(np.float64)
    noise_a = audio.from_pcm16(a) - clean
    noise_b = audio.from_pcm16(b) - clean
    assert np.corrcoef(noise_a, noise_b)[0, 1] > 0.99
    assert abs(10 * np.log10(np.mean(noise_a**2) / np.mean(noise_b**2)) - 10.0) < 0.1


def _power_above(pcm: bytes, hz: float) -> float:
    x = audio.from_pcm16(pcm).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spectrum[freqs > hz].sum() / spectrum.sum())


def test_telephone_band_has_no_energy_above_4_khz(speech: bytes) -> None:
    white = audio.to_pcm16(0.1 * np.random.default_rng(3).standard_normal(SR * 3))
    for clip in (speech, white):
        assert _power_above(clip, 4000) > 0.01  # the input has energy up there (espeak: fricatives; white: 2/3)
        phone = perturb.apply(clip, Perturbation(kind="telephone"), "k").pcm
        assert len(phone) == len(clip)
        assert _power_above(phone, 4000) < 1e-6  # below -60 dB of the clip's power
        assert _power_above(phone, 3500) < 1e-3  # and the channel's 3.4 kHz edge is there too
        kept, given = audio.from_pcm16(phone), audio.from_pcm16(clip)
        assert np.sqrt(np.mean(kept**2)) > 0.2 * np.sqrt(np.mean(given**2))  # the speech band is still there


def test_telephone_passes_speech_band_through_mu_law(speech: bytes) -> None:
    phone = perturb.telephone(audio.from_pcm16(speech).astype(np.float64))
    band = perturb._band_pass  # the channel's filter, then the receiver's: the same band twice
    clean = band(band(audio.from_pcm16(speech).astype(np.float64), SR, 300, 3400), SR, 300, 3400)
    err = phone - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(err**2))
    assert 20 < snr < 45  # μ-law's ~38 dB quantisation SNR, plus resampling: audible codec noise, intact speech


# Codes of the reference (Sun) G.711 coder, which CPython's audioop used: 14-bit input (x >> 2), bias 33.
G711_VECTORS = {0: 0xFF, -1: 0x7E, 1: 0xFF, 4: 0xFE, -4: 0x7E, 100: 0xF2, -100: 0x72, 1000: 0xCE, 32767: 0x80,
                -32768: 0x00, 8000: 0xA0, -8000: 0x20}


def test_mu_law_matches_the_g711_reference() -> None:
    values = np.array(list(G711_VECTORS), dtype=np.int16)
    assert [int(c) for c in perturb.mulaw_encode(values)] == list(G711_VECTORS.values())
    codes = np.arange(256, dtype=np.uint8)
    decoded = perturb.mulaw_decode(codes)
    assert decoded[0xFF] == 0 and decoded[0x80] == 32124 and decoded[0x00] == -32124
    assert np.all(np.diff(decoded[0x80:].astype(int)) < 0) and np.all(np.diff(decoded[:0x80].astype(int)) > 0)
    # Every code decodes to a value that encodes back to itself, but for negative zero (0x7F), which is zero.
    round_trip = perturb.mulaw_encode(decoded)
    assert np.array_equal(round_trip[codes != 0x7F], codes[codes != 0x7F]) and round_trip[0x7F] == 0xFF


def test_mu_law_is_bit_exact_with_audioop_where_it_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert np.array_equal(perturb.mulaw_encode(every), np.frombuffer(audioop.lin2ulaw(every.tobytes(), 2), np.uint8))
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(perturb.mulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), "<i2"))


def _pitch_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(spectrum)])


@pytest.mark.parametrize("factor", [0.8, 1.25, 1.5])
def test_rate_changes_duration_but_not_pitch(factor: float) -> None:
    t = np.arange(SR * 4) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    out = perturb.change_tempo(tone, factor)
    assert abs(out.size - tone.size / factor) <= 1
    assert abs(_pitch_hz(out) - 220.0) < 2.0  # resampling would have moved it to 220 * factor
    middle = out[SR // 2 : -SR // 2]
    assert np.std(np.abs(middle[::240])) > 0 and np.max(np.abs(middle)) < 0.33  # no pile-up where frames overlap
    # Frames join in phase: the envelope stays flat (a misaligned overlap-add would beat and dip).
    envelope = np.array([np.sqrt(np.mean(middle[i : i + 480] ** 2)) for i in range(0, middle.size - 480, 480)])
    assert envelope.min() > 0.9 * envelope.max()


def test_rate_of_speech_is_recorded(speech: bytes) -> None:
    applied = perturb.apply(speech, Perturbation(kind="rate", level=1.25), "k")
    assert applied.facts["duration_s"] == pytest.approx(audio.duration_s(speech) / 1.25, abs=0.01)


@pytest.mark.parametrize("burst", [1.0, 4.0])
def test_packet_loss_drops_whole_frames_at_the_requested_rate(burst: float) -> None:
    x = 0.2 + 0.01 * np.random.default_rng(5).standard_normal(SR * 60)  # never zero by itself
    pcm = audio.to_pcm16(x)
    applied = perturb.apply(pcm, Perturbation(kind="packet_loss", level=10.0, burst_frames=burst), "k")
    frames = np.frombuffer(applied.pcm, "<i2").reshape(-1, 480)
    zero = np.all(frames == 0, axis=1)
    partial = np.any(frames == 0, axis=1) & ~zero
    assert not partial.any()  # a lost packet is a whole 20 ms frame
    assert abs(zero.mean() - 0.10) < 0.02
    assert applied.facts["lost_frames"] == int(zero.sum())
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, zero.astype(int), 0])))[::2]
    expected = 1 / (1 - 0.10) if burst == 1.0 else burst  # independent losses also fall next to each other
    assert abs(runs.mean() - expected) < 0.25 * expected


def test_lower_loss_loses_a_subset_of_the_frames() -> None:
    pcm = audio.to_pcm16(np.full(SR * 10, 0.2))

    def lost(level: float) -> np.ndarray:
        out = perturb.apply(pcm, Perturbation(kind="packet_loss", level=level), "k").pcm
        return np.all(np.frombuffer(out, "<i2").reshape(-1, 480) == 0, axis=1)

    assert np.all(lost(20.0)[lost(5.0)]) and lost(20.0).sum() > lost(5.0).sum()


def test_levels_are_validated() -> None:
    for bad in ({"kind": "noise"}, {"kind": "rate", "level": 0.0}, {"kind": "packet_loss", "level": 100},
                {"kind": "telephone", "level": 3}, {"kind": "noise", "level": 10, "loudness": 1}):
        with pytest.raises(ValidationError):
            Perturbation(**bad)
    assert Perturbation(kind="noise", level=5).describe() == {"kind": "noise", "level": 5.0, "unit": "dB SNR",
                                                              "noise": "white", "seed": 0}


def test_perturbation_is_deterministic_across_processes(speech: bytes, tmp_path: Path) -> None:
    """Seeds come from SHA-256, not Python's salted hash(): another process makes the same bytes."""
    import subprocess
    import sys

    (tmp_path / "clip.pcm").write_bytes(speech)
    code = ("import sys,hashlib; from s2s_eval.datasets import perturb as p; "
            "pcm=open(sys.argv[1],'rb').read(); "
            "print(hashlib.sha256(p.apply(pcm, p.Perturbation(kind='noise', level=10), 'id|t').pcm).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "clip.pcm")], capture_output=True, text=True,
                         check=True).stdout.strip()
    import hashlib

    assert out == hashlib.sha256(perturb.apply(speech, Perturbation(kind="noise", level=10), "id|t").pcm).hexdigest()
