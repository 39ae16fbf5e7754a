"""The event sequence of one response (canonical sequence E of the protocol brief), free of I/O.

`opening()` goes out as soon as `response.create` arrives. The content follows in segments (one sentence of
speech at a time, as a streaming model produces it): `content_deltas()` builds the audio and transcript deltas of
one segment, `closing()` the done events and `response.done` once all content was sent.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

from s2s_eval import audio
from s2s_eval.server.protocol import RealtimeSession, ResponseRequest, new_id

OUTPUT_CHUNK_MS = 100
TEXT_DELTAS = 8


def estimate_text_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters per token), good enough for plausible usage figures."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def sentences(text: str) -> list[str]:
    """Split text after sentence ends; the pieces concatenate back to exactly `text`."""
    return re.findall(r"[^.!?]*[.!?]+\s*|[^.!?]+$", text) or [text]


def split_words(text: str, pieces: int) -> list[str]:
    """Split text into at most `pieces` deltas on word boundaries; the deltas concatenate back to `text`."""
    tokens = re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    if not tokens:
        return []
    size = math.ceil(len(tokens) / max(1, min(pieces, len(tokens))))
    return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]


@dataclass
class ResponseIds:
    response_id: str
    item_id: str
    audio: bool  # audio output (with transcript) rather than text

    @property
    def where(self) -> dict[str, Any]:
        return {"response_id": self.response_id, "item_id": self.item_id, "output_index": 0, "content_index": 0}


def opening(session: RealtimeSession, request: ResponseRequest) -> tuple[ResponseIds, list[dict[str, Any]]]:
    """response.created … response.content_part.added."""
    response = request.response
    ids = ResponseIds(response["id"], new_id("item"), response["output_modalities"] == ["audio"])
    item = {"id": ids.item_id, "object": "realtime.item", "type": "message", "status": "in_progress",
            "role": "assistant", "content": []}
    part = {"type": "audio", "transcript": ""} if ids.audio else {"type": "text", "text": ""}
    previous = session.items[-1]["id"] if session.items else None
    events = [
        session.event("response.created", response=copy.deepcopy(response)),
        session.event("rate_limits.updated", rate_limits=[
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}]),
        session.event("response.output_item.added", response_id=ids.response_id, output_index=0,
                      item=copy.deepcopy(item)),
        session.event("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)),
        session.event("response.content_part.added", **ids.where, part=part),
    ]
    return ids, events


def content_deltas(session: RealtimeSession, ids: ResponseIds, text: str, pcm: bytes) -> list[dict[str, Any]]:
    """The deltas of one segment: audio chunks, each followed by a share of the transcript (or text deltas)."""
    if not ids.audio:
        return [session.event("response.output_text.delta", **ids.where, delta=d)
                for d in split_words(text, TEXT_DELTAS)]
    audio_chunks = audio.chunks(pcm, OUTPUT_CHUNK_MS)
    words = split_words(text, max(1, len(audio_chunks)))
    deltas: list[dict[str, Any]] = []
    for i in range(max(len(audio_chunks), len(words))):
        if i < len(audio_chunks):
            deltas.append(session.event("response.output_audio.delta", **ids.where, delta=audio.b64(audio_chunks[i])))
        if i < len(words):
            deltas.append(session.event("response.output_audio_transcript.delta", **ids.where, delta=words[i]))
    return deltas


def usage(session: RealtimeSession, request: ResponseRequest, text: str, output_audio_s: float) -> dict[str, Any]:
    """Plausible usage: audio in 1 token / 100 ms, audio out 1 token / 50 ms, text ~4 characters per token."""
    audio_in = sum(math.ceil(audio.duration_s(session.item_audio.get(item["id"], b"")) * 10)
                   for item in request.context)
    text_in = estimate_text_tokens(session.instructions_for(request)) + sum(
        estimate_text_tokens(p.get("text") or "") for item in request.context for p in item.get("content") or [])
    audio_out = math.ceil(output_audio_s * 20)
    text_out = estimate_text_tokens(text)
    return {
        "total_tokens": text_in + audio_in + text_out + audio_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in, "image_tokens": 0,
                                "cached_tokens": 0,
                                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def closing(session: RealtimeSession, request: ResponseRequest, ids: ResponseIds, text: str,
            output_audio_s: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Done events and `response.done` for a reply of `text`; also returns the finished assistant item."""
    if ids.audio:
        done = [session.event("response.output_audio.done", **ids.where),
                session.event("response.output_audio_transcript.done", **ids.where, transcript=text)]
        part = {"type": "audio", "transcript": text}
        content = [{"type": "output_audio", "transcript": text}]
    else:
        done = [session.event("response.output_text.done", **ids.where, text=text)]
        part = {"type": "text", "text": text}
        content = [{"type": "output_text", "text": text}]
    item = {"id": ids.item_id, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "assistant", "content": content}
    previous = session.items[-1]["id"] if session.items else None
    response = {**copy.deepcopy(request.response), "status": "completed", "output": [copy.deepcopy(item)],
                "usage": usage(session, request, text, output_audio_s)}
    events = [
        *done,
        session.event("response.content_part.done", **ids.where, part=part),
        session.event("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item)),
        session.event("response.output_item.done", response_id=ids.response_id, output_index=0,
                      item=copy.deepcopy(item)),
        session.event("response.done", response=response),
    ]
    return events, item
