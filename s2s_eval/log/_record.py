"""One line of `samples.jsonl`: what happened to one sample, typed and versioned.

Field names are the ones the run directory has always used (ARCHITECTURE.md's contract); what a record holds
beyond them is typed here too, so readers index fields instead of guarding every `.get()`. Parts whose inner shape
belongs to another module (token `usage` as the provider reports it, a grader's `details`, ASR facts, TTS facts)
stay JSON objects.

Version 1 adds `schema_version`, `input_clip` (the spoken question's text, content hash and where the
clip is kept), the grader's name and version in `grade`, and, with `--attempts K`, per-trial attempts, usage and
cost: the record's `usage`, `cost_usd` and `attempts` then add up every try, not the first only. Lines without a
version (version 0, written before this module) are read and upgraded: nothing they hold is dropped.

Version 2 adds, all optional: `latency.ttfa_voiced_ms` (time zero to the first *voiced* output sample)
and `latency.voice_detector` (which detector found the voiced samples: Silero VAD, or the energy rule where it is
not installed), and the question clip's measured loudness `input_clip.loudness_lufs` (BS.1770). Versions 0 and 1
read as before, with these fields None.

Version 3 (this one) adds the optional `dynamics`: what a full-duplex turn-taking session showed (pauses,
interruptions, backchannels, turn-end latency; `runners/duplex.py`). Versions 0–2 read with it None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from s2s_eval.pricing import add_usage

SCHEMA_VERSION = 3


def sum_usage(usages: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Token usage objects added field by field (nested details too)."""
    total: dict[str, Any] = {}
    for usage in usages:
        add_usage(total, usage)
    return total


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorInfo(_Part):
    """Why a session failed: `kind` (see runners/errors.py), its retry class, and the message."""

    kind: str
    error_class: str = Field("unknown", alias="class")
    message: str = ""


class Latency(_Part):
    """Milliseconds from the turn's time zero (see README: what latency means); None = not measured."""

    ttfa_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    output_leading_silence_ms: float | None = None
    server_sent_ms: float | None = None
    ttfa_voiced_ms: float | None = None  # version 2: ttfa_ms + output_leading_silence_ms
    voice_detector: str | None = None  # version 2: what found the voiced output (speech/voice_activity.py)


class FunctionCallInfo(_Part):
    name: str
    call_id: str = ""
    arguments: str = ""


class ResponseInfo(_Part):
    """One `response.done` of the session, in order: its latency, transcript and function calls."""

    turn: int = 0
    response_id: str | None = None
    status: str | None = None
    ttfa_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    text: str = ""
    function_calls: list[FunctionCallInfo] = Field(default_factory=list)


class GradeInfo(_Part):
    """A grader's verdict, with which grader (and version) gave it, so re-graded runs can be told apart."""

    correct: bool | None
    score: float | None
    reason: str
    extracted: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    grader: str | None = None  # None: written before graders were named in records (version 0)
    grader_version: str | None = None


class InputClip(_Part):
    """The spoken question as the model heard it. `path` is relative to the run directory when `kept` is "run"
    (the default unless `--no-audio`), relative to the audio cache when "cache", and None when the clip was kept
    nowhere (a perturbed clip under `--no-audio`); `sha256` is of its PCM samples."""

    text: str
    sha256: str
    duration_s: float
    path: str | None = None
    kept: Literal["run", "cache"] | None = None
    loudness_lufs: float | None = None  # version 2: integrated loudness (ITU-R BS.1770) of the clip as sent


class Attempt(_Part):
    """One session of one trial: its error (None: it finished), usage and cost as billed."""

    error: ErrorInfo | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float | None = None


class Trial(_Part):
    """One independent try of `--attempts K` (pass@k): its verdict and every session it took."""

    status: Literal["ok", "error"]
    correct: bool | None = None
    score: float | None = None
    reason: str | None = None
    response_text: str = ""
    grade: GradeInfo | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    responses: list[ResponseInfo] = Field(default_factory=list)  # of its last session: what a re-grade reads


class Dynamics(_Part):
    """Version 3: the timing facts and verdict of one full-duplex scenario (`runners/duplex.py` says how each is
    measured). Times are ms on the session's clock, 0 = when the caller's first frame started being captured;
    None = it did not happen, or was not measured.

    `scenario` is the category: `pause` (a question with a mid-sentence pause: did the model take over before it
    ended?), `interruption` (the caller cuts into a long answer: did the model yield, how fast, and did it answer
    the interruption?), `backchannel` (the caller says "mm-hmm" into a long answer: did it wrongly stop or
    restart?) and `turn_end` (end of the caller's voiced audio to the model's first voiced audio). `policy` names
    the client's playback policy and `max_pause_ms` the longest mid-utterance pause a model is expected to wait
    through; both are in the run's spec too.
    """

    scenario: Literal["pause", "interruption", "backchannel", "turn_end"]
    policy: str
    max_pause_ms: float | None = None
    caller_end_ms: float | None = None  # the question's real end: its last voiced sample
    cue_onset_ms: float | None = None  # interruption / backchannel: the caller's voiced cue starts ...
    cue_end_ms: float | None = None  # ... and ends
    model_start_ms: float | None = None  # the first response's playback starts (first audio delta received)
    turn_end_latency_ms: float | None = None  # caller_end → the first voiced model audio played after it
    takeover: bool | None = None  # pause: the model's playback started before caller_end
    yielded: bool | None = None  # interruption: playback stopped after the cue's onset, before the answer's end
    yield_kind: Literal["while_generating", "during_playback"] | None = None
    yield_latency_ms: float | None = None  # cue onset → the model's audio stops
    addressed: bool | None = None  # interruption: the next answer addresses the cue (rule); None: not judged
    false_yield: bool | None = None  # backchannel: the model stopped, or started a new response, after the cue
    truncate_audio_end_ms: int | None = None  # what `conversation.item.truncate` said was played
    played_ms: float | None = None  # the playback clock's count of the item's audio played when it stopped
    verdict: str = ""  # one line: what happened and why it counts as it does
    events: list[tuple[str, float]] = Field(default_factory=list)  # the scenario's timeline, in ms


class SampleRecord(BaseModel):
    """One finished sample. `status` is "ok" when a session finished; `correct` is None when it was not graded."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: int = SCHEMA_VERSION
    sample_id: str
    eval: str
    model: str
    category: str | None = None
    status: Literal["ok", "error"]
    error: ErrorInfo | None = None
    correct: bool | None = None
    score: float | None = None
    grade: GradeInfo | None = None
    target: Any = None
    response_text: str | None = ""
    latency: Latency = Field(default_factory=Latency)
    usage: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float | None = None
    attempts: int = 1
    attempt_errors: list[ErrorInfo] = Field(default_factory=list)
    responses: list[ResponseInfo] = Field(default_factory=list)
    premature_responses: int = 0
    input_audio_s: float | None = None
    output_audio_s: float | None = None
    output_audio: str | None = None
    timeline: list[tuple[str, float]] = Field(default_factory=list)
    finished_at: str | None = None
    modality: dict[str, str] | None = None
    # How the question was spoken (absent for typed input): the voice label, what spoke it, how it was perturbed.
    voice: str | None = None
    tts: dict[str, Any] | None = None
    perturbation: dict[str, Any] | None = None
    input_audio: str | None = None  # version 0: a kept question clip, relative to the run directory
    input_clip: InputClip | None = None
    asr: dict[str, Any] | None = None
    trials: list[Trial] | None = None
    pass_at_1: float | None = None
    dynamics: Dynamics | None = None  # version 3: full-duplex scenarios (turn_taking)
    regraded: dict[str, Any] | None = None  # set by `s2s-eval regrade`: when, and the grade it replaced

    def with_trials(self, trials: list[Trial], shown: int) -> SampleRecord:
        """The record of `--attempts K` independent tries (pass@k): `correct` is pass@k and `score` the mean score
        (pass@1 for right/wrong grades); `grade` is trial `shown`'s (the record's transcript, latency and audio are
        that trial's too); usage, cost and attempts add up every session of every trial, since each was billed."""
        graded = [t for t in trials if t.grade is not None and t.correct is not None]
        scores = [t.score for t in graded if t.score is not None]
        passed = sum(bool(t.correct) for t in graded)
        attempts = [a for t in trials for a in t.attempts]
        costs = [a.cost_usd for a in attempts]
        return self.model_copy(update={
            "trials": trials,
            "grade": trials[shown].grade,
            "pass_at_1": round(passed / len(graded), 6) if graded else None,
            "correct": passed > 0 if graded else None,
            "score": round(sum(scores) / len(scores), 6) if scores else None,
            "usage": sum_usage(a.usage for a in attempts),
            "cost_usd": None if not costs or None in costs else round(sum(c for c in costs if c is not None), 8),
            "attempts": len(attempts),
        })

    def line(self) -> str:
        """The record as one JSON line (no newline), in the journal's field names."""
        return self.model_dump_json(by_alias=True)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
