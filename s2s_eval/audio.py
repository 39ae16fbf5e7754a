"""PCM16 audio helpers shared by the TTS cache, the runner and the reference server.

The Realtime API speaks 24 kHz, mono, little-endian signed 16-bit PCM, base64-encoded inside JSON.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from s2s_eval import jsonwire
from s2s_eval.files import atomic_write_bytes
from s2s_eval.jsonwire import B64

SAMPLE_RATE = 24_000
BYTES_PER_SECOND = SAMPLE_RATE * 2


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] (or int16) to little-endian PCM16 bytes."""
    # Scale by 32768, the inverse of soundfile's int16 -> float convention, so a round trip is lossless.
    if samples.dtype != np.int16:
        samples = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    return samples.astype("<i2").tobytes()


def from_pcm16(pcm: bytes) -> np.ndarray:
    """PCM16 bytes to float32 samples in [-1, 1]."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling (soxr); returns float32."""
    samples = np.asarray(samples, dtype=np.float32)
    if rate_in == rate_out:
        return samples
    return soxr.resample(samples, rate_in, rate_out).astype(np.float32)


def decode_to_pcm16(data: bytes) -> bytes:
    """Any soundfile-readable file (WAV, FLAC, ...) to mono 24 kHz PCM16 bytes."""
    info = sf.info(io.BytesIO(data))
    if info.samplerate == SAMPLE_RATE and info.channels == 1:
        samples, _ = sf.read(io.BytesIO(data), dtype="int16")
        return to_pcm16(samples)
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return to_pcm16(resample(samples.mean(axis=1), rate))


def read_wav(path: Path) -> bytes:
    """Read an audio file as mono 24 kHz PCM16 bytes."""
    return decode_to_pcm16(Path(path).read_bytes())


def write_wav(path: Path, pcm: bytes) -> None:
    """Write 24 kHz mono PCM16 bytes as a WAV file, atomically: several processes may write the same path at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = io.BytesIO()
    sf.write(wav, np.frombuffer(pcm, dtype="<i2"), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, wav.getvalue())


def duration_s(pcm: bytes) -> float:
    """Duration of 24 kHz PCM16 bytes in seconds."""
    return len(pcm) / BYTES_PER_SECOND


def chunks(pcm: bytes, chunk_ms: int) -> list[bytes]:
    """Split PCM16 into chunks of `chunk_ms` (the last may be shorter)."""
    size = BYTES_PER_SECOND * chunk_ms // 1000
    size -= size % 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def b64(pcm: bytes) -> B64:
    return jsonwire.b64encode(pcm)


@functools.lru_cache(maxsize=32)
def b64_chunks(pcm: bytes, chunk_ms: int) -> tuple[B64, ...]:
    """`chunks(pcm, chunk_ms)`, each base64-encoded, made once per clip: a clip is sent again by every attempt,
    trial and selftest session, and the reference server speaks a scripted answer in every session that asks."""
    return tuple(b64(chunk) for chunk in chunks(pcm, chunk_ms))


def b64decode(data: str) -> bytes:
    return jsonwire.b64decode(data)


VOICED_DBFS = -40.0  # a 10 ms frame louder than this is speech (espeak speech sits near -20 dBFS)
FRAME_MS = 10


def frame_levels_dbfs(pcm: bytes, frame_ms: int = FRAME_MS) -> np.ndarray:
    """RMS level of each whole `frame_ms` frame, in dBFS (-inf for digital silence)."""
    frame = SAMPLE_RATE * frame_ms // 1000
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float64) / 32768.0
    usable = samples[: len(samples) - len(samples) % frame].reshape(-1, frame)
    with np.errstate(divide="ignore"):
        return 20 * np.log10(np.sqrt((usable * usable).mean(axis=1))) if usable.size else np.array([])


def voiced_span_ms(pcm: bytes, level_dbfs: float = VOICED_DBFS) -> tuple[int, int] | None:
    """(start, end) in ms of the voiced part of a clip: first and last frame above `level_dbfs`; None if silent."""
    voiced = np.flatnonzero(frame_levels_dbfs(pcm) > level_dbfs)
    if voiced.size == 0:
        return None
    return int(voiced[0]) * FRAME_MS, (int(voiced[-1]) + 1) * FRAME_MS


def silence(duration_ms: int) -> bytes:
    """Digital silence of `duration_ms`."""
    return bytes(BYTES_PER_SECOND * duration_ms // 1000 // 2 * 2)
