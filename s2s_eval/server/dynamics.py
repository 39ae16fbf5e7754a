"""Conversational dynamics of the reference server: settings that make it a better or worse turn-taker on purpose.

A full-duplex eval (issue 16) measures how a model behaves around a turn: whether it jumps into a pause, how fast it
yields when the caller interrupts, whether a backchannel ("mm-hmm") stops it. To test those metrics against a known
truth offline, the reference server's behaviour in these moments is configurable (`s2s-eval serve` flags,
`ServerConfig` fields, and the `server:` block of a `local` profile):

- `vad_min_speech_ms` (default 0): server VAD reports speech (`input_audio_buffer.speech_started`) only once voiced
  audio since its onset adds up to this long (a pause of `silence_duration_ms` forgets the onset); `audio_start_ms`
  is still the onset minus `prefix_padding_ms`. A shorter utterance (a backchannel "mm-hmm") is ignored entirely:
  no speech_started, no interruption, no commit, no response. 0 = speech starts at the first voiced frame.
- `yield_delay_ms` (default 0): when VAD detects speech while a response is active and `interrupt_response` is
  true, the response is cancelled (`turn_detected`) this long after the audio frame that completed the detection
  arrived, on the monotonic clock, not at once. `speech_started` is still sent at detection. A response that
  finishes in the meantime is not cancelled: the model did not yield in time. A VAD turn that ends (commit) before
  the response has yielded is answered at the moment it yields (its first-audio delay counted from then).
- `output_rate` (default None = unpaced): a response's audio deltas go out paced at this multiple of real time (2.0:
  ten seconds of audio take five), scheduled on the monotonic clock from its first audio delta, so an interruption
  early in playback finds the response still generating. None sends them as fast as speech is synthesised. The
  first audio delta still goes out at the first-audio delay.

Documented session settings need no server flag: the silence a turn must end with stays the client's
`turn_detection.silence_duration_ms`. A VAD-created response's first audio is scheduled `first_audio_delay_ms` after
the audio frame that completed the silence arrived, so the turn-end latency a client measures from the end of its
voiced audio is silence_duration_ms + first_audio_delay_ms + up to one of its frames (plus the VAD's 10 ms frame).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Dynamics"]


@dataclass(frozen=True)
class Dynamics:
    """The turn-taking settings of one server (see the module docstring); the defaults are the plain server."""

    vad_min_speech_ms: int = 0
    yield_delay_ms: float = 0.0
    output_rate: float | None = None

    def __post_init__(self) -> None:
        if self.vad_min_speech_ms < 0:
            raise ValueError("vad_min_speech_ms must be 0 or more")
        if self.yield_delay_ms < 0:
            raise ValueError("yield_delay_ms must be 0 or more")
        if self.output_rate is not None and not self.output_rate > 0:
            raise ValueError("output_rate must be more than 0 (times real time), or unset for unpaced output")
