"""Gemini Live frames ↔ the runner's GA events, for one session, free of I/O (tested with plain dicts).

Client side (`encode`), GA event → Gemini message:

| GA client event                                  | Gemini message(s)                                              |
|--------------------------------------------------|----------------------------------------------------------------|
| `session.update`                                 | `setup` (`_gemini_setup.setup_message`)                        |
| `conversation.item.create` message (history)     | held; sent as `clientContent.turns` before the next audio      |
|                                                  | (`turnComplete: false`) or with `response.create`              |
| `conversation.item.create` function_call_output  | held; sent as one `toolResponse` with `response.create`        |
| `input_audio_buffer.append`                      | `realtimeInput.audio` at 16 kHz (soxr, streaming); manual      |
|                                                  | turns: `realtimeInput.activityStart` before a turn's first one |
| `input_audio_buffer.commit`                      | the resampler's tail as a last `realtimeInput.audio`; answered |
|                                                  | locally with `input_audio_buffer.committed` (`replies`)        |
| `response.create`                                | `realtimeInput.activityEnd` after audio, else the held         |
|                                                  | `toolResponse`, else `clientContent` with `turnComplete: true` |

So a manual turn's time zero (the send of `response.create`) is the send of `activityEnd`, as the OpenAI
definition's is the send of `response.create`; the client lets queued audio leave before stamping it.

Server side (`decode`), Gemini message → GA events (JSON in binary or text frames):

| Gemini message                                   | GA server event(s)                                             |
|--------------------------------------------------|----------------------------------------------------------------|
| (connection open, `opened`)                      | `session.created` (Gemini speaks only after `setup`)           |
| `setupComplete`                                  | `session.updated`                                              |
| first content of a model turn                    | `response.created`                                             |
| `serverContent.modelTurn.parts[].inlineData`     | `response.output_audio.delta` (base64 PCM16 24 kHz, as sent)   |
| `serverContent.modelTurn.parts[].text` (no thought) | `response.output_text.delta`                                |
| `serverContent.outputTranscription.text`         | `response.output_audio_transcript.delta`                       |
| `toolCall.functionCalls[]`                       | `response.output_item.done` (`function_call`) each, then       |
|                                                  | `response.done` (completed)                                    |
| `serverContent.interrupted`                      | (remembered: the turn's `response.done` is cancelled,          |
|                                                  | `status_details.reason: turn_detected`)                        |
| `serverContent.turnComplete` (+ `usageMetadata`) | `response.output_audio_transcript.done`, `response.done` with  |
|                                                  | usage in GA shape                                              |
| `generationComplete`, `inputTranscription`, `toolCallCancellation`, `sessionResumptionUpdate` | nothing |
| `goAway`                                         | nothing; a later close 1008/1001 is `session_expired`          |

Closes (`closed`): 1007 → invalid_request (auth when the reason is about the key); 1008 → session_expired after
`goAway` or a time-limit reason, auth for an unregistered caller, else invalid_request (unknown model); 1011 →
rate_limited when the reason says quota, else server_error; 1013 → server_error.

The usage of a turn is the last `usageMetadata` before its end (Google sends it with `turnComplete`); a turn that
ends with `generationComplete` only is not waited for, as the next turn's content or `turnComplete` closes it.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import numpy as np
import soxr

from s2s_eval import audio, jsonwire
from s2s_eval.providers._base import Codec, Frame
from s2s_eval.providers._gemini_setup import INPUT_MIME, INPUT_RATE, content, function_response, setup_message

SAMPLE_HEADER = "X-S2S-Sample-Id"  # the reference server's per-session sample id (a Live request has no metadata)
MODALITY_KEYS = {"TEXT": "text_tokens", "AUDIO": "audio_tokens", "IMAGE": "image_tokens", "VIDEO": "image_tokens"}
QUOTA_WORDS = ("quota", "resource_exhausted", "resource exhausted", "rate limit")
KEY_WORDS = ("api key", "unregistered callers", "permission", "unauthenticated")


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _get(value: Any, camel: str) -> Any:
    """A field in camelCase or snake_case (the server sends camelCase; tolerate both, as Google's SDK does)."""
    if not isinstance(value, dict):
        return None
    if camel in value:
        return value[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return value.get(snake)


def _details(entries: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in entries or []:
        key = MODALITY_KEYS.get(str(_get(entry, "modality")))
        if key:
            out[key] = out.get(key, 0) + int(_get(entry, "tokenCount") or 0)
    return out


def ga_usage(metadata: dict[str, Any]) -> dict[str, Any]:
    """`usageMetadata` as GA `response.usage`: token counts by modality; thinking counts as text output, tool-use
    prompts as text input, cached tokens as cached input."""
    prompt = int(_get(metadata, "promptTokenCount") or 0) + int(_get(metadata, "toolUsePromptTokenCount") or 0)
    thoughts = int(_get(metadata, "thoughtsTokenCount") or 0)
    response = int(_get(metadata, "responseTokenCount") or _get(metadata, "candidatesTokenCount") or 0) + thoughts
    inputs = _details(_get(metadata, "promptTokensDetails"))
    for key, value in _details(_get(metadata, "toolUsePromptTokensDetails")).items():
        inputs[key] = inputs.get(key, 0) + value
    outputs = _details(_get(metadata, "responseTokensDetails") or _get(metadata, "candidatesTokensDetails"))
    if thoughts:
        outputs["text_tokens"] = outputs.get("text_tokens", 0) + thoughts
    cached = int(_get(metadata, "cachedContentTokenCount") or 0)
    inputs["cached_tokens"] = cached
    usage: dict[str, Any] = {"total_tokens": int(_get(metadata, "totalTokenCount") or prompt + response),
                             "input_tokens": prompt, "output_tokens": response,
                             "input_token_details": inputs, "output_token_details": outputs}
    cached_details = _details(_get(metadata, "cacheTokensDetails"))
    if cached_details:
        inputs["cached_tokens_details"] = cached_details
    return usage


def close_kind(code: int | None, reason: str, went_away: bool) -> tuple[str, str] | None:
    """A Gemini close as (failure kind, message); None for an ordinary close."""
    said = f"Gemini closed the session ({code}): {reason or 'no reason given'}"
    lowered = reason.lower()
    if code == 1011:
        return ("rate_limited" if any(w in lowered for w in QUOTA_WORDS) else "server_error"), said
    if code == 1013:
        return "server_error", said
    if code == 1007:
        return ("auth" if any(w in lowered for w in KEY_WORDS) else "invalid_request"), said
    if code == 1008:
        if went_away or "time limit" in lowered or "session" in lowered and "limit" in lowered:
            return "session_expired", said
        if any(w in lowered for w in KEY_WORDS):
            return "auth", said
        if any(w in lowered for w in QUOTA_WORDS):
            return "rate_limited", said
        return "invalid_request", said
    if code == 1001 and went_away:
        return "session_expired", said
    return None


class GeminiCodec(Codec):
    """One Gemini Live session's translation; see the module docstring for the tables."""

    def __init__(self, model: str, generation_fields: dict[str, Any] | None = None, sample_header: bool = True
                 ) -> None:
        self.model, self.generation_fields, self.sample_header = model, generation_fields or {}, sample_header
        self.manual = True
        self.in_activity = False  # between activityStart and activityEnd
        self.held_turns: list[dict[str, Any]] = []
        self.held_outputs: list[dict[str, Any]] = []
        self.call_names: dict[str, str] = {}
        self.awaiting_tool_response = False
        self.went_away = False
        self._resampler: soxr.ResampleStream | None = None
        self._replies: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._response: str | None = None  # the open response's id
        self._item = ""
        self._transcript: list[str] = []
        self._interrupted = False
        self._usage: dict[str, Any] | None = None

    # -- client side --------------------------------------------------------------------------------------------

    def session_headers(self, metadata: dict[str, str]) -> dict[str, str]:
        sample = metadata.get("sample_id")
        return {SAMPLE_HEADER: sample} if sample and self.sample_header else {}

    def opened(self) -> list[dict[str, Any]]:
        return [{"type": "session.created", "event_id": "evt_gemini_opened", "session": {}}]

    def replies(self) -> list[dict[str, Any]]:
        out, self._replies = self._replies, []
        return out

    def encode(self, event: dict[str, Any]) -> list[Frame]:
        kind = event.get("type")
        if kind == "session.update":
            session = event.get("session") or {}
            self.manual = _dig(session, "audio", "input", "turn_detection") is None
            return [json.dumps(setup_message(session, self.model, self.generation_fields))]
        if kind == "conversation.item.create":
            self._hold(event.get("item") or {})
            return []
        if kind == "input_audio_buffer.append":
            return self._append(event.get("audio") or "")
        if kind == "input_audio_buffer.commit":
            tail = self._resample(b"", last=True)
            self._replies.append({"type": "input_audio_buffer.committed", "event_id": f"evt_gemini_{next(self._ids)}",
                                  "item_id": None})
            return [self._audio(tail)] if tail else []
        if kind == "response.create":
            return self._turn_end()
        return []  # nothing else the runner sends has a Gemini counterpart (cancel, clear)

    def _hold(self, item: dict[str, Any]) -> None:
        if item.get("type") == "function_call_output":
            self.held_outputs.append(function_response(item, self.call_names))
            return
        turn = content(item, self._whole_16k)
        if turn is not None:
            self.held_turns.append(turn)

    def _history(self, complete: bool) -> list[Frame]:
        if not self.held_turns and not complete:
            return []
        turns, self.held_turns = self.held_turns, []
        return [json.dumps({"clientContent": {"turns": turns, "turnComplete": complete}})]

    def _append(self, data: str) -> list[Frame]:
        frames = self._history(complete=False)
        if self.manual and not self.in_activity:
            self.in_activity = True
            frames.append(json.dumps({"realtimeInput": {"activityStart": {}}}))
        pcm = self._resample(audio.b64decode(data))
        if pcm:
            frames.append(self._audio(pcm))
        return frames

    def _turn_end(self) -> list[Frame]:
        if self.in_activity:
            self.in_activity = False
            return [json.dumps({"realtimeInput": {"activityEnd": {}}})]
        if self.held_outputs:
            responses, self.held_outputs = self.held_outputs, []
            self.awaiting_tool_response = False
            return [json.dumps({"toolResponse": {"functionResponses": responses}})]
        return self._history(complete=True)

    def _audio(self, pcm: bytes) -> str:
        return json.dumps({"realtimeInput": {"audio": {"data": audio.b64(pcm), "mimeType": INPUT_MIME}}})

    def _resample(self, pcm: bytes, last: bool = False) -> bytes:
        """24 kHz → 16 kHz through one streaming resampler per upload (no clicks between chunks); `last` flushes
        its filter delay and ends the stream."""
        if self._resampler is None:
            if last:
                return b""
            self._resampler = soxr.ResampleStream(audio.SAMPLE_RATE, INPUT_RATE, 1, dtype="int16")
        out = self._resampler.resample_chunk(np.frombuffer(pcm, dtype="<i2"), last=last)
        if last:
            self._resampler = None
        return out.astype("<i2").tobytes()

    @staticmethod
    def _whole_16k(data: str) -> str:
        samples = audio.resample(audio.from_pcm16(audio.b64decode(data)), audio.SAMPLE_RATE, INPUT_RATE)
        return audio.b64(audio.to_pcm16(samples))

    # -- server side --------------------------------------------------------------------------------------------

    def decode(self, frame: Frame) -> list[dict[str, Any]]:
        message = jsonwire.loads(frame)  # orjson, with json's verdict on what it refuses
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
        out: list[dict[str, Any]] = []
        usage = _get(message, "usageMetadata")
        if isinstance(usage, dict):
            self._usage = usage
        if _get(message, "setupComplete") is not None:
            out.append({"type": "session.updated", "event_id": self._event_id(), "session": {}})
        server = _get(message, "serverContent")
        if isinstance(server, dict):
            out += self._server_content(server)
        calls = _get(_get(message, "toolCall"), "functionCalls")
        if isinstance(calls, list):
            out += self._tool_call(calls)
        if _get(message, "goAway") is not None:
            self.went_away = True
        return out

    def closed(self, code: int | None, reason: str) -> tuple[str, str] | None:
        return close_kind(code, reason, self.went_away)

    def _event_id(self) -> str:
        return f"evt_gemini_{next(self._ids)}"

    def _open(self, out: list[dict[str, Any]]) -> str:
        if self._response is None:
            number = next(self._ids)
            self._response, self._item = f"resp_gemini_{number}", f"item_gemini_{number}"
            self._transcript, self._interrupted = [], False
            out.append({"type": "response.created", "event_id": self._event_id(),
                        "response": {"id": self._response, "status": "in_progress"}})
        return self._response

    def _delta(self, kind: str, out: list[dict[str, Any]], item: str | None = None, **fields: Any) -> None:
        response = self._open(out)
        out.append({"type": kind, "event_id": self._event_id(), "response_id": response,
                    "item_id": item or self._item, "output_index": 0, "content_index": 0, **fields})

    def _server_content(self, server: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part in _get(_get(server, "modelTurn"), "parts") or []:
            blob = _get(part, "inlineData")
            if isinstance(blob, dict) and str(_get(blob, "mimeType") or "").startswith("audio/pcm"):
                self._delta("response.output_audio.delta", out, delta=self._audio_24k(blob))
            elif isinstance(_get(part, "text"), str) and not _get(part, "thought"):
                self._delta("response.output_text.delta", out, item=f"{self._item}_text", delta=part["text"])
        text = _get(_get(server, "outputTranscription"), "text")
        if isinstance(text, str) and text:
            self._delta("response.output_audio_transcript.delta", out, delta=text)
            self._transcript.append(text)
        if _get(server, "interrupted"):
            self._interrupted = True
        if _get(server, "turnComplete"):
            out += self._turn_complete()
        return out

    def _turn_complete(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self._response is None and self.awaiting_tool_response:
            return out  # [I] a turn end after a tool call and before its answer: the model goes on after it
        response = self._open(out)
        if self._transcript:
            out.append({"type": "response.output_audio_transcript.done", "event_id": self._event_id(),
                        "response_id": response, "item_id": self._item, "output_index": 0, "content_index": 0,
                        "transcript": "".join(self._transcript)})
        status, details = ("cancelled", {"type": "cancelled", "reason": "turn_detected"}) if self._interrupted \
            else ("completed", None)
        out.append(self._done(response, status, details))
        return out

    def _tool_call(self, calls: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        response = self._open(out)
        for index, call in enumerate(calls):
            call_id, name = str(_get(call, "id") or f"call_gemini_{next(self._ids)}"), str(_get(call, "name") or "")
            self.call_names[call_id] = name
            item = {"id": f"{self._item}_call{index}", "type": "function_call", "status": "completed",
                    "call_id": call_id, "name": name, "arguments": json.dumps(_get(call, "args") or {})}
            out.append({"type": "response.output_item.done", "event_id": self._event_id(), "response_id": response,
                        "output_index": index, "item": item})
        self.awaiting_tool_response = True
        out.append(self._done(response, "completed", None))
        return out

    def _done(self, response: str, status: str, details: dict[str, Any] | None) -> dict[str, Any]:
        usage, self._usage = (ga_usage(self._usage) if self._usage else None), None
        self._response = None
        return {"type": "response.done", "event_id": self._event_id(),
                "response": {"id": response, "status": status, "status_details": details, "usage": usage}}

    @staticmethod
    def _audio_24k(blob: dict[str, Any]) -> str:
        """The part's audio as standard base64 PCM16 at 24 kHz (Gemini's output rate: passed through as sent)."""
        data = str(_get(blob, "data") or "")
        if "-" in data or "_" in data:
            data = data.replace("-", "+").replace("_", "/")
        mime = str(_get(blob, "mimeType"))
        rate = int(mime.split("rate=")[1].split(";")[0]) if "rate=" in mime else audio.SAMPLE_RATE
        if rate == audio.SAMPLE_RATE:
            return data
        samples = audio.resample(audio.from_pcm16(base64.b64decode(data)), rate, audio.SAMPLE_RATE)
        return audio.b64(audio.to_pcm16(samples))
