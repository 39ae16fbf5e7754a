"""One manual-commit audio turn as a state machine, free of I/O.

The WebSocket layer feeds it every server event with the monotonic time the frame arrived, and sends what it
returns; it tells the machine when each event was handed to the socket (`sent`), because time zero of a turn is
the moment `response.create` was sent. The machine waits for `session.created`, configures the session, waits for
`session.updated`, streams the audio, commits, waits for `input_audio_buffer.committed`, asks for a response and
observes it until `response.done`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from s2s_eval import audio

INPUT_CHUNK_MS = 100
# Timeline entries kept per turn: lifecycle events and the first delta of each kind, not every delta.
_DELTA_SUFFIX = ".delta"


class Phase(Enum):
    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    UPLOADING = "uploading"
    RESPONDING = "responding"
    DONE = "done"


@dataclass(frozen=True)
class TurnError:
    """Why a turn failed: `kind` is the class of failure (for retry decisions and reports)."""

    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


def classify_error(error: dict[str, Any]) -> str:
    """Map a server `error` payload to an error kind."""
    code, type_ = error.get("code") or "", error.get("type") or ""
    if code == "rate_limit_exceeded" or type_ == "rate_limit_error":
        return "rate_limited"
    if type_ in ("authentication_error", "permission_error") or code in ("invalid_api_key", "access_not_enabled"):
        return "auth"
    if type_ == "server_error":
        return "server_error"
    if code == "session_expired":
        return "session_expired"
    return "invalid_request"


@dataclass
class TurnObservation:
    """What the client saw of one response, timed from `response.create` sent (ms)."""

    response_id: str | None = None
    status: str | None = None
    status_details: dict[str, Any] | None = None
    text_parts: list[str] = field(default_factory=list)
    final_transcript: str | None = None
    audio_pcm: bytearray = field(default_factory=bytearray)
    ttfa_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    usage: dict[str, Any] | None = None
    timeline: list[tuple[str, float | None]] = field(default_factory=list)

    @property
    def response_text(self) -> str:
        """The model's transcript of its own answer: the final transcript, else the joined deltas."""
        if self.final_transcript is not None:
            return self.final_transcript
        return "".join(self.text_parts)


class TurnMachine:
    """Drives one turn: session.update → append* → commit → (committed) response.create → … response.done."""

    def __init__(self, session_update: dict[str, Any], input_pcm: bytes, metadata: dict[str, str]) -> None:
        self.session_update = session_update
        self.input_pcm = input_pcm
        self.metadata = metadata
        self.phase = Phase.CONNECTING
        self.observation = TurnObservation()
        self.error: TurnError | None = None
        self.t_zero: float | None = None
        self._ids = (f"evt_s2s_{n}" for n in itertools.count(1))
        self._seen_deltas: set[str] = set()

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def _client_event(self, type_: str, **fields: Any) -> dict[str, Any]:
        return {"type": type_, "event_id": next(self._ids), **fields}

    def abort(self, kind: str, message: str) -> list[dict[str, Any]]:
        """End the turn as failed (also used by the I/O layer for disconnects and timeouts).

        A turn that already ended keeps its outcome: a socket error after `response.done` changes nothing.
        """
        if self.phase is not Phase.DONE:
            self.error = TurnError(kind, message)
            self.phase = Phase.DONE
        return []

    def _ms(self, t: float) -> float | None:
        return None if self.t_zero is None else round((t - self.t_zero) * 1000, 3)

    def sent(self, event: dict[str, Any], t: float) -> None:
        """The I/O layer reports the time an event was handed to the socket; `response.create` sets time zero."""
        if event["type"] == "response.create":
            self.t_zero = t

    def on_event(self, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        """Feed one (normalised) server event received at monotonic time `t`; return the events to send."""
        kind = event.get("type")
        if not isinstance(kind, str):
            return self.abort("protocol", f"server event without a type: {str(event)[:200]}")
        if kind == "error":
            return self._on_error(event.get("error") or {})
        if self.phase is Phase.CONNECTING and kind == "session.created":
            self.phase = Phase.CONFIGURING
            return [self._client_event("session.update", session=self.session_update)]
        if self.phase is Phase.CONFIGURING and kind == "session.updated":
            self.phase = Phase.UPLOADING
            appends = [self._client_event("input_audio_buffer.append", audio=audio.b64(chunk))
                       for chunk in audio.chunks(self.input_pcm, INPUT_CHUNK_MS)]
            return [*appends, self._client_event("input_audio_buffer.commit")]
        if self.phase is Phase.UPLOADING and kind == "input_audio_buffer.committed":
            # Ask for the response only once the server holds all the audio: otherwise time zero would fall
            # while the upload is still in flight, and TTFA would measure upload bandwidth, not the model.
            self.phase = Phase.RESPONDING
            return [self._client_event("response.create", response={"metadata": self.metadata})]
        if self.phase is Phase.RESPONDING:
            self._observe(kind, event, t)
        return []

    def _on_error(self, error: dict[str, Any]) -> list[dict[str, Any]]:
        message = f"{error.get('code') or error.get('type') or 'error'}: {error.get('message') or ''}".strip()
        return self.abort(classify_error(error), message)

    def _observe(self, kind: str, event: dict[str, Any], t: float) -> None:
        obs = self.observation
        ms = self._ms(t)
        is_delta = kind.endswith(_DELTA_SUFFIX)
        if not is_delta or kind not in self._seen_deltas:
            obs.timeline.append((kind, ms))
            if is_delta:
                self._seen_deltas.add(kind)
        if kind == "response.created":
            obs.response_id = (event.get("response") or {}).get("id")
        elif kind == "response.output_audio.delta":
            if obs.ttfa_ms is None:
                obs.ttfa_ms = ms
            obs.audio_pcm.extend(audio.b64decode(event.get("delta") or ""))
        elif kind in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            if obs.ttft_ms is None:
                obs.ttft_ms = ms
            obs.text_parts.append(event.get("delta") or "")
        elif kind == "response.output_audio_transcript.done":
            obs.final_transcript = event.get("transcript")
        elif kind == "response.output_text.done":
            obs.final_transcript = event.get("text")
        elif kind == "response.done":
            self._on_done(event.get("response") or {}, ms)

    def _on_done(self, response: dict[str, Any], ms: float | None) -> None:
        obs = self.observation
        obs.total_ms = ms
        obs.status = response.get("status")
        obs.status_details = response.get("status_details")
        obs.usage = response.get("usage")
        self.phase = Phase.DONE
        if obs.status == "failed":
            error = (obs.status_details or {}).get("error") or {}
            self.error = TurnError(classify_error({"type": "server_error", **error}),
                                   f"response failed: {error.get('code') or error.get('message') or 'no details'}")
