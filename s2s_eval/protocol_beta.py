"""The beta ↔ GA mapping of the Realtime protocol (brief §3): every table and conversion, for client and server.

Both sides think in GA and translate at the socket. The harness, talking to a beta-shaped server, sends
`client_event_to_beta(event)` and reads `server_event_to_ga(frame)`; the reference server in beta mode reads
`client_event_to_ga(frame)` and sends `server_event_to_beta(event)`. Each pair is one mapping read in both
directions, so a GA event survives GA → beta → GA except where beta has no place for a fact:

- `conversation.item.done` has no beta event (beta announces an item once, with `conversation.item.created`);
- `name` on `response.function_call_arguments.done` is a post-launch GA field (beta clients read the item);
- a session's GA-only fields (`prompt`, `truncation`, `include`, ...) and `tool_choice` objects (beta's is a string);
- beta's `temperature` has no GA field and is dropped on the way to GA.
"""

from __future__ import annotations

import copy
from typing import Any

from s2s_eval.audio import SAMPLE_RATE

# Server event names (§3.2); client event names are the same in both shapes.
BETA_TO_GA = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
GA_TO_BETA = {ga: beta for beta, ga in BETA_TO_GA.items()}
GA_ONLY_EVENTS = frozenset({"conversation.item.done"})

# Flat beta fields and where they live in GA (§3.3, §3.4).
SESSION_FIELDS = {
    "voice": ("audio", "output", "voice"),
    "speed": ("audio", "output", "speed"),
    "input_audio_format": ("audio", "input", "format"),
    "output_audio_format": ("audio", "output", "format"),
    "input_audio_transcription": ("audio", "input", "transcription"),
    "input_audio_noise_reduction": ("audio", "input", "noise_reduction"),
    "turn_detection": ("audio", "input", "turn_detection"),
    "max_response_output_tokens": ("max_output_tokens",),
}
RESPONSE_CREATE_FIELDS = {  # `response.create` overrides
    "voice": ("audio", "output", "voice"),
    "output_audio_format": ("audio", "output", "format"),
    "max_response_output_tokens": ("max_output_tokens",),
}
RESPONSE_FIELDS = {  # the response object of response.created/done: its `max_output_tokens` keeps its name
    "voice": ("audio", "output", "voice"),
    "output_audio_format": ("audio", "output", "format"),
}
# The session object a beta server sends: these fields and no others (GA-only fields have no beta meaning).
BETA_SESSION_KEYS = ("id", "object", "model", "modalities", "instructions", "voice", "speed", "input_audio_format",
                     "output_audio_format", "input_audio_transcription", "input_audio_noise_reduction",
                     "turn_detection", "tools", "tool_choice", "temperature", "max_response_output_tokens", "tracing",
                     "expires_at")
FORMATS = {"pcm16": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "g711_ulaw": {"type": "audio/pcmu"},
           "g711_alaw": {"type": "audio/pcma"}}
# Assistant item content types (§3.4); `content_part.*` parts are `audio`/`text` in both shapes.
CONTENT_BETA_TO_GA = {"audio": "output_audio", "text": "output_text"}
CONTENT_GA_TO_BETA = {ga: beta for beta, ga in CONTENT_BETA_TO_GA.items()}
BETA_ONLY = ("temperature",)
DEFAULT_TEMPERATURE = 0.8  # what a beta server reports for the temperature GA no longer has


def format_to_beta(fmt: dict[str, Any] | None) -> str:
    return next((name for name, ga in FORMATS.items() if fmt and ga["type"] == fmt.get("type")), "pcm16")


def format_to_ga(name: Any) -> dict[str, Any]:
    return dict(FORMATS.get(name, {"type": name}))


def modalities_to_beta(output_modalities: list[str] | None) -> list[str]:
    return ["text", "audio"] if output_modalities == ["audio"] else ["text"]


def modalities_to_ga(modalities: list[str] | None) -> list[str]:
    return ["audio"] if "audio" in (modalities or []) else ["text"]


def tool_choice_to_beta(choice: Any) -> Any:
    """Beta's `tool_choice` is a string: GA's forced function (an object) becomes `required`."""
    return choice if isinstance(choice, str) else "required"


def _get(data: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return False, None
        data = data[key]
    return True, data


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


def flat_to_ga(flat: dict[str, Any], fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Beta's flat fields moved to their GA places, which win over same-named fields passed through as they are
    (unknown fields pass through so GA validation can name them); beta-only fields are dropped."""
    rest = {k: v for k, v in flat.items() if k not in fields and k != "modalities" and k not in BETA_ONLY}
    ga: dict[str, Any] = {}
    if "modalities" in flat:
        ga["output_modalities"] = modalities_to_ga(flat["modalities"])
    for key, path in fields.items():
        if key not in flat:
            continue
        value = flat[key]
        if key.endswith("_format"):
            value = format_to_ga(value)
        elif key == "turn_detection" and value is not None:
            value = {"type": "server_vad", **value}  # beta's type is optional; GA's is required
        _put(ga, path, value)
    return {**rest, **ga}


def ga_to_flat(ga: dict[str, Any], fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """GA fields flattened to beta's; GA-only fields (`type`, `audio`, ...) are left out."""
    nested = {"type", "output_modalities"} | {path[0] for path in fields.values()}
    flat = {k: v for k, v in ga.items() if k not in nested}
    if "output_modalities" in ga:
        flat["modalities"] = modalities_to_beta(ga["output_modalities"])
    for key, path in fields.items():
        present, value = _get(ga, path)
        if present:
            flat[key] = format_to_beta(value) if key.endswith("_format") else value
    return flat


def items_content(item: Any, mapping: dict[str, str]) -> Any:
    """Rename an item's content types in place (assistant `audio`/`text` ↔ `output_audio`/`output_text`)."""
    if isinstance(item, dict):
        for part in item.get("content") or []:
            if isinstance(part, dict) and part.get("type") in mapping:
                part["type"] = mapping[part["type"]]
    return item


def _items(items: Any, mapping: dict[str, str]) -> Any:
    """A copy of a list of items with their content types renamed; anything else as it is."""
    if not isinstance(items, list):
        return items
    return [items_content(copy.deepcopy(i), mapping) for i in items]


# -- shapes -----------------------------------------------------------------------------------------------------

def session_to_ga(session: dict[str, Any]) -> dict[str, Any]:
    """A beta session (a `session.update` payload or a server's session object) in the GA shape."""
    return {**flat_to_ga(session, SESSION_FIELDS), "type": "realtime"}


def session_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """A GA session object (session.created/updated) as a beta server reports it: `BETA_SESSION_KEYS` only."""
    flat = ga_to_flat(session, SESSION_FIELDS)
    flat.update(object="realtime.session", temperature=DEFAULT_TEMPERATURE,
                tool_choice=tool_choice_to_beta(session.get("tool_choice")))
    return {key: flat.get(key) for key in BETA_SESSION_KEYS}


def response_params_to_beta(params: dict[str, Any]) -> dict[str, Any]:
    """GA `response.create` overrides in the beta shape, `input` items included."""
    beta = ga_to_flat(params, RESPONSE_CREATE_FIELDS)
    if "input" in beta:
        beta["input"] = _items(beta["input"], CONTENT_GA_TO_BETA)
    return beta


def response_params_to_ga(params: dict[str, Any]) -> dict[str, Any]:
    """Beta `response.create` overrides in the GA shape, `input` items included."""
    ga = flat_to_ga(params, RESPONSE_CREATE_FIELDS)
    if "input" in ga:
        ga["input"] = _items(ga["input"], CONTENT_BETA_TO_GA)
    return ga


def response_to_beta(response: dict[str, Any]) -> dict[str, Any]:
    """A GA response object (response.created/done) as a beta server reports it, voice and format always set."""
    beta = ga_to_flat(response, RESPONSE_FIELDS)
    beta.setdefault("modalities", modalities_to_beta(None))
    beta.setdefault("voice", None)
    beta.setdefault("output_audio_format", format_to_beta(None))
    beta["temperature"] = DEFAULT_TEMPERATURE
    if "output" in beta:
        beta["output"] = _items(beta["output"], CONTENT_GA_TO_BETA)
    return beta


def response_to_ga(response: dict[str, Any]) -> dict[str, Any]:
    """A beta response object in the GA shape (a GA one comes back equal)."""
    ga = flat_to_ga(response, RESPONSE_FIELDS)
    if "output" in ga:
        ga["output"] = _items(ga["output"], CONTENT_BETA_TO_GA)
    return ga


# -- events -----------------------------------------------------------------------------------------------------

def client_event_to_beta(event: dict[str, Any]) -> dict[str, Any]:
    """A GA client event in the beta shape (session fields, response overrides, assistant item content)."""
    kind = event.get("type")
    if kind == "session.update":
        return {**event, "session": ga_to_flat(event.get("session") or {}, SESSION_FIELDS)}
    if kind == "response.create" and isinstance(event.get("response"), dict):
        return {**event, "response": response_params_to_beta(event["response"])}
    if kind == "conversation.item.create":
        return {**event, "item": items_content(copy.deepcopy(event.get("item")), CONTENT_GA_TO_BETA)}
    return event


def client_event_to_ga(event: dict[str, Any]) -> dict[str, Any]:
    """A beta client event as the GA event it stands for."""
    kind = event.get("type")
    if kind == "session.update" and isinstance(event.get("session"), dict):
        return {**event, "session": session_to_ga(event["session"])}
    if kind == "response.create" and isinstance(event.get("response"), dict):
        return {**event, "response": response_params_to_ga(event["response"])}
    if kind == "conversation.item.create" and isinstance(event.get("item"), dict):
        return {**event, "item": items_content(copy.deepcopy(event["item"]), CONTENT_BETA_TO_GA)}
    return event


def server_event_to_beta(event: dict[str, Any]) -> dict[str, Any] | None:
    """A GA server event in the beta shape, or None where beta has no such event."""
    kind = event.get("type")
    if kind in GA_ONLY_EVENTS:
        return None
    event = {**event, "type": GA_TO_BETA.get(kind, kind)}
    if isinstance(event.get("session"), dict) and "audio" in event["session"]:
        event["session"] = session_to_beta(copy.deepcopy(event["session"]))
    if isinstance(event.get("response"), dict):
        event["response"] = response_to_beta(copy.deepcopy(event["response"]))
    if isinstance(event.get("item"), dict):
        event["item"] = items_content(copy.deepcopy(event["item"]), CONTENT_GA_TO_BETA)
    if kind == "response.function_call_arguments.done":
        event.pop("name", None)  # a post-launch GA addition; beta clients take the name from the item
    return event


def server_event_to_ga(event: dict[str, Any]) -> dict[str, Any]:
    """A server event in GA names and shapes; a GA event comes back equal."""
    name = event.get("type")
    if name not in BETA_TO_GA and "item" not in event and "response" not in event and "session" not in event:
        return event  # the common case, untouched and uncopied: audio deltas are the bulk of the traffic
    event = {**event, "type": BETA_TO_GA.get(name, name)}
    if isinstance(event.get("item"), dict):
        event["item"] = items_content(copy.deepcopy(event["item"]), CONTENT_BETA_TO_GA)
    if isinstance(event.get("response"), dict):
        event["response"] = response_to_ga(event["response"])
    if isinstance(event.get("session"), dict) and "type" not in event["session"]:  # GA sessions always carry one
        event["session"] = session_to_ga(event["session"])
    return event
