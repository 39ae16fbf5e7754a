"""Gemini Live wire shapes for the reference server, free of I/O: key spelling, closes, server messages.

Facts and their sources are in the design docs' `gemini-live-protocol.md`; **[I]** there marks what is inferred,
and the same marks are used here. Server messages use camelCase (as Google's server sends them); client messages
may use camelCase or snake_case keys, mixed at any depth (Google's own SDK sends `realtime_input` and `mime_type`
inside camelCase objects), so every client message is normalised to camelCase first, except inside values that
belong to the caller (function arguments and responses, JSON schemas).
"""

from __future__ import annotations

import math
import re
from typing import Any

from s2s_eval import audio

OUTPUT_MIME = f"audio/pcm;rate={audio.SAMPLE_RATE}"
INPUT_RATE = 16_000  # the documented input rate; other `rate=` values are resampled too
AUDIO_TOKENS_PER_S = 25  # Google's billing rate for audio, in and out

# Close codes and reasons Google's server uses (`gemini-live-protocol.md`, "Ends and errors").
INVALID_ARGUMENT = "Request contains an invalid argument."
INTERNAL = "Internal error occurred."
QUOTA = ("You exceeded your current quota, please check your plan and billing details. For more information on this "
         "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.")
NO_VOICE = "No matching speaker voice found"
# [I] what Google answers a missing or a wrong key with; 1007 for a bad key matches the confirmed expired-key close.
NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
          "other form of API consumer identity to call this API.")
BAD_KEY = "API key not valid. Please pass a valid API key."
# WebSocket close reasons are at most 123 bytes (RFC 6455); Google's are cut there too.
MAX_REASON_BYTES = 123

CLIENT_FIELDS = ("setup", "clientContent", "realtimeInput", "toolResponse")
SETUP_FIELDS = frozenset({
    "model", "generationConfig", "systemInstruction", "tools", "realtimeInputConfig", "sessionResumption",
    "contextWindowCompression", "inputAudioTranscription", "outputAudioTranscription", "proactivity",
    "explicitVadSignal", "historyConfig", "avatarConfig", "safetySettings", "labels"})
# Values owned by the caller: their keys are names the caller chose, never re-spelled.
OPAQUE = frozenset({"args", "response", "parameters", "parametersJsonSchema", "responseJsonSchema", "responseSchema",
                    "labels"})
VOICES = frozenset({
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe", "Enceladus",
    "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia", "Achernar",
    "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia",
    "Sadaltager", "Sulafat"})


class GeminiClose(Exception):
    """The session ends: Google's server answers a bad request by closing the WebSocket with a code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, truncate_reason(reason)


def truncate_reason(reason: str) -> str:
    data = reason.encode("utf-8")[:MAX_REASON_BYTES]
    return data.decode("utf-8", errors="ignore")


def invalid(reason: str = INVALID_ARGUMENT) -> GeminiClose:
    return GeminiClose(1007, reason)


def _camel(key: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def camel_keys(value: Any, where: str = "") -> Any:
    """A copy of a client message with camelCase keys; two spellings of one field in one object are refused."""
    if isinstance(value, list):
        return [camel_keys(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, child in value.items():
        name = _camel(key) if isinstance(key, str) else key
        if name in out:
            raise invalid(f"Invalid JSON payload received. Duplicate field \"{name}\" at '{where or 'message'}'.")
        out[name] = child if name in OPAQUE else camel_keys(child, f"{where}.{_snake(name)}".lstrip("."))
    return out


def unknown_field(name: str, where: str | None) -> GeminiClose:
    """Google's answer to a field it does not know (confirmed for transcription configs nested one level too deep)."""
    at = f" at '{where}'" if where else ""
    return invalid(f"Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field.")


def input_rate(mime_type: Any) -> int:
    """The sample rate of `audio/pcm;rate=N` (16 kHz when not given); any other type is refused."""
    if not isinstance(mime_type, str) or not mime_type.startswith("audio/pcm"):
        raise invalid()
    match = re.search(r"rate=(\d+)", mime_type)
    rate = int(match.group(1)) if match else INPUT_RATE
    if not 8000 <= rate <= 48000:
        raise invalid()
    return rate


# -- server messages -------------------------------------------------------------------------------------------


def setup_complete() -> dict[str, Any]:
    return {"setupComplete": {}}


def audio_chunk(pcm: bytes) -> dict[str, Any]:
    return {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": OUTPUT_MIME,
                                                                      "data": audio.b64(pcm)}}]}}}


def text_part(text: str) -> dict[str, Any]:
    return {"serverContent": {"modelTurn": {"parts": [{"text": text}]}}}


def output_transcription(text: str) -> dict[str, Any]:
    return {"serverContent": {"outputTranscription": {"text": text}}}


def generation_complete() -> dict[str, Any]:
    return {"serverContent": {"generationComplete": True}}


def interrupted() -> dict[str, Any]:
    return {"serverContent": {"interrupted": True}}


def turn_complete(usage: dict[str, Any] | None) -> dict[str, Any]:
    """`turnComplete`, with `usageMetadata` in the same message (where Google's server puts it)."""
    message: dict[str, Any] = {"serverContent": {"turnComplete": True}}
    if usage is not None:
        message["usageMetadata"] = usage
    return message


def tool_call(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"toolCall": {"functionCalls": calls}}


def tool_call_cancellation(ids: list[str]) -> dict[str, Any]:
    return {"toolCallCancellation": {"ids": ids}}


def go_away(time_left_s: float) -> dict[str, Any]:
    return {"goAway": {"timeLeft": f"{max(0.0, time_left_s):g}s"}}


def usage(text_in: int, audio_in_s: float, text_out: int, audio_out_s: float) -> dict[str, Any]:
    """`usageMetadata` with per-modality details; audio counts 25 tokens per second, text ~4 characters a token."""
    audio_in, audio_out = math.ceil(audio_in_s * AUDIO_TOKENS_PER_S), math.ceil(audio_out_s * AUDIO_TOKENS_PER_S)

    def details(text: int, speech: int) -> list[dict[str, Any]]:
        return [{"modality": m, "tokenCount": n} for m, n in (("TEXT", text), ("AUDIO", speech)) if n]

    prompt, response = text_in + audio_in, text_out + audio_out
    return {"promptTokenCount": prompt, "responseTokenCount": response, "totalTokenCount": prompt + response,
            "promptTokensDetails": details(text_in, audio_in), "responseTokensDetails": details(text_out, audio_out)}
