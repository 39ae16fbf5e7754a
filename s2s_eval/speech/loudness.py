"""Loudness of spoken questions: ITU-R BS.1770 integrated loudness (`pyloudnorm`), and a gain to one target.

Engines and voices speak at their own levels (espeak-ng's voices differ by several dB, a neural service is
louder still), so a model compared across voices would also be compared across levels, and an SNR perturbation
would start from whatever level the engine chose. Every synthesised clip is therefore scaled to one integrated
loudness (default -23 LUFS, EBU R 128's programme level; `tts.loudness_lufs` in the eval spec, None to keep the
engine's level). One gain for the whole clip: the dynamics are the engine's. If that gain would push a peak
past full scale, the clip is scaled to just below it instead and lands under the target; the measured loudness is
recorded either way.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

import numpy as np

from s2s_eval import audio

__all__ = ["DEFAULT_TARGET_LUFS", "METER", "measure_lufs", "meter_name", "normalise_loudness"]

DEFAULT_TARGET_LUFS = -23.0
PEAK_LIMIT = 0.999  # full scale, as the perturbations use
METER = "pyloudnorm"


@functools.cache
def meter_name() -> str:
    """The meter and its version, as clip facts and cache keys record it."""
    return f"{METER} {importlib.metadata.version('pyloudnorm')} (ITU-R BS.1770-4)"


@functools.cache
def _meter() -> Any:
    import pyloudnorm

    return pyloudnorm.Meter(audio.SAMPLE_RATE)


def measure_lufs(pcm: bytes) -> float | None:
    """Integrated loudness of 24 kHz PCM16 in LUFS; None for a clip too short (under one 400 ms block) or silent."""
    samples = audio.from_pcm16(pcm[: len(pcm) - len(pcm) % 2]).astype(np.float64)
    if samples.size < audio.SAMPLE_RATE * 0.4:
        return None
    loudness = float(_meter().integrated_loudness(samples))
    return round(loudness, 2) if np.isfinite(loudness) else None


def normalise_loudness(pcm: bytes, target_lufs: float) -> tuple[bytes, dict[str, Any]]:
    """`pcm` scaled to `target_lufs`, and what was measured: `source_lufs`, `gain_db`, `loudness_lufs` (after),
    `peak_limited`. A clip whose loudness cannot be measured is returned as it is, with the reason."""
    source = measure_lufs(pcm)
    if source is None:
        return pcm, {"loudness_lufs": None, "reason": "not normalised: too short or silent to measure"}
    samples = audio.from_pcm16(pcm).astype(np.float64)
    gain = 10 ** ((target_lufs - source) / 20)
    peak = float(np.max(np.abs(samples))) * gain
    limited = peak > PEAK_LIMIT
    if limited:
        gain *= PEAK_LIMIT / peak
    out = audio.to_pcm16(samples * gain)
    return out, {"source_lufs": source, "gain_db": round(20 * float(np.log10(gain)), 2),
                 "loudness_lufs": measure_lufs(out), "peak_limited": limited}
