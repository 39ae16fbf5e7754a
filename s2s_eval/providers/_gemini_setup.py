"""The GA session and conversation items as Gemini Live shapes: `setup`, `clientContent` turns, tool responses.

Pure functions of plain dicts (facts and their marks in the shared `gemini-live-protocol.md`; [I] = inferred):

- `instructions` → `setup.systemInstruction` (a `Content`), a sibling of `generationConfig` as are both
  transcription configs (nesting them in `generationConfig` is refused with 1007).
- `output_modalities` → `generationConfig.responseModalities` (`AUDIO` or `TEXT`); the output voice →
  `speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName` (a Realtime voice name such as `marin` is not a Gemini
  voice: Google closes 1007 "No matching speaker voice found", so a profile names one of Google's).
- Realtime function tools (`{type: function, name, description, parameters}`) → one `tools` entry of
  `functionDeclarations`, each schema sent unchanged as `parametersJsonSchema` (JSON Schema, which the Realtime
  tools already are; `parameters` would need Google's OpenAPI subset) [I: accepted by Live as by generateContent].
- `turn_detection: null` → `realtimeInputConfig.automaticActivityDetection.disabled: true` (the client ends turns
  with `activityStart`/`activityEnd`); `server_vad` → detection on, with its `prefix_padding_ms` and
  `silence_duration_ms`, and `interrupt_response: false` → `activityHandling: NO_INTERRUPTION`.
- Conversation items: user text/audio → `Content(role="user")` parts (`text`, or `inlineData` PCM16 at 16 kHz
  [I: audio in `clientContent` as history]); assistant text → `role="model"`; system text → a user part prefixed
  "System:" (a Live session's system instruction is fixed at `setup`) [I].
- `function_call_output` → `functionResponses[] = {id, name, response}`: `response` is `{"output": value}` (the
  SDK documents "output" and "error" keys), or the tool's own `{"error": ...}` object.
"""

from __future__ import annotations

import json
from typing import Any

INPUT_RATE = 16_000
INPUT_MIME = f"audio/pcm;rate={INPUT_RATE}"


def model_name(model: str) -> str:
    return model if model.startswith("models/") else f"models/{model}"


def _activity_detection(detection: dict[str, Any] | None) -> dict[str, Any]:
    if detection is None:
        return {"automaticActivityDetection": {"disabled": True}}
    automatic: dict[str, Any] = {"disabled": False}
    if detection.get("prefix_padding_ms") is not None:
        automatic["prefixPaddingMs"] = int(detection["prefix_padding_ms"])
    if detection.get("silence_duration_ms") is not None:
        automatic["silenceDurationMs"] = int(detection["silence_duration_ms"])
    config: dict[str, Any] = {"automaticActivityDetection": automatic}
    if detection.get("interrupt_response") is False:
        config["activityHandling"] = "NO_INTERRUPTION"
    return config


def function_declarations(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            continue
        declaration = {"name": tool["name"], "description": tool.get("description") or ""}
        if tool.get("parameters"):
            declaration["parametersJsonSchema"] = tool["parameters"]
        declarations.append(declaration)
    return declarations


def setup_message(session: dict[str, Any], model: str, generation_fields: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """`{"setup": ...}` for a GA `session.update` body."""
    audio_config = session.get("audio") or {}
    output = audio_config.get("output") or {}
    speaks = "audio" in (session.get("output_modalities") or ["audio"])
    generation: dict[str, Any] = {"responseModalities": ["AUDIO" if speaks else "TEXT"]}
    if speaks and output.get("voice"):
        generation["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": output["voice"]}}}
    generation.update(generation_fields or {})
    setup: dict[str, Any] = {"model": model_name(model), "generationConfig": generation}
    if session.get("instructions"):
        setup["systemInstruction"] = {"parts": [{"text": session["instructions"]}]}
    declarations = function_declarations(session.get("tools") or [])
    if declarations:
        setup["tools"] = [{"functionDeclarations": declarations}]
    setup["realtimeInputConfig"] = _activity_detection((audio_config.get("input") or {}).get("turn_detection"))
    setup["inputAudioTranscription"] = {}
    if speaks:
        setup["outputAudioTranscription"] = {}
    return {"setup": setup}


def content(item: dict[str, Any], pcm16k: Any) -> dict[str, Any] | None:
    """A GA `message` item as a Gemini `Content`; `pcm16k(base64 24 kHz audio) -> base64 16 kHz audio`."""
    if item.get("type") != "message":
        return None
    role = item.get("role")
    parts: list[dict[str, Any]] = []
    for part in item.get("content") or []:
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text") or ""
            parts.append({"text": f"System: {text}" if role == "system" else text})
        elif kind == "input_audio" and part.get("audio"):
            parts.append({"inlineData": {"mimeType": INPUT_MIME, "data": pcm16k(part["audio"])}})
    return {"role": "model" if role == "assistant" else "user", "parts": parts}


def function_response(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A GA `function_call_output` item as a Gemini `FunctionResponse` (the name from the call it answers)."""
    output = item.get("output") or ""
    try:
        value = json.loads(output)
    except (TypeError, ValueError):
        value = output
    response = value if isinstance(value, dict) and set(value) == {"error"} else {"output": value}
    call_id = str(item.get("call_id") or "")
    return {"id": call_id, "name": names.get(call_id, ""), "response": response}
