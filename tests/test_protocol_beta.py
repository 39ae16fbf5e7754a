"""GA → beta → GA through the production mapping (`s2s_eval.protocol_beta`), for client and server events.

Client events go out with `client_event_to_beta` (the harness) and come back with `client_event_to_ga` (the
reference server); server events go out with `server_event_to_beta` (the server) and come back with
`server_event_to_ga` (the harness). Every GA event is validated by the SDK's GA types and every beta event by its
beta types, which must also know every field: a GA field left in a beta event is a leak. Where beta has no place for
a fact the loss is asserted, never skipped.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

import pytest
from openai.types import realtime as ga_types
from pydantic import BaseModel, Field, TypeAdapter

from s2s_eval.protocol_beta import (
    client_event_to_beta,
    client_event_to_ga,
    server_event_to_beta,
    server_event_to_ga,
)
from s2s_eval.server.protocol import RealtimeSession

try:
    from openai.types.beta import realtime as beta_types
except ImportError:  # newer SDKs may drop the beta types: the round trips still run, unvalidated on the beta side
    beta_types = None

GA_CLIENT = TypeAdapter(Annotated[ga_types.RealtimeClientEvent, Field(discriminator="type")])
GA_SERVER = TypeAdapter(Annotated[ga_types.RealtimeServerEvent, Field(discriminator="type")])
BETA_CLIENT = beta_types and TypeAdapter(Annotated[beta_types.RealtimeClientEvent, Field(discriminator="type")])
BETA_SERVER = beta_types and TypeAdapter(Annotated[beta_types.RealtimeServerEvent, Field(discriminator="type")])

PCM = {"type": "audio/pcm", "rate": 24000}
ASSISTANT_TEXT = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris."}]}
USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Capital of France?"}]}
TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}

CLIENT_EVENTS = [
    {"type": "session.update", "event_id": "c1", "session": {
        "type": "realtime", "output_modalities": ["audio"], "instructions": "Answer briefly.",
        "audio": {"input": {"format": PCM, "noise_reduction": {"type": "near_field"},
                            "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "city names"},
                            "turn_detection": {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 300,
                                               "silence_duration_ms": 500, "create_response": False,
                                               "interrupt_response": True}},
                  "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.1}},
        "max_output_tokens": 512, "tools": [TOOL], "tool_choice": "auto"}},
    {"type": "session.update", "session": {
        "type": "realtime", "output_modalities": ["text"],
        "audio": {"input": {"format": {"type": "audio/pcma"}, "transcription": None,
                            "turn_detection": {"type": "semantic_vad", "eagerness": "high"}},
                  "output": {"voice": "alloy"}}}},
    {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}},
    {"type": "response.create", "event_id": "c2", "response": {
        "output_modalities": ["text"], "instructions": "Be terse.", "max_output_tokens": 64,
        "audio": {"output": {"voice": "cedar", "format": {"type": "audio/pcma"}}},
        "metadata": {"sample_id": "s1"}, "conversation": "none",
        "input": [ASSISTANT_TEXT, USER_TEXT]}},
    {"type": "response.create", "response": {"metadata": {"sample_id": "s2"}}},
    {"type": "response.create"},
    {"type": "conversation.item.create", "event_id": "c3", "previous_item_id": "item_0", "item": ASSISTANT_TEXT},
    {"type": "conversation.item.create", "item": USER_TEXT},
    {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1",
                                                  "output": "{\"temp_c\": 21}"}},
    {"type": "input_audio_buffer.append", "event_id": "c4", "audio": "AAAAAA=="},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "response.cancel", "response_id": "resp_1"},
    {"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0, "audio_end_ms": 1480},
    {"type": "conversation.item.delete", "item_id": "item_2"},
    {"type": "conversation.item.retrieve", "item_id": "item_2"},
]

SESSION = RealtimeSession(model="gpt-realtime").session  # the reference server's full GA session object
GA_ONLY_SESSION_FIELDS = {"prompt", "truncation", "include"}
AUDIO_OUT = {"audio": {"output": {"format": PCM, "voice": "marin"}}}
MESSAGE = {"id": "item_a1", "object": "realtime.item", "type": "message", "role": "assistant",
           "status": "in_progress", "content": []}
SPOKEN = {**MESSAGE, "status": "completed", "content": [{"type": "output_audio", "transcript": "Paris."}]}
WRITTEN = {**MESSAGE, "status": "completed", "content": [{"type": "output_text", "text": "Paris."}]}
CALL = {"id": "item_f1", "object": "realtime.item", "type": "function_call", "status": "completed",
        "name": "get_weather", "call_id": "call_1", "arguments": "{\"city\": \"Paris\"}"}
RESPONSE = {"object": "realtime.response", "id": "resp_1", "status": "in_progress", "status_details": None,
            "output": [], "conversation_id": "conv_1", "output_modalities": ["audio"], "max_output_tokens": "inf",
            **AUDIO_OUT, "usage": None, "metadata": {"sample_id": "s1"}}
USAGE = {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10,
         "input_token_details": {"text_tokens": 10, "audio_tokens": 10, "image_tokens": 0, "cached_tokens": 0,
                                 "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
         "output_token_details": {"text_tokens": 4, "audio_tokens": 6}}
WHERE = {"response_id": "resp_1", "item_id": "item_a1", "output_index": 0, "content_index": 0}

SERVER_EVENTS = [
    {"type": "input_audio_buffer.speech_started", "event_id": "e1", "audio_start_ms": 120, "item_id": "item_u1"},
    {"type": "input_audio_buffer.committed", "event_id": "e2", "previous_item_id": None, "item_id": "item_u1"},
    {"type": "conversation.item.added", "event_id": "e3", "previous_item_id": None,
     "item": {"id": "item_u1", "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
              "content": [{"type": "input_audio", "transcript": None}]}},
    {"type": "conversation.item.input_audio_transcription.completed", "event_id": "e4", "item_id": "item_u1",
     "content_index": 0, "transcript": "Capital of France?",
     "usage": {"type": "duration", "seconds": 1.2}},
    {"type": "response.created", "event_id": "e5", "response": RESPONSE},
    {"type": "rate_limits.updated", "event_id": "e6", "rate_limits": [
        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012}]},
    {"type": "response.output_item.added", "event_id": "e7", "response_id": "resp_1", "output_index": 0,
     "item": MESSAGE},
    {"type": "conversation.item.added", "event_id": "e8", "previous_item_id": "item_u1", "item": MESSAGE},
    {"type": "response.content_part.added", "event_id": "e9", **WHERE, "part": {"type": "audio", "transcript": ""}},
    {"type": "response.output_audio.delta", "event_id": "e10", **WHERE, "delta": "AAAAAA=="},
    {"type": "response.output_audio_transcript.delta", "event_id": "e11", **WHERE, "delta": "Paris."},
    {"type": "response.output_audio.done", "event_id": "e12", **WHERE},
    {"type": "response.output_audio_transcript.done", "event_id": "e13", **WHERE, "transcript": "Paris."},
    {"type": "response.content_part.done", "event_id": "e14", **WHERE,
     "part": {"type": "audio", "transcript": "Paris."}},
    {"type": "response.output_item.done", "event_id": "e15", "response_id": "resp_1", "output_index": 0,
     "item": SPOKEN},
    {"type": "response.output_text.delta", "event_id": "e16", **WHERE, "delta": "Paris."},
    {"type": "response.output_text.done", "event_id": "e17", **WHERE, "text": "Paris."},
    {"type": "response.function_call_arguments.delta", "event_id": "e18", "response_id": "resp_1",
     "item_id": "item_f1", "output_index": 1, "call_id": "call_1", "delta": "{\"city\""},
    {"type": "response.done", "event_id": "e19", "response": {
        **RESPONSE, "status": "completed", "output": [SPOKEN, WRITTEN, CALL], "usage": USAGE}},
    {"type": "response.done", "event_id": "e20", "response": {
        **RESPONSE, "status": "cancelled", "output_modalities": ["text"],
        "status_details": {"type": "cancelled", "reason": "client_cancelled"}, "output": [WRITTEN]}},
    {"type": "conversation.item.truncated", "event_id": "e21", "item_id": "item_a1", "content_index": 0,
     "audio_end_ms": 300},
    {"type": "conversation.item.deleted", "event_id": "e22", "item_id": "item_a1"},
    {"type": "error", "event_id": "e23", "error": {
        "type": "invalid_request_error", "code": "conversation_already_has_active_response",
        "message": "Conversation already has an active response.", "param": None, "event_id": "c2"}},
]


def unknown_fields(value: Any, path: str = "") -> list[str]:
    """Every field the SDK type did not declare, anywhere in the validated model (pydantic keeps them as extras)."""
    if isinstance(value, BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list | tuple):
        return [f for i, v in enumerate(value) for f in unknown_fields(v, f"{path}[{i}]")]
    return []


# Fields the SDK types do not declare that an event may still carry. Both shapes: a session's read-only `id`,
# `object` and `expires_at` (the brief's session.created example has them). Beta: GA's `idle_timeout_ms` passed through
# in `turn_detection`, and the usage details that let the harness price cached audio (brief §3.4: beta has them "±").
READ_ONLY = {".session.id", ".session.object", ".session.expires_at"}
BETA_EXTRAS = READ_ONLY | {".session.turn_detection.idle_timeout_ms",
                           ".response.usage.input_token_details.image_tokens",
                           ".response.usage.input_token_details.cached_tokens_details"}


def valid(adapter: TypeAdapter[Any] | None, event: dict[str, Any]) -> None:
    """Validate `event` with the SDK's union; every field must be declared there, but for the known extras."""
    if adapter is None:
        return
    model = adapter.validate_python(event)
    tolerated = READ_ONLY if adapter in (GA_CLIENT, GA_SERVER) else BETA_EXTRAS
    assert set(unknown_fields(model)) <= tolerated, event["type"]


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=lambda e: e["type"])
def test_ga_client_events_survive_the_beta_shape(event: dict[str, Any]) -> None:
    original = copy.deepcopy(event)
    valid(GA_CLIENT, event)
    beta = client_event_to_beta(event)
    valid(BETA_CLIENT, beta)
    again = client_event_to_ga(beta)
    valid(GA_CLIENT, again)
    assert again == original
    assert event == original  # neither direction changes what it was given


@pytest.mark.parametrize("event", SERVER_EVENTS, ids=lambda e: f"{e['type']}-{e['event_id']}")
def test_ga_server_events_survive_the_beta_shape(event: dict[str, Any]) -> None:
    original = copy.deepcopy(event)
    valid(GA_SERVER, event)
    beta = server_event_to_beta(event)
    assert beta is not None
    valid(BETA_SERVER, beta)
    again = server_event_to_ga(beta)
    valid(GA_SERVER, again)
    assert again == original
    assert event == original


def test_beta_renames_content_and_response_fields() -> None:
    """The round trips above could pass with an identity mapping: here is what the beta shape actually says."""
    delta = server_event_to_beta(SERVER_EVENTS[9])
    assert delta is not None and delta["type"] == "response.audio.delta"
    added = server_event_to_beta(SERVER_EVENTS[2])
    assert added is not None and added["type"] == "conversation.item.created"
    done = server_event_to_beta(SERVER_EVENTS[18])
    assert done is not None
    response = done["response"]
    assert (response["modalities"], response["voice"], response["output_audio_format"]) == (
        ["text", "audio"], "marin", "pcm16")
    assert "audio" not in response and "output_modalities" not in response
    assert [i.get("content") for i in response["output"][:2]] == [
        [{"type": "audio", "transcript": "Paris."}], [{"type": "text", "text": "Paris."}]]
    update = client_event_to_beta(CLIENT_EVENTS[0])["session"]
    assert (update["modalities"], update["voice"], update["input_audio_format"], update["output_audio_format"],
            update["max_response_output_tokens"]) == (["text", "audio"], "marin", "pcm16", "g711_ulaw", 512)
    created = client_event_to_beta(CLIENT_EVENTS[3])["response"]
    assert created["input"][0]["content"] == [{"type": "text", "text": "Paris."}]


def test_conversation_item_done_has_no_beta_event() -> None:
    done = {"type": "conversation.item.done", "event_id": "e30", "previous_item_id": "item_u1", "item": SPOKEN}
    valid(GA_SERVER, done)
    assert server_event_to_beta(done) is None


def test_the_function_name_on_arguments_done_is_lost_by_design() -> None:
    event = {"type": "response.function_call_arguments.done", "event_id": "e31", "response_id": "resp_1",
             "item_id": "item_f1", "output_index": 1, "call_id": "call_1", "name": "get_weather",
             "arguments": "{\"city\": \"Paris\"}"}
    valid(GA_SERVER, event)
    beta = server_event_to_beta(event)
    assert beta is not None
    valid(BETA_SERVER, beta)
    assert server_event_to_ga(beta) == {k: v for k, v in event.items() if k != "name"}


@pytest.mark.parametrize("kind", ["session.created", "session.updated"])
def test_a_session_loses_only_its_ga_only_fields(kind: str) -> None:
    session = {**copy.deepcopy(SESSION), "tools": [TOOL], "prompt": {"id": "pmpt_1"}}
    session["audio"]["input"]["transcription"] = {"model": "gpt-4o-transcribe", "language": "en"}
    event = {"type": kind, "event_id": "e32", "session": session}
    valid(GA_SERVER, event)
    beta = server_event_to_beta(event)
    assert beta is not None
    valid(BETA_SERVER, beta)
    assert beta["session"]["temperature"] == 0.8  # beta's field with no GA counterpart: reported, then dropped
    again = server_event_to_ga(beta)
    valid(GA_SERVER, again)
    kept = {k: v for k, v in session.items() if k not in GA_ONLY_SESSION_FIELDS}
    assert again == {**event, "session": kept}
    # A forced function (a GA object) is `required` in beta, which has only strings.
    forced = {**event, "session": {**session, "tool_choice": {"type": "function", "name": "get_weather"}}}
    beta = server_event_to_beta(forced)
    assert beta is not None and beta["session"]["tool_choice"] == "required"
    assert server_event_to_ga(beta)["session"]["tool_choice"] == "required"
