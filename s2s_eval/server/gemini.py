"""Gemini Live protocol state of one reference-server session, free of I/O.

`GeminiSession.handle(message)` takes one parsed client message and returns an `Outcome`: the messages to send at
once and the model turns to start; a request Google's server would end the session for raises `GeminiClose`.
Model turns are streamed by the connection (`gemini_stream.py`), which reports back through `finish_turn`.

The conversation is kept in the Realtime item shape the engines already read (a user message with `input_audio`
or `input_text`, `function_call_output` items), so `echo` and `scripted` answer Gemini sessions unchanged. Input
audio (16 kHz) is resampled to the engines' 24 kHz as it arrives, with a streaming resampler (no clicks between
chunks). A session is one sample: its id comes from the connection (`X-S2S-Sample-Id`), not from the messages.

Turn ends: with automatic activity detection disabled, `activityEnd` ends the user's turn; with it enabled (the
default), the energy VAD of `vad.py` does, on the session's audio clock, and `audioStreamEnd` ends a turn in
progress. A user turn that starts while the model speaks interrupts it (unless `activityHandling` is
`NO_INTERRUPTION`), as does any `clientContent`.

The turn-taking settings of `dynamics.py` apply as on the Realtime protocol: `vad_min_speech_ms` to the VAD,
`yield_delay_ms` to an interruption the VAD heard (not to `activityStart` or `clientContent`, which are explicit),
`output_rate` to the model turn's audio parts (`gemini_stream.py`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from s2s_eval import audio
from s2s_eval.server import gemini_wire as wire
from s2s_eval.server.dynamics import Dynamics
from s2s_eval.server.gemini_wire import GeminiClose, invalid
from s2s_eval.server.protocol import ResponseState, new_id
from s2s_eval.server.vad import EnergyVad, SpeechStarted, VadSettings

# [I] Google does not document its VAD defaults; these are the reference server's (`vad.py` maps them to energy).
DEFAULT_SILENCE_MS, DEFAULT_PREFIX_MS = 500, 300
START_THRESHOLDS = {"START_SENSITIVITY_HIGH": 0.3, "START_SENSITIVITY_LOW": 0.6}
VAD_SLACK_MS = 100
URLSAFE = str.maketrans("-_", "+/")
ACTIVITY_CONTROL_REFUSED = "Explicit activity control is not supported when automatic activity detection is enabled."


@dataclass
class Outcome:
    messages: list[dict[str, Any]] = field(default_factory=list)
    start: list[ResponseState] = field(default_factory=list)
    # Model turns a VAD-heard user turn interrupts, to cut `yield_delay_ms` after the message arrived.
    yields: list[ResponseState] = field(default_factory=list)


@dataclass
class SetupFacts:
    """What `setup` asked for that the server acts on."""

    model: str = ""
    text_only: bool = False  # responseModalities ["TEXT"]
    instructions: str = ""
    output_transcription: bool = False
    vad: bool = True
    interrupts: bool = True
    vad_settings: VadSettings = field(default_factory=VadSettings)


def _dig(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...`, or None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _text_of(content: Any) -> str:
    parts = _dig(content, "parts")
    if not isinstance(parts, list):
        return ""
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _milliseconds(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 60_000:
        raise invalid()
    return int(value)


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid value at '{where}': expected an object.")
    return value


def read_setup(setup: Any, api_version: str) -> SetupFacts:
    """Check a `setup` the way Google's server does (the confirmed refusals) and keep what the server uses."""
    setup = _object(setup, "setup")
    for name in setup:
        if name not in wire.SETUP_FIELDS and name != "realtimeInputConfig":
            raise wire.unknown_field(name, "setup")
    generation = _object(setup.get("generationConfig"), "setup.generation_config")
    for name in generation:  # the confirmed trap: a setup-level field nested one level too deep
        if name in wire.SETUP_FIELDS:
            raise wire.unknown_field(name, "setup.generation_config")
    model = setup.get("model")
    if not isinstance(model, str) or not model.startswith("models/") or model == "models/":
        raise GeminiClose(1008, f"{model} is not found for API version {api_version}, or is not supported for "
                                "bidiGenerateContent")
    modalities = generation.get("responseModalities") or ["AUDIO"]
    if modalities not in (["AUDIO"], ["TEXT"]):
        raise invalid()
    voice = _dig(generation, "speechConfig", "voiceConfig", "prebuiltVoiceConfig", "voiceName")
    if voice is not None and voice not in wire.VOICES:
        raise invalid(wire.NO_VOICE)
    facts = SetupFacts(model=model, text_only=modalities == ["TEXT"],
                       instructions=_text_of(setup.get("systemInstruction")),
                       output_transcription=setup.get("outputAudioTranscription") is not None)
    config = _object(setup.get("realtimeInputConfig"), "setup.realtime_input_config")
    detection = _object(config.get("automaticActivityDetection"), "setup.realtime_input_config."
                                                                  "automatic_activity_detection")
    facts.vad = not detection.get("disabled", False)
    facts.interrupts = config.get("activityHandling", "START_OF_ACTIVITY_INTERRUPTS") != "NO_INTERRUPTION"
    facts.vad_settings = VadSettings(
        threshold=START_THRESHOLDS.get(str(detection.get("startOfSpeechSensitivity")), 0.5),
        prefix_padding_ms=_milliseconds(detection.get("prefixPaddingMs"), DEFAULT_PREFIX_MS),
        silence_duration_ms=_milliseconds(detection.get("silenceDurationMs"), DEFAULT_SILENCE_MS))
    return facts


@dataclass
class GeminiSession:
    """Setup, input audio, activity, conversation and the model turn of one Gemini Live connection."""

    sample_id: str | None = None
    api_version: str = "v1beta"
    dynamics: Dynamics = field(default_factory=Dynamics)
    facts: SetupFacts | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    item_audio: dict[str, bytes] = field(default_factory=dict)  # 24 kHz PCM16, as the engines expect
    buffer: bytearray = field(default_factory=bytearray)  # the user's audio since the last turn, 24 kHz
    buffer_start_ms: int = 0  # where `buffer` starts on the session audio clock (VAD offsets count from 0)
    vad: EnergyVad = field(default_factory=EnergyVad)
    speech_start_ms: int | None = None  # VAD hears the user from here
    in_activity: bool = False  # manual turns: between activityStart and activityEnd
    active: ResponseState | None = None
    pending_calls: dict[str, str] = field(default_factory=dict)  # call id -> name, awaiting a toolResponse
    _resamplers: dict[int, soxr.ResampleStream] = field(default_factory=dict)
    _turns: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- dispatch -----------------------------------------------------------------------------------------------

    def handle(self, message: Any) -> Outcome:
        """Apply one parsed client message (any key spelling). Raises `GeminiClose` to end the session."""
        if not isinstance(message, dict):
            raise invalid()
        message = wire.camel_keys(message)
        for name in message:
            if name not in wire.CLIENT_FIELDS:
                raise wire.unknown_field(name, None)
        if len(message) != 1:
            raise invalid()
        (name, body), = message.items()
        if self.facts is None and name != "setup":
            raise invalid("The first message of a session must be 'setup'.")
        if name == "setup" and self.facts is not None:
            raise invalid("'setup' may only be sent once, as the first message.")
        return getattr(self, "on_" + name)(body)

    def on_setup(self, body: Any) -> Outcome:
        self.facts = read_setup(body, self.api_version)
        self.vad.settings = dataclasses.replace(self.facts.vad_settings,
                                                min_speech_ms=self.dynamics.vad_min_speech_ms)
        return Outcome(messages=[wire.setup_complete()])

    # -- realtime input -----------------------------------------------------------------------------------------

    def on_realtimeInput(self, body: Any) -> Outcome:  # noqa: N802 (named after the wire field)
        body = _object(body, "realtime_input")
        outcome = Outcome()
        if "activityStart" in body:
            self._activity_start(outcome)
        chunks = [body["audio"]] if "audio" in body else []
        media = body.get("mediaChunks") or []
        chunks += media if isinstance(media, list) else [media]
        for chunk in chunks:
            self._audio(self._pcm(chunk), outcome)
        if isinstance(body.get("text"), str) and body["text"]:
            self._user_item({"type": "input_text", "text": body["text"]})
            self._start(outcome)
        if "activityEnd" in body:
            self._activity_end(outcome)
        if body.get("audioStreamEnd") and self.facts and self.facts.vad and self.speech_start_ms is not None:
            self._end_of_speech(self.vad.written_ms, outcome)
            self.vad.reset()
        return outcome

    def _pcm(self, blob: Any) -> bytes:
        if not isinstance(blob, dict) or not isinstance(blob.get("data"), str):
            raise invalid()
        rate = wire.input_rate(blob.get("mimeType"))
        data = blob["data"]
        try:
            # Google's SDK sends the URL-safe alphabet (pydantic's bytes-as-base64), other clients the standard one.
            pcm = base64.b64decode(data.translate(URLSAFE), validate=True)
        except (binascii.Error, ValueError, TypeError, AttributeError):
            raise invalid() from None
        pcm = pcm[: len(pcm) - len(pcm) % 2]
        if rate == audio.SAMPLE_RATE:
            return pcm
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = self._resamplers[rate] = soxr.ResampleStream(rate, audio.SAMPLE_RATE, 1, dtype="int16")
        return resampler.resample_chunk(np.frombuffer(pcm, dtype="<i2")).astype("<i2").tobytes()

    def _flush(self) -> bytes:
        """What the resamplers still hold (their filter delay, ~10 ms): the end of the user's audio."""
        tails = [r.resample_chunk(np.zeros(0, dtype="<i2"), last=True) for r in self._resamplers.values()]
        self._resamplers.clear()  # a finished stream takes no more input: the next chunk starts a new one
        return b"".join(t.astype("<i2").tobytes() for t in tails)

    def _audio(self, pcm: bytes, outcome: Outcome) -> None:
        assert self.facts is not None
        if not self.facts.vad:
            if self.in_activity:
                self.buffer.extend(pcm)
            else:  # [I] audio outside activityStart..activityEnd belongs to no turn
                self.buffer_start_ms = self.vad.written_ms
            self.vad.skip(pcm)
            return
        self.buffer.extend(pcm)
        for boundary in self.vad.feed(pcm):
            if isinstance(boundary, SpeechStarted):
                self.speech_start_ms = boundary.audio_start_ms
                self._interrupt(outcome, heard=True)
            else:
                self._end_of_speech(boundary.audio_end_ms, outcome)
        if self.speech_start_ms is None:  # between turns keep only what a next turn's prefix padding may reach
            keep = (self.facts.vad_settings.prefix_padding_ms + VAD_SLACK_MS) * audio.BYTES_PER_SECOND // 1000
            drop = max(0, len(self.buffer) - keep)
            drop -= drop % 2
            del self.buffer[:drop]
            self.buffer_start_ms = self.vad.written_ms - len(self.buffer) * 1000 // audio.BYTES_PER_SECOND

    def _activity_start(self, outcome: Outcome) -> None:
        assert self.facts is not None
        if self.facts.vad:
            raise invalid(ACTIVITY_CONTROL_REFUSED)
        self.in_activity = True
        self.buffer.clear()
        self.buffer_start_ms = self.vad.written_ms
        self._interrupt(outcome)

    def _activity_end(self, outcome: Outcome) -> None:
        assert self.facts is not None
        if self.facts.vad:
            raise invalid(ACTIVITY_CONTROL_REFUSED)
        if not self.in_activity:
            return  # [I] an activityEnd without an activityStart ends nothing
        self.in_activity = False
        self.buffer.extend(self._flush())
        self._commit(bytes(self.buffer))
        self.buffer.clear()
        self._start(outcome)

    def _end_of_speech(self, end_ms: int, outcome: Outcome) -> None:
        start_ms, self.speech_start_ms = self.speech_start_ms or 0, None
        begin = max(0, (start_ms - self.buffer_start_ms) * audio.BYTES_PER_SECOND // 1000)
        end = min(len(self.buffer), (end_ms - self.buffer_start_ms) * audio.BYTES_PER_SECOND // 1000)
        begin, end = begin - begin % 2, max(0, end - end % 2)
        self._commit(bytes(self.buffer[begin:end]))
        del self.buffer[:end]
        self.buffer_start_ms += end * 1000 // audio.BYTES_PER_SECOND
        if self.active is None:
            self._start(outcome)

    def _commit(self, pcm: bytes) -> None:
        item = self._user_item({"type": "input_audio", "transcript": None})
        self.item_audio[item["id"]] = pcm

    def _user_item(self, part: dict[str, Any]) -> dict[str, Any]:
        item = {"id": new_id("item"), "type": "message", "role": "user", "content": [part]}
        self.items.append(item)
        return item

    # -- client content and tool responses ----------------------------------------------------------------------

    def on_clientContent(self, body: Any) -> Outcome:  # noqa: N802
        body = _object(body, "client_content")
        outcome = Outcome()
        turns = body.get("turns") or []
        if not isinstance(turns, list):
            raise invalid()
        self._interrupt(outcome)  # client content interrupts a generation in progress
        for content in turns:
            text = _text_of(content)
            role = content.get("role", "user") if isinstance(content, dict) else "user"
            if role == "model":
                self.items.append({"id": new_id("item"), "type": "message", "role": "assistant",
                                   "content": [{"type": "output_text", "text": text}]})
            else:
                self._user_item({"type": "input_text", "text": text})
        if body.get("turnComplete"):
            self._start(outcome)
        return outcome

    def on_toolResponse(self, body: Any) -> Outcome:  # noqa: N802
        responses = _object(body, "tool_response").get("functionResponses")
        if not isinstance(responses, list) or not responses:
            raise invalid()
        for response in responses:
            if not isinstance(response, dict) or not isinstance(response.get("id"), str) or \
                    response["id"] not in self.pending_calls:
                raise invalid()  # [I] an answer to no pending call
            self.pending_calls.pop(response["id"])
            self.items.append({"id": new_id("item"), "type": "function_call_output", "call_id": response["id"],
                               "output": json.dumps(response.get("response") or {}, ensure_ascii=False)})
        outcome = Outcome()
        if not self.pending_calls and self.active is None:
            self._start(outcome)  # the model goes on once every call has its answer
        return outcome

    # -- model turns ----------------------------------------------------------------------------------------------

    def _start(self, outcome: Outcome) -> None:
        if self.active is not None and self.active.cancel_reason is None:
            return  # [I] the model is still answering (activityHandling NO_INTERRUPTION): no second answer
        # An interrupted turn may still be ending (its `interrupted` not yet sent): the new one does not wait for it.
        response = {"id": f"turn_{next(self._turns)}", "max_output_tokens": "inf",
                    "output_modalities": ["text"] if self.facts and self.facts.text_only else ["audio"]}
        self.active = ResponseState(response, {"metadata": {"sample_id": self.sample_id}}, list(self.items), True,
                                    None)
        outcome.start.append(self.active)

    def _interrupt(self, outcome: Outcome, heard: bool = False) -> None:
        """A user turn started: cut the model turn short (it then sends `interrupted`) and cancel pending calls.
        A turn VAD `heard` is cut `yield_delay_ms` later (`dynamics.py`), by the connection."""
        if self.facts is not None and not self.facts.interrupts:
            return
        if self.active is not None and self.active.cancel_reason is None:
            if heard and self.dynamics.yield_delay_ms > 0:
                outcome.yields.append(self.active)
            else:
                self.active.cancel("interrupted")
        if self.pending_calls:
            outcome.messages.append(wire.tool_call_cancellation(list(self.pending_calls)))
            self.pending_calls.clear()

    def add_calls(self, calls: list[dict[str, Any]]) -> None:
        """The stream sent a `toolCall`: its calls await answers."""
        self.pending_calls.update({c["id"]: c["name"] for c in calls})
        for call in calls:
            self.items.append({"id": new_id("item"), "type": "function_call", "call_id": call["id"],
                               "name": call["name"], "arguments": json.dumps(call["args"], ensure_ascii=False)})

    def add_model_text(self, text: str) -> None:
        if text:
            self.items.append({"id": new_id("item"), "type": "message", "role": "assistant",
                               "content": [{"type": "output_text", "text": text}]})

    def finish_turn(self, state: ResponseState) -> None:
        if self.active is state:
            self.active = None

    def instructions_for(self, state: ResponseState) -> str:
        return self.facts.instructions if self.facts else ""
