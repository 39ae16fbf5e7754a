"""Perturbations of spoken input, applied deterministically on top of the clean clip: additive noise at a given
SNR (white, pink, or babble made from the project's own clips), a speaking-rate change (tempo, pitch kept),
a telephone channel (300-3400 Hz band at 8 kHz through G.711 μ-law and back) and simulated packet loss.

numpy, scipy.signal (filters) and soxr (resampling) on 24 kHz float samples: no I/O. The random draws of a clip
come from a generator seeded by the perturbation's `seed`, its kind and the clip's key (sample id and text), never
by the level: a sweep over levels applies the same noise, scaled, and the same loss draws, so the levels of one
sample differ only in the level.

Definitions (what the records mean):
- SNR is the active speech level over the noise level, in dB: speech power is the mean power of the clean clip's
  10 ms frames within 40 dB of its loud frames (99th percentile), so leading silence and pauses do not count;
  noise power is the mean over the whole clip. If speech plus noise would clip, the mix is scaled down as a whole,
  which leaves the SNR unchanged (the gain is recorded).
- Tempo 1.25 speaks 25% faster (the clip is 1/1.25 as long) at the same pitch (WSOLA time stretching). WSOLA is
  kept over librosa's phase vocoder on an objective test: 50 Big Bench Audio questions at 1.25x, transcribed back
  by faster-whisper tiny.en, have a round-trip WER of 0.355 with WSOLA and 0.608 with librosa (0.235 clean;
  benchmarks/asr_roundtrip.py). `change_tempo_librosa` is kept for that comparison (librosa: test extra).
- Packet loss drops 20 ms frames (zeros, as a receiver without concealment plays them) with the given
  probability; `burst_frames` > 1 makes losses come in bursts of that mean length (Gilbert model).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from s2s_eval import audio

__all__ = ["KINDS", "UNITS", "Applied", "Perturbation", "active_power", "apply", "babble_track", "change_tempo",
           "drop_packets", "measured_snr_db", "mix_at_snr", "mulaw_decode", "mulaw_encode", "noise", "telephone"]

Kind = Literal["noise", "rate", "telephone", "packet_loss"]
NoiseType = Literal["white", "pink", "babble"]
KINDS: tuple[str, ...] = ("noise", "rate", "telephone", "packet_loss")
UNITS: dict[str, str | None] = {"noise": "dB SNR", "rate": "x tempo", "packet_loss": "% packets lost",
                                "telephone": None}
SR = audio.SAMPLE_RATE
ACTIVE_RANGE_DB = 40.0
HEADROOM = 0.999  # peak after mixing, in full scale


class Perturbation(BaseModel):
    """One perturbation of every spoken clip of a run (eval spec `perturb:`, or the `sweep` command's level)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    level: float | None = None  # noise: SNR in dB; rate: tempo factor; packet_loss: percent; telephone: none
    noise: NoiseType = "white"
    frame_ms: int = Field(default=20, gt=0)  # packet loss: one packet's audio
    burst_frames: float = Field(default=1.0, ge=1.0)  # packet loss: mean length of a loss burst
    band_hz: tuple[int, int] = (300, 3400)  # telephone: the channel's pass band
    seed: int = 0

    @model_validator(mode="after")
    def _level_fits_kind(self) -> Perturbation:
        if self.kind == "telephone":
            if self.level is not None:
                raise ValueError("telephone takes no level")
        elif self.level is None:
            raise ValueError(f"{self.kind} needs a level ({UNITS[self.kind]})")
        elif self.kind == "rate" and not 0.25 <= self.level <= 4.0:
            raise ValueError("rate: the tempo factor must be between 0.25 and 4")
        elif self.kind == "packet_loss" and not 0.0 <= self.level < 100.0:
            raise ValueError("packet_loss: the level is a percentage from 0 to below 100")
        if not 0 < self.band_hz[0] < self.band_hz[1] <= 4000:
            raise ValueError("band_hz must be (low, high) with 0 < low < high <= 4000")
        return self

    def describe(self) -> dict[str, Any]:
        """What a record and `spec.json` say: kind, level, unit, and the parameters that matter for the kind."""
        facts: dict[str, Any] = {"kind": self.kind, "level": self.level, "unit": UNITS[self.kind]}
        if self.kind == "noise":
            facts["noise"] = self.noise
        elif self.kind == "packet_loss":
            facts.update(frame_ms=self.frame_ms, burst_frames=self.burst_frames, concealment="none (zeros)")
        elif self.kind == "telephone":
            facts.update(band_hz=list(self.band_hz), sample_rate=8000, codec="G.711 mu-law")
        return {**facts, "seed": self.seed}


@dataclass(frozen=True)
class Applied:
    """A perturbed clip and what was measured while making it."""

    pcm: bytes
    facts: dict[str, Any]


def _rng(perturbation: Perturbation, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{perturbation.seed}|{perturbation.kind}|{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# --- levels ---------------------------------------------------------------------------------------------------

def _frame_powers(x: np.ndarray, frame_ms: int = 10) -> np.ndarray:
    frame = SR * frame_ms // 1000
    usable = x[: len(x) - len(x) % frame].astype(np.float64).reshape(-1, frame)
    return (usable * usable).mean(axis=1) if usable.size else np.zeros(0)


def active_power(x: np.ndarray) -> float:
    """Mean power of the 10 ms frames within 40 dB of the clip's loud frames (its 99th percentile frame)."""
    powers = _frame_powers(x)
    loud = powers[powers > 0]
    if loud.size == 0:
        return 0.0
    floor = np.percentile(loud, 99) * 10 ** (-ACTIVE_RANGE_DB / 10)
    return float(powers[powers >= floor].mean())


# --- noise ----------------------------------------------------------------------------------------------------

def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x / rms) if rms > 0 else x


def noise(kind: NoiseType, n: int, rng: np.random.Generator, babble: np.ndarray | None = None) -> np.ndarray:
    """`n` samples of unit-RMS noise: white, pink (power falling 3 dB per octave) or a stretch of `babble`."""
    if kind == "white":
        return _unit_rms(rng.standard_normal(n))
    if kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        scale = np.zeros_like(freqs)
        scale[1:] = 1 / np.sqrt(freqs[1:])
        return _unit_rms(np.fft.irfft(spectrum * scale, n))
    if babble is None or babble.size == 0:
        raise ValueError("babble noise needs a babble track")
    start = int(rng.integers(0, babble.size))
    reps = -(-(start + n) // babble.size)
    return _unit_rms(np.tile(babble, reps)[start : start + n])


def babble_track(talkers: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Several talkers at once: each talker's speech looped to the longest, shifted at random, summed."""
    length = max(t.size for t in talkers)
    track = np.zeros(length)
    for talker in talkers:
        looped = np.tile(_unit_rms(talker), -(-length // talker.size))[:length]
        track += np.roll(looped, int(rng.integers(0, length)))
    return _unit_rms(track)


def mix_at_snr(clean: np.ndarray, noise_unit: np.ndarray, snr_db: float) -> tuple[np.ndarray, dict[str, Any]]:
    """`clean` plus noise scaled to `snr_db` below its active speech level; scaled down as a whole if it would clip."""
    speech = active_power(clean)
    noise_power = float(np.mean(np.square(noise_unit, dtype=np.float64)))
    if speech == 0 or noise_power == 0:
        return clean.copy(), {"gain_db": 0.0, "reason": "silent clip: no noise added"}
    gain = np.sqrt(speech / (noise_power * 10 ** (snr_db / 10)))
    mixed = clean + gain * noise_unit
    peak = float(np.max(np.abs(mixed)))
    scale = HEADROOM / peak if peak > HEADROOM else 1.0
    return mixed * scale, {"gain_db": round(20 * np.log10(scale), 3), "speech_dbfs": round(10 * np.log10(speech), 2)}


# --- tempo ----------------------------------------------------------------------------------------------------

def change_tempo_librosa(x: np.ndarray, factor: float) -> np.ndarray:
    """`x` played `factor` times as fast at the same pitch with librosa's phase vocoder (`effects.time_stretch`),
    cut or padded to len(x) / factor samples."""
    if factor == 1.0 or x.size == 0:
        return x.astype(np.float64)
    import librosa

    out = librosa.effects.time_stretch(x.astype(np.float32), rate=factor).astype(np.float64)
    n_out = int(round(x.size / factor))
    return np.pad(out, (0, max(0, n_out - out.size)))[:n_out]


def change_tempo(x: np.ndarray, factor: float, frame_ms: float = 40.0, tolerance_ms: float = 10.0) -> np.ndarray:
    """`x` played `factor` times as fast at the same pitch (WSOLA): output length is len(x) / factor.

    Each output frame (Hann window, 50% overlap) is taken from near its nominal input position, shifted by up to
    `tolerance_ms` to line up best (cross-correlation) with the natural continuation of the previous frame, so
    waveforms join in phase.
    """
    if factor == 1.0 or x.size == 0:
        return x.astype(np.float64)
    frame = int(SR * frame_ms / 1000) // 2 * 2
    hop = frame // 2
    tol = int(SR * tolerance_ms / 1000)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)  # periodic Hann: 50% overlaps sum to 1
    n_out = int(round(x.size / factor))
    padded = np.concatenate([np.zeros(tol), x.astype(np.float64), np.zeros(frame + 2 * tol + hop)])
    out = np.zeros(n_out + frame)
    previous = None
    for out_pos in range(0, n_out, hop):
        ideal = min(int(round(out_pos * factor)), x.size) + tol
        if previous is None:
            pos = ideal
        else:
            natural = padded[previous + hop : previous + hop + frame]
            region = padded[ideal - tol : ideal + tol + frame]
            pos = ideal - tol + int(np.argmax(np.correlate(region, natural, mode="valid")))
        out[out_pos : out_pos + frame] += window * padded[pos : pos + frame]
        previous = pos
    return out[:n_out]


# --- telephone ------------------------------------------------------------------------------------------------

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # 14-bit magnitude


def mulaw_encode(samples: np.ndarray) -> np.ndarray:
    """16-bit PCM to G.711 μ-law bytes, bit-exact with the reference (Sun) coder that `audioop.lin2ulaw` used."""
    x = np.asarray(samples, dtype=np.int16).astype(np.int32) >> 2  # 14-bit, rounding towards -inf like C's >>
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    _, exponent = np.frexp(magnitude.astype(np.float64))  # magnitude = m * 2**exponent, 0.5 <= m < 1
    segment = exponent.astype(np.int32) - 1 - 5
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 μ-law bytes to 16-bit PCM (`audioop.ulaw2lin`)."""
    u = ~np.asarray(codes, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


BAND_PASS_ORDER = 6  # per edge, before the forward-backward pass doubles it


def _band_pass(x: np.ndarray, rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass (`scipy.signal`, second-order sections run forward and backward): a
    channel's smooth skirts, no block-wide FFT mask whose ringing spreads over the whole clip."""
    from scipy import signal

    if x.size < 2:
        return x.astype(np.float64)
    sos = signal.butter(BAND_PASS_ORDER, (low_hz, high_hz), btype="bandpass", fs=rate, output="sos")
    return signal.sosfiltfilt(sos, x, padlen=min(x.size - 1, 3 * (2 * len(sos) + 1)))


def telephone(x: np.ndarray, band_hz: tuple[int, int] = (300, 3400)) -> np.ndarray:
    """A narrowband phone line: down to 8 kHz (soxr), the channel's pass band (scipy Butterworth), G.711 μ-law,
    back up to 24 kHz (soxr) and the receiver's reconstruction filter (the same band again, which also takes out
    what μ-law noise and soxr's transition band leave just above 4 kHz)."""
    narrow = audio.resample(x, SR, 8000).astype(np.float64)
    narrow = _band_pass(narrow, 8000, *band_hz)
    pcm = np.clip(np.round(narrow * 32768.0), -32768, 32767).astype(np.int16)
    decoded = mulaw_decode(mulaw_encode(pcm)).astype(np.float32) / 32768.0
    wide = _band_pass(audio.resample(decoded, 8000, SR).astype(np.float64), SR, *band_hz)
    return np.pad(wide, (0, max(0, x.size - wide.size)))[: x.size]


# --- packet loss ----------------------------------------------------------------------------------------------

def drop_packets(x: np.ndarray, loss_pct: float, frame_ms: int, burst_frames: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Zero whole `frame_ms` frames: independently with probability `loss_pct`% when `burst_frames` is 1 (the same
    draws at every level, so a lower level loses a subset), else in Gilbert-model bursts of that mean length."""
    frame = SR * frame_ms // 1000
    n_frames = -(-x.size // frame)
    draws = rng.random(n_frames)
    loss = loss_pct / 100.0
    if burst_frames <= 1.0 or loss == 0.0:
        lost = draws < loss
    else:
        recover = 1.0 / burst_frames
        fall = loss * recover / (1.0 - loss)
        lost = np.zeros(n_frames, dtype=bool)
        bad = draws[0] < loss
        for i in range(n_frames):
            lost[i] = bad
            nxt = rng.random()
            bad = (nxt >= recover) if bad else (nxt < fall)
    out = x.astype(np.float64).copy()
    for i in np.flatnonzero(lost):
        out[i * frame : (i + 1) * frame] = 0.0
    return out, {"frames": int(n_frames), "lost_frames": int(lost.sum()),
                 "lost_pct": round(100.0 * float(lost.mean()), 3) if n_frames else 0.0}


# --- one entry point ------------------------------------------------------------------------------------------

def apply(pcm: bytes, perturbation: Perturbation, key: str,
          babble: Callable[[], np.ndarray] | None = None) -> Applied:
    """`pcm` (24 kHz PCM16) perturbed; the same (perturbation, key, pcm) always gives the same bytes.

    `key` names the clip (the runner uses sample id and text); `babble` supplies the babble track when needed.
    """
    clean = audio.from_pcm16(pcm).astype(np.float64)
    rng = _rng(perturbation, key)
    facts: dict[str, Any] = {}
    if perturbation.kind == "noise":
        assert perturbation.level is not None
        track = babble() if perturbation.noise == "babble" and babble is not None else None
        out, facts = mix_at_snr(clean, noise(perturbation.noise, clean.size, rng, track), perturbation.level)
    elif perturbation.kind == "rate":
        assert perturbation.level is not None
        out = change_tempo(clean, perturbation.level)
        facts = {"duration_s": round(out.size / SR, 3), "clean_duration_s": round(clean.size / SR, 3)}
    elif perturbation.kind == "telephone":
        out = telephone(clean, perturbation.band_hz)
    else:
        assert perturbation.level is not None
        out, facts = drop_packets(clean, perturbation.level, perturbation.frame_ms, perturbation.burst_frames, rng)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > HEADROOM:  # tempo and telephone can overshoot slightly: scale, never wrap or clip
        out = out * (HEADROOM / peak)
    pcm_out = audio.to_pcm16(out)
    if perturbation.kind == "noise" and "reason" not in facts:
        facts["measured_snr_db"] = measured_snr_db(clean * 10 ** (facts["gain_db"] / 20), pcm_out)
    return Applied(pcm_out, facts)


def measured_snr_db(clean: np.ndarray, pcm: bytes) -> float:
    """The SNR of a noisy PCM16 clip against the clean signal it holds (as defined above), after quantisation."""
    added = audio.from_pcm16(pcm).astype(np.float64) - clean
    return round(10 * float(np.log10(active_power(clean) / float(np.mean(added * added)))), 3)
