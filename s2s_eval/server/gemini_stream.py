"""Streams one Gemini Live model turn: first-audio timing, speech, interruption, tool calls and faults.

Timing and speech are the Realtime server's (`streaming.py`): the first content message goes out exactly
`first_audio_delay_ms` (+ jitter) after the frame that ended the user's turn arrived (`activityEnd`, the audio in
which VAD heard the end of speech, `clientContent` with `turnComplete`, or the last `toolResponse`), on the
monotonic clock, while speech is synthesised a sentence at a time (the next one while one streams). With an
`output_rate` (`dynamics.py`) audio parts are paced at that multiple of real time from the first one.

A turn on the wire: `serverContent.modelTurn` audio parts (24 kHz PCM16, 100 ms each), each followed by its share
of `outputTranscription` when the setup asked for it; then `generationComplete`; then `turnComplete` with
`usageMetadata` in the same message. A turn whose reply calls tools ends with `toolCall` instead, and the next
turn starts when every call has its `toolResponse`. An interrupted turn ends `interrupted`, then `turnComplete`
(no `generationComplete`).

Faults (`faults.py`), mapped to what Google's server does (`gemini-live-protocol.md`, "Ends and errors"):
- `rate_limit`: close 1011 "You exceeded your current quota…" (cut at 123 bytes), after `setupComplete`.
- `server_error`: close 1011 "Internal error occurred.".
- `invalid_request`: close 1007 "Request contains an invalid argument." (the one a client must not retry).
- `disconnect`: the socket is dropped, without a close frame, right after the first audio message.
- `malformed`: one binary frame that is not JSON right after the first audio message; the turn then goes on.
- `stall`: nothing more, until the client gives up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from s2s_eval import audio
from s2s_eval.server import gemini_wire as wire
from s2s_eval.server.engines import Reply
from s2s_eval.server.faults import Draw
from s2s_eval.server.gemini import GeminiSession
from s2s_eval.server.protocol import ResponseState, new_id
from s2s_eval.server.responses import OUTPUT_CHUNK_MS, estimate_text_tokens, sentences, split_words
from s2s_eval.server.streaming import Dropped, RememberedSpeech, speak, until_deadline, wait_unless_cancelled
from s2s_eval.speech.tts import Synthesizer

log = logging.getLogger("s2s_eval.server")

MALFORMED_FRAME = b'{"serverContent": {"modelTurn": '
FAULT_CLOSES = {"rate_limit": (1011, wire.QUOTA), "server_error": (1011, wire.INTERNAL),
                "invalid_request": (1007, wire.INVALID_ARGUMENT)}


@dataclass
class GeminiWire:
    """What a turn stream needs from its connection."""

    send: Callable[[dict[str, Any] | bytes], Awaitable[None]]
    close: Callable[[int, str], Awaitable[None]]
    drop: Callable[[], None]


class TurnStream:
    def __init__(self, wire_: GeminiWire, session: GeminiSession, state: ResponseState, reply: Reply, draw: Draw,
                 speech: Synthesizer | RememberedSpeech, delay_ms: float | None, received: float,
                 output_rate: float | None = None) -> None:
        self.wire, self.session, self.state, self.reply, self.draw = wire_, session, state, reply, draw
        self.speech, self.output_rate = speech, output_rate
        self.paced_from: float | None = None  # when the first audio part went out (output_rate pacing)
        self.deadline = None if delay_ms is None else received + (delay_ms + draw.jitter_ms) / 1000
        self.content_sent = False
        self.text_out, self.audio_out_s = "", 0.0
        self.woken = asyncio.Event()
        state.on_cancel = self.woken.set

    @property
    def cancelled(self) -> bool:
        return self.state.cancel_reason is not None

    @property
    def transcribe(self) -> bool:
        return bool(self.session.facts and self.session.facts.output_transcription)

    async def run(self) -> None:
        """Stream the whole turn; always frees the session's turn slot."""
        try:
            if self.draw.fault:
                log.warning("fault %s: sample %s turn %s (attempt %d)", self.draw.fault, self.state.sample_id,
                            self.state.id, self.draw.attempt)
            if self.draw.fault in FAULT_CLOSES:
                await self.wire.close(*FAULT_CLOSES[self.draw.fault])
                return
            if self.draw.fault == "stall":
                await asyncio.Event().wait()  # until the client gives up and the connection closes
            await self._content()
            await self._end()
        except Dropped:
            pass
        finally:
            self.session.finish_turn(self.state)

    async def _content(self) -> None:
        speaks = self.state.response["output_modalities"] == ["audio"]
        if not speaks:
            if self.reply.text:
                await self._send(wire.text_part(self.reply.text))
                self.text_out = self.reply.text
            return
        segments = [(self.reply.text, self.reply.pcm)] if self.reply.pcm is not None else \
            [(s, None) for s in sentences(self.reply.text)]
        ahead: asyncio.Future[bytes] | None = None  # the next sentence, synthesised while this one streams
        try:
            for n, (text, pcm) in enumerate(segments):
                if self.cancelled:
                    return
                if pcm is None:
                    pcm = await wait_unless_cancelled(ahead or asyncio.ensure_future(speak(self.speech, text)),
                                                      self.woken)
                    ahead = None
                    if self.cancelled:
                        return
                if n + 1 < len(segments) and segments[n + 1][1] is None:
                    ahead = asyncio.ensure_future(speak(self.speech, segments[n + 1][0]))
                await self._segment(text, pcm)
        finally:
            if ahead is not None:
                ahead.cancel()

    async def _segment(self, text: str, pcm: bytes) -> None:
        chunks = audio.chunks(pcm, OUTPUT_CHUNK_MS) if pcm else []
        words = split_words(text, max(1, len(chunks)))
        for i in range(max(len(chunks), len(words))):
            if self.cancelled:
                return
            if i < len(chunks):
                if self.paced_from is not None and self.output_rate:
                    await until_deadline(self.paced_from + self.audio_out_s / self.output_rate, self.woken,
                                         lambda: self.cancelled)
                    if self.cancelled:
                        return
                await self._send(wire.audio_chunk(chunks[i]))
                if self.paced_from is None:
                    self.paced_from = time.perf_counter()
                self.audio_out_s += audio.duration_s(chunks[i])
            if i < len(words):
                self.text_out += words[i]
                if self.transcribe:
                    await self._send(wire.output_transcription(words[i]))

    async def _end(self) -> None:
        self.session.add_model_text(self.text_out)
        if self.cancelled:
            await self.wire.send(wire.interrupted())
            await self.wire.send(wire.turn_complete(None))
            return
        if self.reply.tool_calls:
            calls = [{"id": new_id("call"), "name": c.name, "args": c.arguments} for c in self.reply.tool_calls]
            self.session.add_calls(calls)
            await self._send(wire.tool_call(calls))
            return
        await self._send(wire.generation_complete())
        await self._send(wire.turn_complete(self._usage()))

    def _usage(self) -> dict[str, Any]:
        context = self.state.context
        audio_in_s = sum(audio.duration_s(self.session.item_audio.get(item["id"], b"")) for item in context)
        text_in = estimate_text_tokens(self.session.instructions_for(self.state)) + sum(
            estimate_text_tokens(p.get("text") or "") for item in context for p in item.get("content") or [])
        text_in += sum(estimate_text_tokens(item.get("output") or item.get("arguments") or "") for item in context)
        return wire.usage(text_in, audio_in_s, estimate_text_tokens(self.text_out), self.audio_out_s)

    async def _send(self, message: dict[str, Any]) -> None:
        """Send one message; the turn's first content message waits for the first-audio deadline."""
        if not self.content_sent and self.deadline is not None:
            late_ms = (time.perf_counter() - self.deadline) * 1000
            if late_ms > 0:
                log.warning("turn %s: first content ready %.1f ms after its deadline", self.state.id, late_ms)
            await until_deadline(self.deadline, self.woken, lambda: self.cancelled)
            if self.cancelled:
                return
        await self.wire.send(message)
        if not self.content_sent:
            self.content_sent = True
            if self.draw.fault == "disconnect":
                self.wire.drop()
                raise Dropped
            if self.draw.fault == "malformed":
                await self.wire.send(MALFORMED_FRAME)
