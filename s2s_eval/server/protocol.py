"""GA Realtime protocol state of one server session, free of I/O.

`RealtimeSession.handle(event)` takes one parsed client event and returns the server events to send at once,
plus, for `response.create`, a `ResponseRequest` that the connection turns into a timed response stream. The
shapes follow `../shared/docs/realtime-protocol.md` (§2) and are checked against the `openai` SDK's types in tests.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from s2s_eval import audio

DEFAULT_INSTRUCTIONS = "You are the s2s-eval reference server. Answer briefly."
MIN_COMMIT_MS = 100
MAX_APPEND_BYTES = 15 * 1024 * 1024
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def default_session(model: str) -> dict[str, Any]:
    """The session a new connection starts with, as in the official `session.created` example (VAD on)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "truncation": "auto",
        "expires_at": int(time.time()) + 3600,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                   "silence_duration_ms": 200, "idle_timeout_ms": None,
                                   "create_response": True, "interrupt_response": True},
            },
            "output": {"format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}, "voice": "marin", "speed": 1.0},
        },
    }


class ProtocolError(Exception):
    """A client event the server rejects; becomes an `error` event and the session stays usable."""

    def __init__(self, code: str, message: str, param: str | None = None,
                 error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.error_type = code, message, param, error_type


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge `update` into a copy of `base`; a nested dict merges, anything else (null included) replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class ResponseRequest:
    """What the connection needs to generate one response."""

    response: dict[str, Any]  # the response object as announced in response.created
    params: dict[str, Any]  # the client's response.create overrides
    context: list[dict[str, Any]]  # conversation items the response sees
    client_event_id: str | None


@dataclass
class RealtimeSession:
    """Session configuration, input buffer and conversation of one connection."""

    model: str
    session: dict[str, Any] = field(init=False)
    items: list[dict[str, Any]] = field(default_factory=list)
    item_audio: dict[str, bytes] = field(default_factory=dict)
    input_buffer: bytearray = field(default_factory=bytearray)
    active_response_id: str | None = None
    conversation_id: str = field(default_factory=lambda: new_id("conv"))
    _event_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.session = default_session(self.model)

    # -- event construction -------------------------------------------------------------------------------------

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        """A server event with its `event_id` (required on every server event)."""
        return {"type": type_, "event_id": f"event_{next(self._event_ids):06d}", **fields}

    def error(self, exc: ProtocolError, client_event_id: str | None) -> dict[str, Any]:
        return self.event("error", error={"type": exc.error_type, "code": exc.code, "message": exc.message,
                                          "param": exc.param, "event_id": client_event_id})

    def created(self) -> dict[str, Any]:
        return self.event("session.created", session=copy.deepcopy(self.session))

    # -- client events ------------------------------------------------------------------------------------------

    def handle(self, event: Any) -> tuple[list[dict[str, Any]], ResponseRequest | None]:
        """Apply one client event; return the events to send now and, for response.create, the request."""
        client_event_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise ProtocolError("invalid_event", "The 'type' field is missing.", "type")
            handler = getattr(self, "on_" + event["type"].replace(".", "_"), None)
            if handler is None:
                raise ProtocolError("invalid_event", f"Invalid value: '{event['type']}'. Supported values are: "
                                    "session.update, input_audio_buffer.append, input_audio_buffer.commit, "
                                    "input_audio_buffer.clear, conversation.item.create, response.create.",
                                    "type")
            result = handler(event)
        except ProtocolError as exc:
            return [self.error(exc, client_event_id)], None
        if isinstance(result, ResponseRequest):
            return [], result
        return result, None

    def on_session_update(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        update = event.get("session")
        if not isinstance(update, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session'.", "session")
        if "type" not in update:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session.type'.",
                                "session.type")
        if update["type"] != "realtime":
            raise ProtocolError("invalid_value", f"Invalid value: '{update['type']}'. Supported values are: "
                                "'realtime'.", "session.type")
        modalities = update.get("output_modalities")
        if modalities is not None and modalities not in (["audio"], ["text"]):
            raise ProtocolError("invalid_value", "output_modalities must be ['audio'] or ['text'].",
                                "session.output_modalities")
        for direction in ("input", "output"):
            fmt = ((update.get("audio") or {}).get(direction) or {}).get("format")
            if fmt is not None and (fmt.get("type") != "audio/pcm" or fmt.get("rate", audio.SAMPLE_RATE)
                                    != audio.SAMPLE_RATE):
                raise ProtocolError("invalid_value", "This server supports only audio/pcm at 24000 Hz.",
                                    f"session.audio.{direction}.format")
        update = {k: v for k, v in update.items() if k not in ("id", "object", "expires_at")}
        self.session = deep_merge(self.session, update)
        return [self.event("session.updated", session=copy.deepcopy(self.session))]

    def on_input_audio_buffer_append(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        data = event.get("audio")
        if not isinstance(data, str):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'audio'.", "audio")
        try:
            pcm = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("invalid_value", "Invalid 'audio': not valid base64.", "audio") from None
        if len(pcm) > MAX_APPEND_BYTES:
            raise ProtocolError("invalid_value", "Audio chunk exceeds 15 MiB.", "audio")
        self.input_buffer.extend(pcm)
        return []  # appends are never acknowledged

    def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        buffered_ms = audio.duration_s(bytes(self.input_buffer)) * 1000
        if buffered_ms < MIN_COMMIT_MS:
            raise ProtocolError("input_audio_buffer_commit_empty",
                                "Error committing input audio buffer: buffer too small. Expected at least "
                                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.")
        item = {"id": new_id("item"), "object": "realtime.item", "type": "message", "status": "completed",
                "role": "user", "content": [{"type": "input_audio", "transcript": None}]}
        previous = self.items[-1]["id"] if self.items else None
        self.item_audio[item["id"]] = bytes(self.input_buffer)
        self.input_buffer.clear()
        self.items.append(item)
        return [
            self.event("input_audio_buffer.committed", previous_item_id=previous, item_id=item["id"]),
            self.event("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)),
            self.event("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item)),
        ]

    def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self.input_buffer.clear()
        return [self.event("input_audio_buffer.cleared")]

    def on_conversation_item_create(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item = event.get("item")
        if not isinstance(item, dict) or "type" not in item:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item.type'.",
                                "item.type")
        item = copy.deepcopy(item)
        stored_audio = self._validate_item(item)
        index = self._insert_position(event.get("previous_item_id", None))
        previous = self.items[index - 1]["id"] if index > 0 else None
        item.setdefault("id", new_id("item"))
        item.setdefault("object", "realtime.item")
        item["status"] = "completed"
        if stored_audio is not None:
            self.item_audio[item["id"]] = stored_audio
        self.items.insert(index, item)
        return [self.event("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)),
                self.event("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item))]

    def _validate_item(self, item: dict[str, Any]) -> bytes | None:
        """Check a client item; move input audio out of it (items are echoed without audio bytes)."""
        if item["type"] == "function_call_output":
            if not item.get("call_id") or not isinstance(item.get("output"), str):
                raise ProtocolError("missing_required_parameter", "function_call_output needs call_id and "
                                    "output.", "item.call_id")
            return None
        if item["type"] != "message":
            raise ProtocolError("invalid_value", f"Unsupported item type '{item['type']}'.", "item.type")
        role, content = item.get("role"), item.get("content")
        if role not in ("user", "assistant", "system") or not isinstance(content, list) or not content:
            raise ProtocolError("missing_required_parameter", "A message needs a role and content.",
                                "item.content")
        allowed = {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"},
                   "assistant": {"output_text"}}[role]
        stored: bytes | None = None
        for i, part in enumerate(content):
            if role == "assistant" and part.get("type") in ("output_audio", "audio"):
                raise ProtocolError("missing_required_parameter", "Missing required parameter: "
                                    f"'item.content[{i}].text'.", f"item.content[{i}].text")
            if part.get("type") not in allowed:
                raise ProtocolError("invalid_value", f"Invalid content type '{part.get('type')}' for a {role} "
                                    "message.", f"item.content[{i}].type")
            if part["type"] == "input_audio":
                try:
                    stored = base64.b64decode(part.pop("audio", "") or "", validate=True)
                except (binascii.Error, ValueError):
                    raise ProtocolError("invalid_value", "Invalid 'audio': not valid base64.",
                                        f"item.content[{i}].audio") from None
                part.setdefault("transcript", None)
        return stored

    def _insert_position(self, previous_item_id: str | None) -> int:
        if previous_item_id is None:
            return len(self.items)
        if previous_item_id == "root":
            return 0
        for i, existing in enumerate(self.items):
            if existing["id"] == previous_item_id:
                return i + 1
        raise ProtocolError("invalid_value", f"Previous item with id '{previous_item_id}' not found.",
                            "previous_item_id")

    def on_response_create(self, event: dict[str, Any]) -> ResponseRequest:
        params = event.get("response") or {}
        if self.active_response_id is not None:
            raise ProtocolError("conversation_already_has_active_response",
                                f"Conversation already has an active response in progress: "
                                f"{self.active_response_id}. Wait until the response is finished before "
                                "creating a new one.")
        response_id = new_id("resp")
        self.active_response_id = response_id
        output_audio = deep_merge(self.session["audio"]["output"], (params.get("audio") or {}).get("output") or {})
        response = {
            "object": "realtime.response", "id": response_id, "status": "in_progress", "status_details": None,
            "output": [], "conversation_id": self.conversation_id,
            "output_modalities": params.get("output_modalities") or self.session["output_modalities"],
            "max_output_tokens": params.get("max_output_tokens", self.session["max_output_tokens"]),
            "audio": {"output": {"format": output_audio["format"], "voice": output_audio["voice"]}},
            "usage": None, "metadata": params.get("metadata"),
        }
        return ResponseRequest(response=response, params=params, context=list(self.items),
                               client_event_id=event.get("event_id"))

    def finish_response(self, response_id: str, output_items: list[dict[str, Any]]) -> None:
        """Append a finished response's items to the conversation and free the response slot."""
        self.items.extend(output_items)
        if self.active_response_id == response_id:
            self.active_response_id = None

    def instructions_for(self, request: ResponseRequest) -> str:
        return request.params.get("instructions") or self.session.get("instructions") or ""
