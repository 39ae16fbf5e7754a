"""Where the speech is in a clip: its first and last voiced sample, found by a real voice activity detector.

The detector is Silero VAD, the ONNX model that faster-whisper ships (`assets/silero_vad_v6.onnx`), run with
onnxruntime on the clip resampled to 16 kHz. Silero decides per 32 ms window whether there is speech; it lags a
speech onset by a window or two (it needs context), so each boundary is then placed to 5 ms: the onset moves back
(at most `REFINE_MS`) over the frames that are within `ACTIVE_RANGE_DB` of the speech's level, and forward over
frames that are not; the end likewise. Silero says *whether* there is speech (a click, hum or noise floor does not
count), the frame levels say *where* it starts.

Without faster-whisper or onnxruntime, the old energy rule measures instead (a 10 ms frame above -40 dBFS is
voiced) and every span says so in `detector`: records name the detector that measured them, never a guess.

Pure computation, no I/O: safe to call from worker threads (the ONNX session is shared and thread-safe).
"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass

import numpy as np

from s2s_eval import audio

__all__ = ["ENERGY", "VoicedSpan", "detector", "voiced_span"]

ENERGY = f"energy (10 ms frames above {audio.VOICED_DBFS:g} dBFS)"
VAD_RATE = 16_000
WINDOW = 512  # Silero's window at 16 kHz (32 ms)
THRESHOLD = 0.5  # Silero's speech probability threshold (its documented default)
MIN_SPEECH_MS = 60  # a lone window above the threshold (a click) is not speech
FRAME_MS = 5
REFINE_MS = 120
ACTIVE_RANGE_DB = 35.0


@dataclass(frozen=True)
class VoicedSpan:
    """First and last voiced sample of a clip, in ms from its start, and which detector found them."""

    start_ms: float
    end_ms: float
    detector: str


@functools.cache
def _silero() -> tuple[object, str] | None:
    """(faster-whisper's `get_speech_timestamps`, the detector's name), or None when it is not installed."""
    try:
        import onnxruntime  # noqa: F401  (faster-whisper imports it lazily; fail here, not mid-run)
        from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model
    except ImportError:
        return None
    get_vad_model()  # load the model once, now
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("faster-whisper", "onnxruntime"))
    name = f"silero-vad-v6 ({versions}; threshold {THRESHOLD:g}, boundaries refined to {FRAME_MS} ms)"
    options = VadOptions(threshold=THRESHOLD, min_speech_duration_ms=MIN_SPEECH_MS, min_silence_duration_ms=100,
                         speech_pad_ms=0)
    return functools.partial(get_speech_timestamps, vad_options=options, sampling_rate=VAD_RATE), name


def detector() -> str:
    """The name (and versions) of the detector `voiced_span` uses on this machine."""
    silero = _silero()
    return silero[1] if silero else ENERGY


def _frame_db(x: np.ndarray, rate: int) -> np.ndarray:
    frame = rate * FRAME_MS // 1000
    usable = x[: x.size - x.size % frame].astype(np.float64).reshape(-1, frame)
    with np.errstate(divide="ignore"):
        return 10 * np.log10((usable * usable).mean(axis=1)) if usable.size else np.zeros(0)


def _refine(levels: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Silero's [start, end) in 5 ms frames, moved to where the frame levels say speech starts and ends."""
    inside = levels[start:end]
    reference = float(np.percentile(inside[np.isfinite(inside)], 95)) if np.isfinite(inside).any() else -np.inf
    active = levels >= reference - ACTIVE_RANGE_DB
    reach = REFINE_MS // FRAME_MS
    first, last = start, end
    while start > max(0, first - reach) and active[start - 1]:
        start -= 1
    while start < min(end - 1, first + reach) and not active[start]:
        start += 1
    while end < min(levels.size, last + reach) and active[end]:
        end += 1
    while end > max(start + 1, last - reach) and not active[end - 1]:
        end -= 1
    return start, end


def voiced_span(pcm: bytes) -> VoicedSpan | None:
    """The voiced part of 24 kHz PCM16 audio; None when it holds no speech (or is empty)."""
    if len(pcm) < 2:
        return None
    silero = _silero()
    if silero is None:
        span = audio.voiced_span_ms(pcm)
        return None if span is None else VoicedSpan(float(span[0]), float(span[1]), ENERGY)
    find, name = silero
    x = audio.from_pcm16(pcm[: len(pcm) - len(pcm) % 2])
    wide = audio.resample(x, audio.SAMPLE_RATE, VAD_RATE)
    speech = find(wide)  # type: ignore[operator]
    if not speech:
        return None
    frame = audio.SAMPLE_RATE * FRAME_MS // 1000
    to_frame = audio.SAMPLE_RATE / VAD_RATE / frame
    levels = _frame_db(x, audio.SAMPLE_RATE)
    start = min(int(speech[0]["start"] * to_frame), max(0, levels.size - 1))
    end = min(max(start + 1, int(np.ceil(speech[-1]["end"] * to_frame))), levels.size)
    start, end = _refine(levels, start, end)
    return VoicedSpan(float(start * FRAME_MS), float(min(end * FRAME_MS, audio.duration_s(pcm) * 1000)), name)
