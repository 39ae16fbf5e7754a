"""GA Realtime protocol state of one server session, free of I/O.

`RealtimeSession.handle(event)` takes one parsed client event and returns an `Outcome`: the server events to send
at once and the responses to start. Responses are streamed by the connection (`streaming.py`), which reports back
through `add_output_item` / `finish_response`; a cancel request only marks the response, and its stream ends it
with the right events. A VAD barge-in under a `yield_delay_ms` (`dynamics.py`) is not cancelled here but returned
in `Outcome.yields`, for the connection to end with `yielded` once the delay has passed on its clock (a turn
that ends meanwhile is answered then). The shapes follow
`../shared/docs/realtime-protocol.md` (§2) and are checked against the `openai` SDK's types in tests.
"""

from __future__ import annotations

import binascii
import copy
import dataclasses
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from s2s_eval import audio, jsonwire
from s2s_eval.server import session_config
from s2s_eval.server.dynamics import Dynamics
from s2s_eval.server.protocol_errors import ProtocolError
from s2s_eval.server.vad import EnergyVad, SpeechStarted, VadSettings

DEFAULT_INSTRUCTIONS = "You are the s2s-eval reference server. Answer briefly."
MIN_COMMIT_MS = 100
MAX_APPEND_BYTES = 15 * 1024 * 1024
SUPPORTED_EVENTS = ("session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
                    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
                    "conversation.item.truncate", "conversation.item.delete", "response.create", "response.cancel")

__all__ = ["Outcome", "ProtocolError", "RealtimeSession", "ResponseState", "new_id"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def default_session(model: str) -> dict[str, Any]:
    """The session a new connection starts with, as in the official `session.created` example (VAD on)."""
    return {
        "type": "realtime", "object": "realtime.session", "id": new_id("sess"), "model": model,
        "output_modalities": ["audio"], "instructions": DEFAULT_INSTRUCTIONS, "tools": [], "tool_choice": "auto",
        "max_output_tokens": "inf", "tracing": None, "prompt": None, "truncation": "auto",
        "expires_at": int(time.time()) + 3600, "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}, "transcription": None,
                "noise_reduction": None,
                "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                   "silence_duration_ms": 200, "idle_timeout_ms": None,
                                   "create_response": True, "interrupt_response": True},
            },
            "output": {"format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}, "voice": "marin", "speed": 1.0},
        },
    }


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge `update` into a copy of `base`; a nested dict merges, anything else (null included) replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _b64(data: Any, param: str) -> bytes:
    if not isinstance(data, str):
        raise ProtocolError("missing_required_parameter", f"Missing required parameter: '{param}'.", param)
    try:
        return jsonwire.b64decode_strict(data)
    except (binascii.Error, ValueError):
        raise ProtocolError("invalid_value", f"Invalid '{param}': not valid base64.", param) from None


def _cut(pcm: bytes, end_ms: int) -> bytes:
    keep = end_ms * audio.BYTES_PER_SECOND // 1000
    return pcm[: keep - keep % 2]


@dataclass
class ResponseState:
    """One response in flight. `cancel_reason` set = the stream must end it as cancelled."""

    response: dict[str, Any]
    params: dict[str, Any]
    context: list[dict[str, Any]]
    in_conversation: bool
    client_event_id: str | None
    cancel_reason: str | None = None
    # Set by the stream: a cancel wakes it, so a response waiting for its first-audio deadline ends at once.
    on_cancel: Callable[[], None] | None = None

    @property
    def id(self) -> str:
        return str(self.response["id"])

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        if self.on_cancel is not None:
            self.on_cancel()

    @property
    def sample_id(self) -> str | None:
        return (self.params.get("metadata") or {}).get("sample_id")


@dataclass
class Outcome:
    events: list[dict[str, Any]] = field(default_factory=list)
    start: list[ResponseState] = field(default_factory=list)
    # Responses a VAD barge-in interrupts, to cancel (`turn_detected`) `yield_delay_ms` after the event arrived.
    yields: list[ResponseState] = field(default_factory=list)


@dataclass
class RealtimeSession:
    """Session configuration, input buffer, VAD, conversation and responses of one connection."""

    model: str
    max_buffer_bytes: int = 10 * 60 * audio.BYTES_PER_SECOND
    dynamics: Dynamics = field(default_factory=Dynamics)
    session: dict[str, Any] = field(init=False)
    items: list[dict[str, Any]] = field(default_factory=list)
    item_audio: dict[str, bytes] = field(default_factory=dict)
    # Assistant audio items still being streamed: bytes of audio sent so far (what a truncate may cut).
    streaming_audio: dict[str, int] = field(default_factory=dict)
    truncated_ms: dict[str, int] = field(default_factory=dict)  # truncations of items still being streamed
    input_buffer: bytearray = field(default_factory=bytearray)
    written_bytes: int = 0  # all audio ever appended: the clock VAD offsets count on
    vad: EnergyVad = field(default_factory=EnergyVad)
    speech: tuple[str, int] | None = None  # (item id, audio_start_ms) of the user turn VAD is hearing
    responses: dict[str, ResponseState] = field(default_factory=dict)
    call_ids: set[str] = field(default_factory=set)
    voice_locked: bool = False
    yielding: set[str] = field(default_factory=set)  # ids of responses a barge-in will cancel after the yield delay
    answer_after_yield: bool = False  # a VAD turn ended while the response it interrupts had not yielded yet
    conversation_id: str = field(default_factory=lambda: new_id("conv"))
    _event_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.session = default_session(self.model)

    # -- events -------------------------------------------------------------------------------------------------

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        """A server event with its `event_id` (required on every server event)."""
        return {"type": type_, "event_id": f"event_{next(self._event_ids):06d}", **fields}

    def error(self, exc: ProtocolError, client_event_id: str | None) -> dict[str, Any]:
        return self.event("error", error={"type": exc.error_type, "code": exc.code, "message": exc.message,
                                          "param": exc.param, "event_id": client_event_id})

    def created(self) -> dict[str, Any]:
        return self.event("session.created", session=copy.deepcopy(self.session))

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return self.session["audio"]["input"]["turn_detection"]

    @property
    def default_response(self) -> ResponseState | None:
        """The response writing to the default conversation (a cancelled one no longer holds the slot)."""
        return next((r for r in self.responses.values() if r.in_conversation and r.cancel_reason is None), None)

    def find_item(self, item_id: Any, param: str = "item_id") -> dict[str, Any]:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise ProtocolError("invalid_value", f"Item with id '{item_id}' not found.", param)

    # -- dispatch -----------------------------------------------------------------------------------------------

    def handle(self, event: Any) -> Outcome:
        """Apply one client event; a refused event becomes one `error` event and changes nothing."""
        client_event_id = event.get("event_id") if isinstance(event, dict) else None
        if not isinstance(client_event_id, str):
            client_event_id = None
        try:
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise ProtocolError("invalid_event", "The 'type' field is missing.", "type")
            if event["type"] not in SUPPORTED_EVENTS:
                raise ProtocolError("invalid_event", f"Invalid value: '{event['type'][:100]}'. Supported values "
                                    f"are: {', '.join(SUPPORTED_EVENTS)}.", "type")
            return getattr(self, "on_" + event["type"].replace(".", "_"))(event)
        except ProtocolError as exc:
            return Outcome(events=[self.error(exc, client_event_id)])

    # -- session ------------------------------------------------------------------------------------------------

    def on_session_update(self, event: dict[str, Any]) -> Outcome:
        update = event.get("session")
        session_config.check_session_update(update, self.voice_locked, self.session["audio"]["output"]["voice"])
        update = {k: v for k, v in update.items() if k not in ("id", "object", "expires_at")}
        self.session = deep_merge(self.session, update)
        if update.get("audio", {}).get("input", {}).get("turn_detection", "unchanged") != "unchanged":
            self.vad.reset()
            self.speech = None
        return Outcome(events=[self.event("session.updated", session=copy.deepcopy(self.session))])

    # -- input audio buffer -------------------------------------------------------------------------------------

    def on_input_audio_buffer_append(self, event: dict[str, Any]) -> Outcome:
        pcm = _b64(event.get("audio"), "audio")
        if len(pcm) > MAX_APPEND_BYTES:
            raise ProtocolError("invalid_value", "Audio chunk exceeds the 15 MiB limit of one append.", "audio")
        if len(self.input_buffer) + len(pcm) > self.max_buffer_bytes:
            raise ProtocolError("input_audio_buffer_too_large", "The input audio buffer is full "
                                f"({self.max_buffer_bytes // audio.BYTES_PER_SECOND} s; a limit of this reference "
                                "server): commit or clear it.", "audio")
        self.input_buffer.extend(pcm)
        self.written_bytes += len(pcm)
        if self.turn_detection is None:
            # Not analysed, but still on the session clock: VAD offsets count all audio written in the session,
            # including audio appended while turn detection was off (else they fall behind once it is back on).
            self.vad.skip(pcm)
            return Outcome()  # appends are never acknowledged
        return self._on_vad(pcm)

    def _on_vad(self, pcm: bytes) -> Outcome:
        outcome = Outcome()
        self.vad.settings = dataclasses.replace(VadSettings.from_session(self.turn_detection or {}),
                                                min_speech_ms=self.dynamics.vad_min_speech_ms)
        for boundary in self.vad.feed(pcm):
            if isinstance(boundary, SpeechStarted):
                item_id = new_id("item")
                self.speech = (item_id, boundary.audio_start_ms)
                outcome.events.append(self.event("input_audio_buffer.speech_started",
                                                 audio_start_ms=boundary.audio_start_ms, item_id=item_id))
                active = self.default_response
                if active is not None and (self.turn_detection or {}).get("interrupt_response", True):
                    if self.dynamics.yield_delay_ms > 0:
                        self.yielding.add(active.id)
                        outcome.yields.append(active)
                    else:
                        active.cancel("turn_detected")
            elif self.speech is not None:
                item_id, start_ms = self.speech
                self.speech = None
                outcome.events.append(self.event("input_audio_buffer.speech_stopped",
                                                 audio_end_ms=boundary.audio_end_ms, item_id=item_id))
                outcome.events += self._commit(item_id, start_ms, boundary.audio_end_ms)
                if (self.turn_detection or {}).get("create_response", True):
                    active = self.default_response
                    if active is None:
                        outcome.start.append(self._start_response({}, list(self.items), True, None))
                    elif active.id in self.yielding:
                        self.answer_after_yield = True  # answered by `yielded`, once the slot is free
        return outcome

    def _commit(self, item_id: str, start_ms: int | None, end_ms: int | None) -> list[dict[str, Any]]:
        """Turn buffered audio (all of it, or the [start_ms, end_ms) span VAD found) into a user item."""
        buffer_start = self.written_bytes - len(self.input_buffer)
        begin = 0 if start_ms is None else max(0, start_ms * audio.BYTES_PER_SECOND // 1000 - buffer_start)
        end = len(self.input_buffer) if end_ms is None else min(
            len(self.input_buffer), end_ms * audio.BYTES_PER_SECOND // 1000 - buffer_start)
        begin, end = begin - begin % 2, end - end % 2
        pcm = bytes(self.input_buffer[begin:end])
        del self.input_buffer[:end]
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
                "role": "user", "content": [{"type": "input_audio", "transcript": None}]}
        previous = self.items[-1]["id"] if self.items else None
        self.item_audio[item_id] = pcm
        self.items.append(item)
        events = [self.event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id),
                  self.event("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)),
                  self.event("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item))]
        if self.session["audio"]["input"].get("transcription"):
            # No speech recogniser here: say so in the documented event rather than invent a transcript.
            events.append(self.event("conversation.item.input_audio_transcription.failed", item_id=item_id,
                                     content_index=0, error={
                                         "type": "server_error", "code": "transcription_unavailable",
                                         "message": "The s2s-eval reference server has no speech recogniser.",
                                         "param": None}))
        return events

    def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> Outcome:
        buffered_ms = audio.duration_s(bytes(self.input_buffer)) * 1000
        if buffered_ms < MIN_COMMIT_MS:
            raise ProtocolError("input_audio_buffer_commit_empty",
                                "Error committing input audio buffer: buffer too small. Expected at least "
                                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.")
        item_id = self.speech[0] if self.speech else new_id("item")
        self.speech = None
        self.vad.reset()
        return Outcome(events=self._commit(item_id, None, None))

    def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> Outcome:
        self.input_buffer.clear()
        self.speech = None
        self.vad.reset()
        return Outcome(events=[self.event("input_audio_buffer.cleared")])

    # -- conversation items -------------------------------------------------------------------------------------

    def on_conversation_item_create(self, event: dict[str, Any]) -> Outcome:
        item = copy.deepcopy(event.get("item"))
        stored_audio = self._check_item(item, "item")
        index = self._insert_position(event.get("previous_item_id"))
        previous = self.items[index - 1]["id"] if index > 0 else None
        if not isinstance(item.get("id"), str) or not item["id"]:
            item["id"] = new_id("item")
        elif any(existing["id"] == item["id"] for existing in self.items):
            raise ProtocolError("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
        item["object"] = "realtime.item"
        item["status"] = "completed"
        if stored_audio is not None:
            self.item_audio[item["id"]] = stored_audio
        if item["type"] == "function_call":
            self.call_ids.add(item["call_id"])
        self.items.insert(index, item)
        return Outcome(events=[
            self.event("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)),
            self.event("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item))])

    def _check_item(self, item: Any, param: str) -> bytes | None:
        """Validate a client item; move input audio out of it (items are echoed without audio bytes)."""
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ProtocolError("missing_required_parameter", f"Missing required parameter: '{param}.type'.",
                                f"{param}.type")
        kind = item["type"]
        if kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
                raise ProtocolError("missing_required_parameter", "A function_call_output needs a call_id and a "
                                    "string output.", f"{param}.call_id")
            if item["call_id"] not in self.call_ids:
                raise ProtocolError("invalid_value", f"No function call with call_id '{item['call_id']}' found in "
                                    "this session.", f"{param}.call_id")
            return None
        if kind == "function_call":
            if not all(isinstance(item.get(k), str) for k in ("name", "call_id", "arguments")):
                raise ProtocolError("missing_required_parameter", "A function_call needs name, call_id and "
                                    "arguments.", f"{param}.call_id")
            return None
        if kind != "message":
            raise ProtocolError("invalid_value", f"Unsupported item type '{kind[:60]}'.", f"{param}.type")
        return self._check_message(item, param)

    def _check_message(self, item: dict[str, Any], param: str) -> bytes | None:
        role, content = item.get("role"), item.get("content")
        if role not in ("user", "assistant", "system") or not isinstance(content, list) or not content:
            raise ProtocolError("missing_required_parameter", "A message needs a role (user, assistant or system) "
                                "and a non-empty content list.", f"{param}.content")
        allowed = {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"},
                   "assistant": {"output_text"}}[role]
        stored: bytes | None = None
        for i, part in enumerate(content):
            where = f"{param}.content[{i}]"
            if not isinstance(part, dict):
                raise ProtocolError("invalid_value", f"Invalid '{where}': expected an object.", where)
            if role == "assistant" and part.get("type") in ("output_audio", "audio"):
                raise ProtocolError("missing_required_parameter", f"Missing required parameter: '{where}.text'.",
                                    f"{where}.text")
            # A non-string type (e.g. an object) is refused here, not looked up in a set (TypeError, found by fuzzing).
            if not isinstance(part.get("type"), str) or part["type"] not in allowed:
                raise ProtocolError("invalid_value", f"Invalid content type '{str(part.get('type'))[:60]}' for a "
                                    f"{role} message.", f"{where}.type")
            if part["type"] in ("input_text", "output_text") and not isinstance(part.get("text"), str):
                raise ProtocolError("missing_required_parameter", f"Missing required parameter: '{where}.text'.",
                                    f"{where}.text")
            if part["type"] == "input_audio":
                stored = _b64(part.pop("audio", None), f"{where}.audio")
                part.setdefault("transcript", None)
        return stored

    def _insert_position(self, previous_item_id: Any) -> int:
        if previous_item_id is None:
            return len(self.items)
        if previous_item_id == "root":
            return 0
        for i, existing in enumerate(self.items):
            if existing["id"] == previous_item_id:
                return i + 1
        raise ProtocolError("invalid_value", f"Previous item with id '{str(previous_item_id)[:80]}' not found.",
                            "previous_item_id")

    def on_conversation_item_retrieve(self, event: dict[str, Any]) -> Outcome:
        item = copy.deepcopy(self.find_item(event.get("item_id")))
        pcm = self.item_audio.get(item["id"])
        for part in item.get("content") or []:
            if part.get("type") in ("input_audio", "output_audio") and pcm is not None:
                part["audio"] = audio.b64(pcm)
        return Outcome(events=[self.event("conversation.item.retrieved", item=item)])

    def on_conversation_item_truncate(self, event: dict[str, Any]) -> Outcome:
        """Cut an assistant message's audio to what the client played and delete its transcript (SDK docstring:
        "Truncating audio will delete the server-side text transcript"). An item still being streamed (a
        response a `yield_delay_ms` has not cancelled yet) can be cut within the audio sent so far; the cut is
        applied to what it holds when it ends."""
        item = self.find_item(event.get("item_id"))
        streaming = item["id"] in self.streaming_audio
        if item.get("type") != "message" or item.get("role") != "assistant" or not (
                streaming or any(p.get("type") == "output_audio" for p in item["content"])):
            raise ProtocolError("invalid_value", "Only model output audio messages can be truncated.", "item_id")
        if event.get("content_index") != 0:
            raise ProtocolError("invalid_value", "content_index must be 0.", "content_index")
        end_ms = event.get("audio_end_ms")
        sent = self.streaming_audio[item["id"]] if streaming else len(self.item_audio.get(item["id"], b""))
        duration_ms = sent * 1000 // audio.BYTES_PER_SECOND
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or not 0 <= end_ms <= duration_ms:
            raise ProtocolError("invalid_value", f"audio_end_ms must be between 0 and the audio's length "
                                f"({duration_ms} ms).", "audio_end_ms")
        if streaming:
            self.truncated_ms[item["id"]] = end_ms
        else:
            self.item_audio[item["id"]] = _cut(self.item_audio.get(item["id"], b""), end_ms)
            for part in item["content"]:
                if part.get("type") == "output_audio":
                    part["transcript"] = ""
        return Outcome(events=[self.event("conversation.item.truncated", item_id=item["id"], content_index=0,
                                          audio_end_ms=end_ms)])

    def on_conversation_item_delete(self, event: dict[str, Any]) -> Outcome:
        item = self.find_item(event.get("item_id"))
        self.items.remove(item)
        self.item_audio.pop(item["id"], None)
        return Outcome(events=[self.event("conversation.item.deleted", item_id=item["id"])])

    # -- responses ----------------------------------------------------------------------------------------------

    def on_response_create(self, event: dict[str, Any]) -> Outcome:
        # Only an absent or null `response` means "no overrides"; `[]`, `0` or `""` are refused below (fuzzing
        # found them starting a response).
        params = event.get("response")
        params = {} if params is None else params
        session_config.check_response_params(params)
        in_conversation = params.get("conversation", "auto") != "none"
        active = self.default_response
        if in_conversation and active is not None:
            raise ProtocolError("conversation_already_has_active_response",
                                f"Conversation already has an active response in progress: {active.id}. Wait until "
                                "the response is finished before creating a new one.")
        context = self._context(params["input"]) if "input" in params else list(self.items)
        state = self._start_response(params, context, in_conversation, event.get("event_id"))
        return Outcome(start=[state])

    def _context(self, items: Any) -> list[dict[str, Any]]:
        """The custom context of a response: new items and references to existing ones."""
        if not isinstance(items, list):
            raise ProtocolError("invalid_value", "'response.input' must be an array of items.", "response.input")
        context = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "item_reference":
                context.append(self.find_item(item.get("id"), f"response.input[{i}].id"))
                continue
            item = copy.deepcopy(item)
            stored = self._check_item(item, f"response.input[{i}]")
            if not isinstance(item.get("id"), str) or not item["id"]:
                item["id"] = new_id("item")  # as conversation.item.create does; a list id crashed (fuzzing)
            elif any(existing["id"] == item["id"] for existing in self.items):
                # Refused as conversation.item.create refuses it: its audio would replace the conversation item's.
                raise ProtocolError("invalid_value", f"Item with id '{item['id'][:80]}' already exists.",
                                    f"response.input[{i}].id")
            if stored is not None:
                self.item_audio[item["id"]] = stored
            context.append(item)
        return context

    def _start_response(self, params: dict[str, Any], context: list[dict[str, Any]], in_conversation: bool,
                        client_event_id: str | None) -> ResponseState:
        output_audio = deep_merge(self.session["audio"]["output"], (params.get("audio") or {}).get("output") or {})
        response = {
            "object": "realtime.response", "id": new_id("resp"), "status": "in_progress", "status_details": None,
            "output": [], "conversation_id": self.conversation_id if in_conversation else None,
            "output_modalities": params.get("output_modalities") or self.session["output_modalities"],
            "max_output_tokens": params.get("max_output_tokens", self.session["max_output_tokens"]),
            "audio": {"output": {"format": output_audio["format"], "voice": output_audio["voice"]}},
            "usage": None, "metadata": params.get("metadata"),
        }
        state = ResponseState(response, params, context, in_conversation, client_event_id)
        self.responses[state.id] = state
        return state

    def yielded(self, state: ResponseState) -> Outcome:
        """The yield delay of a barge-in on `state` has passed: cancel it (`turn_detected`) unless it has ended or
        was cancelled meanwhile, then answer a VAD turn that ended while it held the conversation."""
        self.yielding.discard(state.id)
        if state.id in self.responses and state.cancel_reason is None:
            state.cancel("turn_detected")
        outcome = Outcome()
        if self.answer_after_yield and self.default_response is None:
            self.answer_after_yield = False
            outcome.start.append(self._start_response({}, list(self.items), True, None))
        return outcome

    def on_response_cancel(self, event: dict[str, Any]) -> Outcome:
        response_id = event.get("response_id")
        if response_id is not None and not isinstance(response_id, str):  # unhashable ids crashed (fuzzing)
            raise ProtocolError("invalid_value", "Invalid type for 'response_id': expected a string.", "response_id")
        target = self.responses.get(response_id) if response_id else self.default_response
        if target is None or target.cancel_reason is not None:
            raise ProtocolError("response_cancel_not_active", "Cancellation failed: no active response found.")
        target.cancel("client_cancelled")
        return Outcome()

    def add_output_item(self, state: ResponseState, item: dict[str, Any]) -> str | None:
        """A response started an output item: in the default conversation it joins the conversation now.

        Returns the id of the item before it (for `previous_item_id`).
        """
        if item["type"] == "function_call":
            self.call_ids.add(item["call_id"])  # outputs may refer to it later, even out of band
        if not state.in_conversation:
            return None
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        return previous

    def start_output_audio(self, item_id: str) -> None:
        """An assistant audio message starts streaming: it can be truncated from now on."""
        self.streaming_audio[item_id] = 0

    def output_audio_sent(self, item_id: str, size: int) -> None:
        if item_id in self.streaming_audio:
            self.streaming_audio[item_id] += size

    def keep_output_audio(self, item_id: str, pcm: bytes) -> bool:
        """Store a finished assistant message's audio; returns whether the client truncated it while it streamed
        (then only the played part is kept, and its transcript must be dropped)."""
        self.streaming_audio.pop(item_id, None)
        end_ms = self.truncated_ms.pop(item_id, None)
        self.item_audio[item_id] = pcm if end_ms is None else _cut(pcm, end_ms)
        if pcm:
            self.voice_locked = True
        return end_ms is not None

    def finish_response(self, state: ResponseState) -> None:
        self.responses.pop(state.id, None)

    def tools_for(self, state: ResponseState) -> tuple[list[dict[str, Any]], Any]:
        return state.params.get("tools", self.session["tools"]), state.params.get("tool_choice",
                                                                                  self.session["tool_choice"])

    def instructions_for(self, state: ResponseState) -> str:
        return state.params.get("instructions") or self.session.get("instructions") or ""
