"""The reference server's Grok mode (`--protocol grok`): xAI Grok Voice's documented differences from GA.

The session logic stays GA; this module translates at the edge, with the same facts the harness's xAI provider
reads (`s2s_eval.providers._xai`, whose docstring cites each one):

- the first event is `conversation.created`, followed by a `ping`; there is no `session.created`;
- `session.update` takes `voice` (Grok's names, kept inside as GA's `{"id": ...}` custom voice) and
  `turn_detection` at the top of `session` and no `type`; `session.updated` answers in the same flat shape, without
  GA-only fields;
- `response.done` carries usage as `{total_tokens, input_tokens, output_tokens}` only, in the response and again at
  the top level of the event;
- only the server events Grok documents are sent (no `rate_limits.updated`, `conversation.item.done`, ...).
"""

from __future__ import annotations

import time
from typing import Any

from s2s_eval.providers._xai import FLAT_FIELDS, XAIOptions, grok_session
from s2s_eval.server.protocol import RealtimeSession

__all__ = ["SERVER_EVENTS", "client_event_to_ga", "first_events", "server_event_to_grok"]

SERVER_EVENTS = frozenset({
    "error", "ping", "session.updated", "conversation.created", "conversation.item.added",
    "conversation.item.input_audio_transcription.completed", "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "input_audio_buffer.cleared",
    "response.created", "response.output_item.added", "response.output_item.done", "response.content_part.added",
    "response.content_part.done", "response.output_audio_transcript.delta", "response.output_audio_transcript.done",
    "response.output_audio.delta", "response.output_audio.done", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.done",
})
# What `session.updated` shows: the fields Grok documents (pipecat's SessionProperties), flat.
SESSION_KEYS = ("instructions", "voice", "turn_detection", "audio", "tools", "reasoning")
AUDIO_KEYS = {"input": ("format", "transcription"), "output": ("format", "speed")}


def first_events(session: RealtimeSession) -> list[dict[str, Any]]:
    """What a Grok server sends on connect: `conversation.created`, then a keep-alive `ping`."""
    return [session.event("conversation.created",
                          conversation={"id": session.conversation_id, "object": "realtime.conversation"}),
            session.event("ping", timestamp=int(time.time() * 1000))]


def client_event_to_ga(event: dict[str, Any]) -> dict[str, Any]:
    """A Grok client event as GA: a flat `session.update` is nested, and gets GA's required `type`."""
    if event.get("type") != "session.update" or not isinstance(event.get("session"), dict):
        return event
    session = dict(event["session"])
    audio = {side: dict(part) for side, part in (session.pop("audio", None) or {}).items() if isinstance(part, dict)}
    for flat, (_, side, name) in FLAT_FIELDS.items():
        if flat in session:
            audio.setdefault(side, {})[name] = session.pop(flat)
    voice = (audio.get("output") or {}).get("voice")
    if isinstance(voice, str):  # Grok's voices (Ara, Eve, ... or custom ids) are GA's custom-voice form inside
        audio["output"]["voice"] = {"id": voice}
    return {**event, "session": {"type": "realtime", **session, **({"audio": audio} if audio else {})}}


def _usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    return {k: usage.get(k) or 0 for k in ("total_tokens", "input_tokens", "output_tokens")}


def server_event_to_grok(event: dict[str, Any]) -> dict[str, Any] | None:
    """A GA server event as Grok sends it; None for events Grok does not send."""
    kind = event.get("type")
    if kind not in SERVER_EVENTS:
        return None
    if kind == "session.updated":
        flat = grok_session(event.get("session") or {}, XAIOptions())
        if isinstance(flat.get("voice"), dict):
            flat["voice"] = flat["voice"].get("id")
        if isinstance(flat.get("audio"), dict):
            flat["audio"] = {side: {k: part[k] for k in AUDIO_KEYS.get(side, ()) if k in part}
                             for side, part in flat["audio"].items() if isinstance(part, dict)}
        return {**event, "session": {k: flat[k] for k in SESSION_KEYS if k in flat}}
    if kind == "response.done":
        response = event.get("response") or {}
        usage = _usage(response.get("usage"))
        return {**event, "response": {**response, "usage": usage}, "usage": usage}
    return event
