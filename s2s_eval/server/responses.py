"""Events of one response (canonical sequences E and F of the protocol brief), free of I/O.

A `ResponseEvents` builds, in order: the opening (`response.created`, `rate_limits.updated`), one block per output
item (an assistant message streamed in segments, or a function call), and `response.done` with a status and usage.
Out-of-band responses (`conversation: "none"`) carry no `conversation.item.*` events.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from s2s_eval import audio
from s2s_eval.server.protocol import RealtimeSession, ResponseState, new_id

OUTPUT_CHUNK_MS = 100
TEXT_DELTAS = 8
ARGUMENT_DELTA_CHARS = 24


def estimate_text_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters per token), good enough for plausible usage figures."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def sentences(text: str) -> list[str]:
    """Split text after sentence ends; the pieces concatenate back to exactly `text`."""
    return re.findall(r"[^.!?]*[.!?]+\s*|[^.!?]+$", text) or [text]


def split_words(text: str, pieces: int) -> list[str]:
    """Split text into at most `pieces` deltas on word boundaries; the deltas concatenate back to `text`."""
    tokens = re.findall(r"\s*\S+\s*", text)
    if not tokens:
        return [text] if text else []
    size = math.ceil(len(tokens) / max(1, min(pieces, len(tokens))))
    return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]


@dataclass
class MessageStream:
    """An assistant message being streamed: what was sent of it so far."""

    item: dict[str, Any]
    output_index: int
    audio: bool
    text_parts: list[str] = field(default_factory=list)
    pcm_parts: list[bytes] = field(default_factory=list)

    @property
    def where(self) -> dict[str, Any]:
        return {"item_id": self.item["id"], "output_index": self.output_index, "content_index": 0}

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def keep_only(self, sent: list[dict[str, Any]]) -> None:
        """The last segment was cut short (cancelled): keep only the part of it carried by the `sent` deltas."""
        self.text_parts[-1] = "".join(e["delta"] for e in sent if e["type"] != "response.output_audio.delta")
        if self.audio:
            self.pcm_parts[-1] = b"".join(base64.b64decode(e["delta"]) for e in sent
                                          if e["type"] == "response.output_audio.delta")


@dataclass
class ResponseEvents:
    """Builds the events of one response in order, and keeps its output items and usage."""

    session: RealtimeSession
    state: ResponseState
    output: list[dict[str, Any]] = field(default_factory=list)
    text_out: str = ""
    audio_out_s: float = 0.0

    @property
    def response_id(self) -> str:
        return self.state.id

    @property
    def speaks(self) -> bool:
        return self.state.response["output_modalities"] == ["audio"]

    def _event(self, type_: str, **fields: Any) -> dict[str, Any]:
        return self.session.event(type_, response_id=self.response_id, **fields)

    def opening(self, rate_limits: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """`response.created` and `rate_limits.updated` (which already reserves the output tokens)."""
        return [self.session.event("response.created", response=copy.deepcopy(self.state.response)),
                self.session.event("rate_limits.updated", rate_limits=rate_limits or [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}])]

    def _added(self, item: dict[str, Any], output_index: int) -> list[dict[str, Any]]:
        previous = self.session.add_output_item(self.state, item)
        self.output.append(item)
        events = [self._event("response.output_item.added", output_index=output_index, item=copy.deepcopy(item))]
        if self.state.in_conversation:
            events.append(self.session.event("conversation.item.added", previous_item_id=previous,
                                             item=copy.deepcopy(item)))
        return events

    def _done(self, item: dict[str, Any], output_index: int) -> list[dict[str, Any]]:
        events = []
        if self.state.in_conversation:
            index = next((i for i, x in enumerate(self.session.items) if x is item), None)
            previous = self.session.items[index - 1]["id"] if index else None
            events.append(self.session.event("conversation.item.done", previous_item_id=previous,
                                             item=copy.deepcopy(item)))
        events.append(self._event("response.output_item.done", output_index=output_index, item=copy.deepcopy(item)))
        return events

    # -- assistant message --------------------------------------------------------------------------------------

    def start_message(self) -> tuple[MessageStream, list[dict[str, Any]]]:
        item = {"id": new_id("item"), "object": "realtime.item", "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}
        message = MessageStream(item, len(self.output), self.speaks)
        part = {"type": "audio", "transcript": ""} if message.audio else {"type": "text", "text": ""}
        events = self._added(item, message.output_index)
        if message.audio and self.state.in_conversation:
            self.session.start_output_audio(item["id"])
        events.append(self._event("response.content_part.added", **message.where, part=part))
        return message, events

    def content_deltas(self, message: MessageStream, text: str, pcm: bytes) -> list[dict[str, Any]]:
        """Deltas of one segment: audio chunks, each followed by a share of its transcript (or text deltas)."""
        message.text_parts.append(text)
        if not message.audio:
            return [self._event("response.output_text.delta", **message.where, delta=d)
                    for d in split_words(text, TEXT_DELTAS)]
        message.pcm_parts.append(pcm)
        chunks = audio.b64_chunks(pcm, OUTPUT_CHUNK_MS)  # encoded once per answer, not once per session
        words = split_words(text, max(1, len(chunks)))
        events: list[dict[str, Any]] = []
        for i in range(max(len(chunks), len(words))):
            if i < len(chunks):
                events.append(self._event("response.output_audio.delta", **message.where, delta=chunks[i]))
            if i < len(words):
                events.append(self._event("response.output_audio_transcript.delta", **message.where, delta=words[i]))
        return events

    def finish_message(self, message: MessageStream, status: str = "completed") -> list[dict[str, Any]]:
        """Done events of a message; `incomplete` when it was cut short (cancelled, token limit)."""
        text, item = message.text, message.item
        if message.audio:
            pcm = b"".join(message.pcm_parts)
            truncated = self.session.keep_output_audio(item["id"], pcm)
            self.audio_out_s += audio.duration_s(pcm)
            done = [self._event("response.output_audio.done", **message.where),
                    self._event("response.output_audio_transcript.done", **message.where, transcript=text)]
            part = {"type": "audio", "transcript": text}
            # Truncated by the client while it streamed: the conversation keeps no transcript of it (as after
            # any truncate), while the events above still say what was generated.
            item["content"] = [{"type": "output_audio", "transcript": "" if truncated else text}]
        else:
            done = [self._event("response.output_text.done", **message.where, text=text)]
            part = {"type": "text", "text": text}
            item["content"] = [{"type": "output_text", "text": text}]
        self.text_out += text
        item["status"] = status
        return [*done, self._event("response.content_part.done", **message.where, part=part),
                *self._done(item, message.output_index)]

    # -- function call ------------------------------------------------------------------------------------------

    def function_call(self, name: str, arguments: dict[str, Any] | str) -> list[dict[str, Any]]:
        """A whole function-call item: added, argument deltas, arguments done, item done."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        item = {"id": new_id("item"), "object": "realtime.item", "type": "function_call", "status": "in_progress",
                "name": name, "call_id": new_id("call"), "arguments": ""}
        index = len(self.output)
        events = self._added(item, index)
        where = {"item_id": item["id"], "output_index": index, "call_id": item["call_id"]}
        for start in range(0, len(args), ARGUMENT_DELTA_CHARS):
            events.append(self._event("response.function_call_arguments.delta", **where,
                                      delta=args[start : start + ARGUMENT_DELTA_CHARS]))
        events.append(self._event("response.function_call_arguments.done", **where, arguments=args, name=name))
        item.update(status="completed", arguments=args)
        self.text_out += args
        return events + self._done(item, index)

    # -- end ----------------------------------------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """Plausible usage: audio in 1 token / 100 ms, audio out 1 token / 50 ms, text ~4 characters per token."""
        context = self.state.context
        audio_in = sum(math.ceil(audio.duration_s(self.session.item_audio.get(item["id"], b"")) * 10)
                       for item in context if item.get("role") == "user")
        text_in = estimate_text_tokens(self.session.instructions_for(self.state)) + sum(
            estimate_text_tokens(p.get("text") or p.get("transcript") or "")
            for item in context for p in item.get("content") or [] if p.get("type") != "input_audio")
        text_in += sum(estimate_text_tokens(item.get("output") or item.get("arguments") or "") for item in context)
        audio_out = math.ceil(self.audio_out_s * 20)
        text_out = estimate_text_tokens(self.text_out)
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in, "image_tokens": 0,
                                    "cached_tokens": 0,
                                    "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0,
                                                              "image_tokens": 0}},
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }

    def done(self, status: str = "completed", details: dict[str, Any] | None = None) -> dict[str, Any]:
        """`response.done` with every output item, the status and the usage."""
        response = {**copy.deepcopy(self.state.response), "status": status, "status_details": details,
                    "output": copy.deepcopy(self.output), "usage": self.usage()}
        return self.session.event("response.done", response=response)
