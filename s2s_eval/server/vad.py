"""Energy-based server VAD on the session's audio clock, free of I/O.

The real service runs a neural VAD whose `threshold` (0–1) is a speech probability. This stand-in maps it to
frame energy: a 10 ms frame is voiced when its RMS level exceeds `-70 + 60 × threshold` dBFS (0.5 → -40 dBFS,
well under speech and well over digital silence or faint noise). Offsets follow the real semantics:
`audio_start_ms` counts from the start of all audio written in the session and includes `prefix_padding_ms`;
`audio_end_ms` is where speech was judged over, i.e. the end of the voiced audio plus `silence_duration_ms`.
`semantic_vad` is approximated by server VAD with a silence wait chosen by `eagerness`.

`min_speech_ms` (the server's `vad_min_speech_ms`, see `dynamics.py`; not a session field) delays the report of
speech until voiced frames since the onset add up to that long; an onset followed by `silence_duration_ms` of
silence before then is forgotten, so a short utterance (a backchannel) never starts a turn. At 0 (the default)
speech starts at the first voiced frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from s2s_eval import audio

FRAME_MS = 10
_FRAME_BYTES = audio.BYTES_PER_SECOND * FRAME_MS // 1000
_SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 250}


@dataclass(frozen=True)
class VadSettings:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 0

    @classmethod
    def from_session(cls, turn_detection: dict[str, Any]) -> VadSettings:
        """Settings from a session's `audio.input.turn_detection` (null fields take the documented defaults)."""
        if turn_detection.get("type") == "semantic_vad":
            return cls(silence_duration_ms=_SEMANTIC_SILENCE_MS[turn_detection.get("eagerness") or "auto"])

        def value(key: str, default: Any) -> Any:
            return default if turn_detection.get(key) is None else turn_detection[key]

        return cls(threshold=value("threshold", 0.5), prefix_padding_ms=value("prefix_padding_ms", 300),
                   silence_duration_ms=value("silence_duration_ms", 500))

    @property
    def level_dbfs(self) -> float:
        return -70.0 + 60.0 * self.threshold


@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    audio_end_ms: int


@dataclass
class EnergyVad:
    """Feed it every appended chunk; it reports where speech starts and stops on the session audio clock."""

    settings: VadSettings = field(default_factory=VadSettings)
    written_ms: int = 0  # audio clock: everything appended in the session
    in_speech: bool = False
    silence_ms: int = 0
    onset_ms: int | None = None  # first voiced frame of speech not yet long enough to report
    voiced_ms: int = 0  # voiced audio since `onset_ms`
    _partial: bytes = b""

    def voiced(self, frame: bytes) -> bool:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64) / 32768.0
        rms = math.sqrt(float(np.mean(samples * samples))) if samples.size else 0.0
        return rms > 0 and 20 * math.log10(rms) > self.settings.level_dbfs

    def feed(self, pcm: bytes) -> list[SpeechStarted | SpeechStopped]:
        """Process appended audio (any length); return the speech boundaries it completes, in order."""
        data = self._partial + pcm
        whole = len(data) - len(data) % _FRAME_BYTES
        self._partial = data[whole:]
        events: list[SpeechStarted | SpeechStopped] = []
        for start in range(0, whole, _FRAME_BYTES):
            voiced = self.voiced(data[start : start + _FRAME_BYTES])
            frame_start_ms = self.written_ms
            self.written_ms += FRAME_MS
            if voiced:
                self.silence_ms = 0
                if not self.in_speech:
                    if self.onset_ms is None:
                        self.onset_ms, self.voiced_ms = frame_start_ms, 0
                    self.voiced_ms += FRAME_MS
                    if self.voiced_ms >= self.settings.min_speech_ms:
                        self.in_speech = True
                        events.append(SpeechStarted(max(0, self.onset_ms - self.settings.prefix_padding_ms)))
                        self.onset_ms = None
            elif self.in_speech or self.onset_ms is not None:
                self.silence_ms += FRAME_MS
                if self.silence_ms >= self.settings.silence_duration_ms:
                    if self.in_speech:
                        events.append(SpeechStopped(self.written_ms))
                    self.in_speech, self.onset_ms, self.silence_ms = False, None, 0
        return events

    def skip(self, pcm: bytes) -> None:
        """Advance the clock over audio that is not analysed (written while turn detection is off)."""
        data = self._partial + pcm
        whole = len(data) - len(data) % _FRAME_BYTES
        self._partial = data[whole:]
        self.written_ms += whole // _FRAME_BYTES * FRAME_MS

    def reset(self) -> None:
        """Forget a turn in progress (the buffer was cleared or committed by hand); the clock keeps running."""
        self.in_speech = False
        self.silence_ms = 0
        self.onset_ms = None
