"""The session driver: one Realtime conversation as a state machine, free of I/O.

The WebSocket layer feeds it every (normalised) server event with the monotonic time the frame arrived, sends what
it returns, and reports when each event was handed to the socket (`sent`). The machine configures the session,
injects prior turns as conversation items, then plays each user turn and observes the responses to it:

- manual turns (`turn_detection: null`): append the audio, commit, wait for `input_audio_buffer.committed`, send
  `response.create`. Time zero is the moment `response.create` is sent.
- VAD turns (`server_vad`): append the audio and trailing silence (paced at real time by the I/O layer); the
  server commits and answers by itself. Time zero is the moment the append holding the last voiced sample is sent
  (the voice activity detector of `speech/voice_activity.py` finds it).

When a response ends with function calls and a tool handler is set, the machine sends one `function_call_output`
per call and one `response.create` (time zero of that follow-up response), until a response has no calls.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from s2s_eval import audio
from s2s_eval.runners.errors import TurnError, classify_error
from s2s_eval.speech import voice_activity

INPUT_CHUNK_MS = 100
TRAILING_SILENCE_MS = 1500  # after speech in VAD mode: longer than any sensible silence_duration_ms

__all__ = ["FunctionCall", "HistoryItem", "Phase", "ResponseObservation", "SessionMachine", "SessionPlan",
           "TurnError", "UserTurn", "classify_error"]


@dataclass(frozen=True)
class HistoryItem:
    """A prior turn injected before the first user turn: text, or (user only) audio."""

    role: Literal["user", "assistant", "system"]
    text: str | None = None
    pcm: bytes | None = None

    def item(self) -> dict[str, Any]:
        if self.pcm is not None:
            if self.role != "user":
                raise ValueError("only user history can be audio (assistant audio cannot be created)")
            content = [{"type": "input_audio", "audio": audio.b64(self.pcm)}]
        else:
            kind = "output_text" if self.role == "assistant" else "input_text"
            content = [{"type": kind, "text": self.text or ""}]
        return {"type": "message", "role": self.role, "content": content}


@dataclass(frozen=True)
class UserTurn:
    """One thing the user says: audio (spoken) or text."""

    pcm: bytes | None = None
    text: str | None = None
    voiced_end_ms: float | None = None  # where the speech in `pcm` ends; None: the machine finds it (VAD turns)


@dataclass(frozen=True)
class FunctionCall:
    name: str
    call_id: str
    arguments: str


ToolHandler = Callable[[FunctionCall], str]


@dataclass(frozen=True)
class SessionPlan:
    """Everything a session does, decided before it starts."""

    session_update: dict[str, Any]
    turns: tuple[UserTurn, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    history: tuple[HistoryItem, ...] = ()
    mode: Literal["manual", "vad"] = "manual"
    on_function_call: ToolHandler | None = None
    max_tool_rounds: int = 8
    chunk_ms: int = INPUT_CHUNK_MS
    trailing_silence_ms: int = TRAILING_SILENCE_MS


class Phase(Enum):
    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    UPLOADING = "uploading"
    RESPONDING = "responding"
    DONE = "done"


@dataclass
class ResponseObservation:
    """What the client saw of one response; times in ms from that response's time zero."""

    turn: int
    t_zero: float | None
    response_id: str | None = None
    status: str | None = None
    status_details: dict[str, Any] | None = None
    transcripts: dict[str, str] = field(default_factory=dict)  # item id -> final transcript / text
    deltas: dict[str, list[str]] = field(default_factory=dict)  # item id -> transcript/text deltas
    # The audio deltas as received: decoded only when read (`audio_pcm`), since until the response is done only
    # their arrival times matter, and decoding each on arrival put work between a frame and the next one's stamp.
    audio_b64: list[str] = field(default_factory=list)
    function_calls: list[FunctionCall] = field(default_factory=list)
    ttfa_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    server_sent_at: float | None = None  # the reference server's stamp on the first audio delta (selftest)
    first_audio_at: float | None = None
    usage: dict[str, Any] | None = None
    timeline: list[tuple[str, float | None]] = field(default_factory=list)

    @property
    def audio_pcm(self) -> bytes:
        """The answer's audio so far, decoded (each call decodes again: read it once the response is done)."""
        return b"".join(map(audio.b64decode, self.audio_b64))

    @property
    def response_text(self) -> str:
        """The model's transcript of its own answer: per output item, the final transcript, else its deltas."""
        items = dict.fromkeys([*self.deltas, *self.transcripts])
        return "".join(self.transcripts.get(i, "".join(self.deltas.get(i, []))) for i in items)

    @functools.cached_property
    def output_voice(self) -> voice_activity.VoicedSpan | None:
        """Where the answer's audio is voiced (read once the response is done: the result is kept)."""
        pcm = self.audio_pcm
        return voice_activity.voiced_span(pcm) if pcm else None

    @property
    def output_leading_silence_ms(self) -> float | None:
        """Time from the first audio delta to the first voiced output sample (what a caller hears as a pause)."""
        return None if self.output_voice is None else self.output_voice.start_ms

    @property
    def ttfa_voiced_ms(self) -> float | None:
        """Time zero to the first voiced output sample, played from the first delta on: `ttfa_ms` plus the leading
        silence. A model that opens with 300 ms of silence is not 300 ms faster than one that speaks at once."""
        if self.ttfa_ms is None or self.output_leading_silence_ms is None:
            return None
        return round(self.ttfa_ms + self.output_leading_silence_ms, 3)


class SessionMachine:
    """Drives one session through its plan; see the module docstring."""

    def __init__(self, plan: SessionPlan) -> None:
        self.plan = plan
        self.phase = Phase.CONNECTING
        self.error: TurnError | None = None
        self.responses: list[ResponseObservation] = []
        self.turn = -1
        self.premature_responses = 0
        self._ids = (f"evt_s2s_{n}" for n in itertools.count(1))
        self._zero_event_id: str | None = None
        self._turn_zero: float | None = None
        self._pending_zero: float | None = None
        self._current: ResponseObservation | None = None
        self._seen_deltas: set[str] = set()
        self._tool_rounds = 0
        self.rate_limit_reset_s: float | None = None  # from rate_limits.updated when a limit is exhausted
        self.upload_starts: set[str] = set()  # event ids of each upload's first append (real-time pacing restarts)

    # -- interface for the I/O layer ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def abort(self, kind: str, message: str, retry_after_s: float | None = None) -> list[dict[str, Any]]:
        """End the session as failed (also used by the I/O layer for disconnects and timeouts).

        A session that already ended keeps its outcome: a socket error after the last `response.done` changes
        nothing.
        """
        if self.phase is not Phase.DONE:
            self.error = TurnError(kind, message, retry_after_s)
            self.phase = Phase.DONE
        return []

    def starts_clock(self, event: dict[str, Any]) -> bool:
        """Is `event` the one whose send is the next response's time zero? (The I/O layer lets queued frames
        leave before stamping it.)"""
        return event.get("event_id") is not None and event.get("event_id") == self._zero_event_id

    def sent(self, event: dict[str, Any], t: float) -> None:
        """The I/O layer reports the time an event was handed to the socket; it may be a turn's time zero."""
        if event.get("event_id") is not None and event.get("event_id") == self._zero_event_id:
            self._zero_event_id = None
            self._turn_zero = t
            self._pending_zero = t

    def on_event(self, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        """Feed one normalised server event received at monotonic time `t`; return the events to send."""
        kind = event.get("type")
        if not isinstance(kind, str):
            return self.abort("protocol", f"server event without a type: {str(event)[:200]}")
        if kind == "error":
            return self._on_error(event.get("error") or {})
        if kind == "rate_limits.updated":
            self._note_rate_limits(event.get("rate_limits") or [])
        if self.phase is Phase.CONNECTING and kind == "session.created":
            self.phase = Phase.CONFIGURING
            return [self._event("session.update", session=self.plan.session_update)]
        if self.phase is Phase.CONFIGURING and kind == "session.updated":
            return self._configured()
        return self._on_session_event(kind, event, t)

    def _configured(self) -> list[dict[str, Any]]:
        """The session is set up: inject the history and start the first turn."""
        history = [self._event("conversation.item.create", item=h.item()) for h in self.plan.history]
        return history + self._next_turn()

    def _on_session_event(self, kind: str, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        """Any other event of a configured session: turn ends and responses."""
        if self.phase is Phase.UPLOADING and kind == "input_audio_buffer.committed" and self.plan.mode == "manual":
            self.phase = Phase.RESPONDING
            return [self._response_create()]
        if kind.startswith("response."):
            return self._on_response_event(kind, event, t)
        return []

    # -- turns ----------------------------------------------------------------------------------------------------

    def _event(self, type_: str, **fields: Any) -> dict[str, Any]:
        return {"type": type_, "event_id": next(self._ids), **fields}

    def _response_create(self) -> dict[str, Any]:
        event = self._event("response.create", response={"metadata": self.plan.metadata})
        self._zero_event_id = event["event_id"]
        return event

    def _next_turn(self) -> list[dict[str, Any]]:
        self.turn += 1
        if self.turn >= len(self.plan.turns):
            self.phase = Phase.DONE
            return []
        self._tool_rounds = 0
        self._turn_zero = None
        turn = self.plan.turns[self.turn]
        if turn.pcm is None:  # a text turn: an input_text item, then ask for a response
            self.phase = Phase.RESPONDING
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": turn.text or ""}]}
            return [self._event("conversation.item.create", item=item), self._response_create()]
        self.phase = Phase.UPLOADING
        if self.plan.mode == "manual":
            appends = self._appends(turn.pcm)
            return [*appends, self._event("input_audio_buffer.commit")]
        return self._vad_upload(turn.pcm, turn.voiced_end_ms)

    def _appends(self, pcm: bytes) -> list[dict[str, Any]]:
        # Encoded once per clip; the codec splices each into its frame without a JSON pass over the audio.
        events = [self._event("input_audio_buffer.append", audio=chunk)
                  for chunk in audio.b64_chunks(pcm, self.plan.chunk_ms)]
        if events:
            self.upload_starts.add(events[0]["event_id"])
        return events

    def _vad_upload(self, pcm: bytes, voiced_end_ms: float | None) -> list[dict[str, Any]]:
        """Speech then trailing silence; the append holding the last voiced sample is time zero."""
        if voiced_end_ms is None:
            span = voice_activity.voiced_span(pcm)
            voiced_end_ms = span.end_ms if span else 0.0
        last_voiced_byte = int(voiced_end_ms) * audio.BYTES_PER_SECOND // 1000 - 1
        chunk_bytes = len(audio.chunks(b"\0" * audio.BYTES_PER_SECOND, self.plan.chunk_ms)[0])
        events = self._appends(pcm + audio.silence(self.plan.trailing_silence_ms))
        self._zero_event_id = events[max(0, last_voiced_byte) // chunk_bytes]["event_id"]
        self.phase = Phase.RESPONDING
        return events

    # -- responses ------------------------------------------------------------------------------------------------

    def _on_error(self, error: dict[str, Any]) -> list[dict[str, Any]]:
        message = f"{error.get('code') or error.get('type') or 'error'}: {error.get('message') or ''}".strip()
        kind = classify_error(error)
        if error.get("code") == "conversation_already_has_active_response" and self.phase is Phase.RESPONDING:
            return []  # the server answered on its own (e.g. after a tool output): the race is benign
        hint = (_retry_hint(error.get("message") or "") or self.rate_limit_reset_s) if kind == "rate_limited" else None
        return self.abort(kind, message, hint)

    def _note_rate_limits(self, limits: list[dict[str, Any]]) -> None:
        """Keep the longest reset among exhausted limits: the retry hint if the next error is a rate limit."""
        exhausted = [lim.get("reset_seconds") or 0 for lim in limits if lim.get("remaining") == 0]
        self.rate_limit_reset_s = max(exhausted) if exhausted else None

    def _on_response_event(self, kind: str, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        if kind == "response.created":
            if self._pending_zero is None and self._turn_zero is None:
                self.premature_responses += 1  # VAD answered before the turn's speech was all sent
                return []
            self._current = ResponseObservation(self.turn, self._pending_zero if self._pending_zero is not None
                                                else self._turn_zero,
                                                response_id=(event.get("response") or {}).get("id"))
            self._pending_zero = None
            self._seen_deltas = set()
            self.responses.append(self._current)
        obs = self._current
        response_id = event.get("response_id") or (event.get("response") or {}).get("id")
        if obs is None or (response_id is not None and response_id != obs.response_id):
            return []  # a premature VAD response, or one that is not ours
        self._observe(obs, kind, event, t)
        if kind == "response.done":
            return self._after_response(obs)
        return []

    def _observe(self, obs: ResponseObservation, kind: str, event: dict[str, Any], t: float) -> None:
        ms = None if obs.t_zero is None else round((t - obs.t_zero) * 1000, 3)
        is_delta = kind.endswith(".delta")
        if not is_delta or kind not in self._seen_deltas:
            obs.timeline.append((kind, ms))
            if is_delta:
                self._seen_deltas.add(kind)
        item_id = event.get("item_id") or ""
        if kind == "response.output_audio.delta":
            if obs.ttfa_ms is None:
                obs.ttfa_ms, obs.first_audio_at = ms, t
                obs.server_sent_at = event.get("s2s_sent_at")
            obs.audio_b64.append(event.get("delta") or "")
        elif kind in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            if obs.ttft_ms is None:
                obs.ttft_ms = ms
            obs.deltas.setdefault(item_id, []).append(event.get("delta") or "")
        elif kind == "response.output_audio_transcript.done":
            obs.transcripts[item_id] = event.get("transcript") or ""
        elif kind == "response.output_text.done":
            obs.transcripts[item_id] = event.get("text") or ""
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call" and item.get("status", "completed") == "completed":
                obs.function_calls.append(FunctionCall(item.get("name") or "", item.get("call_id") or "",
                                                       item.get("arguments") or ""))
        elif kind == "response.done":
            response = event.get("response") or {}
            obs.total_ms = ms
            obs.status, obs.status_details = response.get("status"), response.get("status_details")
            obs.usage = response.get("usage")

    def _after_response(self, obs: ResponseObservation) -> list[dict[str, Any]]:
        self._current = None
        if obs.status == "failed":
            error = (obs.status_details or {}).get("error") or {}
            return self.abort(classify_error({"type": "server_error", **error}),
                              f"response failed: {error.get('code') or error.get('message') or 'no details'}")
        if obs.status == "cancelled" and (obs.status_details or {}).get("reason") == "turn_detected":
            return []  # VAD heard more speech and cancelled this answer: wait for the answer to that speech
        handler = self.plan.on_function_call
        if obs.function_calls and handler is not None and self._tool_rounds < self.plan.max_tool_rounds:
            self._tool_rounds += 1
            outputs = [self._event("conversation.item.create", item={
                "type": "function_call_output", "call_id": call.call_id, "output": _tool_output(handler, call)})
                for call in obs.function_calls]
            return [*outputs, self._response_create()]
        return self._next_turn()

    # -- results --------------------------------------------------------------------------------------------------

    def final(self) -> ResponseObservation | None:
        """The last response seen: the answer to the last user turn, after any tool calls."""
        return self.responses[-1] if self.responses else None

    def first_of_last_turn(self) -> ResponseObservation | None:
        """The first response to the last user turn: its latency is the caller's wait after speaking."""
        if not self.responses:
            return None
        return next(r for r in self.responses if r.turn == self.responses[-1].turn)


def _tool_output(handler: ToolHandler, call: FunctionCall) -> str:
    try:
        return handler(call)
    except Exception as exc:  # a tool's failure is the model's problem to handle, as in a real agent
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})


def _retry_hint(message: str) -> float | None:
    """Seconds from 'Please try again in 1.5s' / 'in 250ms' (OpenAI's rate-limit wording), if present."""
    match = re.search(r"try again in\s+([\d.]+)\s*(ms|s)\b", message)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value
