"""The beta Realtime shape, translated at the connection's edge (protocol brief §3).

The server thinks in GA. For a beta client, `from_beta` turns its events into GA ones (session fields, response
overrides, item content types) and `to_beta` turns every server event into the beta shape: beta event names,
`conversation.item.created` in place of GA's added/done pair, the flat beta session, `modalities` and `voice` on
responses, and `audio`/`text` item content. Event names come from the one mapping table in `runners/events.py`.
"""

from __future__ import annotations

import copy
from typing import Any

from s2s_eval.runners.events import BETA_TO_GA
from s2s_eval.server.protocol import RealtimeSession

GA_TO_BETA = {ga: beta for beta, ga in BETA_TO_GA.items()}
DROPPED = {"conversation.item.done"}  # beta announces an item once, with conversation.item.created
FORMATS = {"pcm16": {"type": "audio/pcm", "rate": 24000}, "g711_ulaw": {"type": "audio/pcmu"},
           "g711_alaw": {"type": "audio/pcma"}}
CONTENT_TO_BETA = {"output_audio": "audio", "output_text": "text"}
CONTENT_TO_GA = {beta: ga for ga, beta in CONTENT_TO_BETA.items()}
DEFAULT_TEMPERATURE = 0.8


def _format_name(fmt: dict[str, Any] | None) -> str:
    return next((name for name, ga in FORMATS.items() if fmt and ga["type"] == fmt.get("type")), "pcm16")


def _modalities(output_modalities: list[str] | None) -> list[str]:
    return ["text", "audio"] if output_modalities == ["audio"] else ["text"]


def _items_content(item: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    for part in item.get("content") or []:
        if isinstance(part, dict) and part.get("type") in mapping:
            part["type"] = mapping[part["type"]]
    return item


# -- server → beta client ---------------------------------------------------------------------------------------

def session_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
    return {
        "id": session["id"], "object": "realtime.session", "model": session["model"],
        "modalities": _modalities(session["output_modalities"]), "instructions": session["instructions"],
        "voice": audio_out["voice"], "speed": audio_out.get("speed"),
        "input_audio_format": _format_name(audio_in["format"]),
        "output_audio_format": _format_name(audio_out["format"]),
        "input_audio_transcription": audio_in["transcription"],
        "input_audio_noise_reduction": audio_in["noise_reduction"],
        "turn_detection": audio_in["turn_detection"], "tools": session["tools"],
        "tool_choice": session["tool_choice"] if isinstance(session["tool_choice"], str) else "required",
        "temperature": DEFAULT_TEMPERATURE, "max_response_output_tokens": session["max_output_tokens"],
        "tracing": session["tracing"], "expires_at": session["expires_at"],
    }


def response_to_beta(response: dict[str, Any]) -> dict[str, Any]:
    output = response.pop("audio", None) or {}
    response["modalities"] = _modalities(response.pop("output_modalities", None))
    response["voice"] = (output.get("output") or {}).get("voice")
    response["output_audio_format"] = _format_name((output.get("output") or {}).get("format"))
    response["temperature"] = DEFAULT_TEMPERATURE
    for item in response.get("output") or []:
        _items_content(item, CONTENT_TO_BETA)
    return response


def to_beta(event: dict[str, Any]) -> dict[str, Any] | None:
    """A GA server event in the beta shape, or None where beta has no such event."""
    kind = event.get("type")
    if kind in DROPPED:
        return None
    event = copy.deepcopy(event)
    event["type"] = GA_TO_BETA.get(kind, kind)
    if isinstance(event.get("session"), dict) and "audio" in event["session"]:
        event["session"] = session_to_beta(event["session"])
    if isinstance(event.get("response"), dict):
        event["response"] = response_to_beta(event["response"])
    if isinstance(event.get("item"), dict):
        _items_content(event["item"], CONTENT_TO_BETA)
    if kind == "response.function_call_arguments.done":
        event.pop("name", None)  # a post-launch GA addition; beta clients take the name from the item
    return event


def after_created(session: RealtimeSession) -> list[dict[str, Any]]:
    """Beta servers follow `session.created` with `conversation.created`."""
    return [session.event("conversation.created",
                          conversation={"id": session.conversation_id, "object": "realtime.conversation"})]


# -- beta client → server ---------------------------------------------------------------------------------------

def session_from_beta(update: dict[str, Any]) -> dict[str, Any]:
    """A beta `session` payload as a GA one; unknown fields pass through so GA validation can name them."""
    update = dict(update)
    ga: dict[str, Any] = {"type": "realtime"}
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    if "modalities" in update:
        ga["output_modalities"] = ["audio"] if "audio" in (update.pop("modalities") or []) else ["text"]
    for beta_key, target, ga_key in (("voice", audio_out, "voice"), ("speed", audio_out, "speed"),
                                     ("input_audio_transcription", audio_in, "transcription"),
                                     ("input_audio_noise_reduction", audio_in, "noise_reduction")):
        if beta_key in update:
            target[ga_key] = update.pop(beta_key)
    for beta_key, target in (("input_audio_format", audio_in), ("output_audio_format", audio_out)):
        if beta_key in update:
            name = update.pop(beta_key)
            target["format"] = FORMATS.get(name, {"type": name})
    if "turn_detection" in update:
        detection = update.pop("turn_detection")
        audio_in["turn_detection"] = None if detection is None else {"type": "server_vad", **detection}
    if "max_response_output_tokens" in update:
        ga["max_output_tokens"] = update.pop("max_response_output_tokens")
    update.pop("temperature", None)  # beta only: no GA equivalent
    if audio_in or audio_out:
        ga["audio"] = {k: v for k, v in (("input", audio_in), ("output", audio_out)) if v}
    return {**update, **ga}


def response_params_from_beta(params: dict[str, Any]) -> dict[str, Any]:
    params = dict(params)
    if "modalities" in params:
        params["output_modalities"] = ["audio"] if "audio" in (params.pop("modalities") or []) else ["text"]
    output: dict[str, Any] = {}
    if "voice" in params:
        output["voice"] = params.pop("voice")
    if "output_audio_format" in params:
        name = params.pop("output_audio_format")
        output["format"] = FORMATS.get(name, {"type": name})
    if output:
        params["audio"] = {"output": output}
    if "max_response_output_tokens" in params:
        params["max_output_tokens"] = params.pop("max_response_output_tokens")
    params.pop("temperature", None)
    if isinstance(params.get("input"), list):
        params["input"] = [_items_content(copy.deepcopy(i), CONTENT_TO_GA) if isinstance(i, dict) else i
                           for i in params["input"]]
    return params


def from_beta(event: dict[str, Any]) -> dict[str, Any]:
    """A beta client event as the GA event the server understands."""
    kind = event.get("type")
    if kind == "session.update" and isinstance(event.get("session"), dict):
        return {**event, "session": session_from_beta(event["session"])}
    if kind == "response.create" and isinstance(event.get("response"), dict):
        return {**event, "response": response_params_from_beta(event["response"])}
    if kind == "conversation.item.create" and isinstance(event.get("item"), dict):
        return {**event, "item": _items_content(copy.deepcopy(event["item"]), CONTENT_TO_GA)}
    return event
