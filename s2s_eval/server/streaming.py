"""Streams one response over a connection: timing, speech synthesis, cancellation, token limits and faults.

The first content delta goes out exactly `first_audio_delay_ms` (+ jitter) after the `response.create` frame
arrived, scheduled on the monotonic clock while speech is synthesised one sentence at a time in a worker thread.
A cancel request (client `response.cancel`, or VAD barge-in) is honoured between frames, and while a sentence is
still being synthesised: the open item ends `incomplete` and `response.done` says `cancelled`.

With an `output_rate` (`dynamics.py`), audio deltas are paced: the one that starts at second t of the response's
audio goes out t / output_rate after the first audio delta (absolute deadlines on the monotonic clock, so a late
sentence is caught up with, never carried over); transcript deltas follow their audio chunk unpaced. Without one,
deltas go out as fast as speech is synthesised.

Faults (see `faults.py`) and what the client sees:
- `rate_limit`: `rate_limits.updated` with nothing left, then `error` `rate_limit_exceeded` with a retry hint,
  and no response. (The HTTP API's code and hint; the Realtime error `type` for it is unverified.)
- `server_error`: `response.created`, then `response.done` with status `failed` and a `server_error`.
- `disconnect`: the socket is dropped, without a close frame, right after the first content delta.
- `malformed`: one frame that is not JSON right after the first content delta; the response then goes on.
- `stall`: `response.created`, then silence until the client gives up.
- `invalid_request`: `error` `invalid_request_error` / `invalid_value` (param `response`), and no response; the
  session stays open, as after any request error. The one fault retrying cannot fix: a client must not retry it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from s2s_eval import audio, jsonwire
from s2s_eval.server.engines import Reply
from s2s_eval.server.faults import Draw
from s2s_eval.server.protocol import RealtimeSession, ResponseState
from s2s_eval.server.responses import MessageStream, ResponseEvents, estimate_text_tokens, sentences, split_words
from s2s_eval.speech.tts import Synthesizer

log = logging.getLogger("s2s_eval.server")

# asyncio.sleep overshoots by 1-2 ms (measurement-notes.md): sleep until this close, then spin to the deadline.
SPIN_S = 0.002
MALFORMED_FRAME = '{"type": "response.output_audio.delta", "delta": '
RETRY_AFTER_S = 1.5


async def sleep_until(deadline: float) -> None:
    """Wait until `deadline` (time.perf_counter) to within microseconds, without blocking the loop for long."""
    remaining = deadline - time.perf_counter()
    if remaining > SPIN_S:
        await asyncio.sleep(remaining - SPIN_S)
    while time.perf_counter() < deadline:
        pass


class RememberedSpeech:
    """A synthesiser whose sentences, once spoken, stay in memory (up to `max_bytes`, least recently used out first):
    a scripted answer asked for in every session is then read from the disk cache once, not once a session (that
    read, with its cache key, was the server's largest cost per session after the socket; issue 17)."""

    def __init__(self, synthesizer: Synthesizer, max_bytes: int = 64 * 2**20) -> None:
        self.synthesizer, self.max_bytes = synthesizer, max_bytes
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._kept_bytes = 0
        self._lock = threading.Lock()  # `speech` also runs in worker threads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.synthesizer, name)  # prepare, path, settings, ...: the synthesiser's own

    def cached(self, text: str) -> bool:
        return text in self._kept or self.synthesizer.cached(text)

    def speech(self, text: str) -> bytes:
        with self._lock:
            pcm = self._kept.get(text)
            if pcm is not None:
                self._kept.move_to_end(text)
                return pcm
        pcm = self.synthesizer.speech(text)
        with self._lock:
            if text not in self._kept and len(pcm) <= self.max_bytes:
                self._kept[text] = pcm
                self._kept_bytes += len(pcm)
                while self._kept_bytes > self.max_bytes:
                    self._kept_bytes -= len(self._kept.popitem(last=False)[1])
        return pcm


async def speak(speech: Synthesizer | RememberedSpeech, text: str) -> bytes:
    """The speech of one sentence: from the TTS cache at once, else synthesised in a worker thread."""
    if not text.strip():
        return b""
    if speech.cached(text):
        # A cached clip is in memory (`RememberedSpeech`) or a ~0.4 ms file read: do it here. Through
        # `asyncio.to_thread` it waits for the GIL behind the busy loop; at 200 sessions that took ~300 ms and
        # missed most first-audio deadlines (benchmarks/server_sessions.py). Only real synthesis, which takes far
        # longer, goes to a thread.
        pcm = speech.speech(text)
        # Still yield once per sentence: without it a cached answer streamed start to finish in one go, and
        # client events (a second response.create, response.cancel, barge-in audio) could not interleave.
        await asyncio.sleep(0)
        return pcm
    return await asyncio.to_thread(speech.speech, text)


async def until_deadline(deadline: float, woken: asyncio.Event, cancelled: Callable[[], bool]) -> None:
    """`sleep_until(deadline)`, but a cancel (which sets `woken`) ends the wait: a cancelled response (client
    cancel, barge-in) ends at once, as on the real service, not when its first audio would have been due."""
    remaining = deadline - time.perf_counter() - SPIN_S
    if remaining > 0 and not cancelled():
        try:
            async with asyncio.timeout(remaining):
                await woken.wait()
        except TimeoutError:
            pass
    if not cancelled():
        await sleep_until(deadline)


def _audio_bytes(event: dict[str, Any]) -> int:
    """Bytes of audio an event carries (from the base64 length: no decoding)."""
    if event["type"] != "response.output_audio.delta":
        return 0
    delta = event["delta"]
    return len(delta) // 4 * 3 - delta[-2:].count("=")


async def wait_unless_cancelled(synthesis: asyncio.Future[bytes], woken: asyncio.Event) -> bytes:
    """Wait for a sentence's speech; a cancel (which sets `woken`) ends the wait at once with b"" (the stream
    then stops), so a barge-in is honoured on time even while a long sentence is synthesised."""
    if not synthesis.done():
        waiter = asyncio.ensure_future(woken.wait())
        try:
            await asyncio.wait({synthesis, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
    if synthesis.done():
        return synthesis.result()
    synthesis.cancel()  # a worker thread finishes on its own; its clip lands in the cache
    return b""


class Dropped(Exception):
    """The `disconnect` fault dropped the socket: stop streaming."""


@dataclass
class Wire:
    """What a stream needs from its connection."""

    send_frame: Callable[[str], Awaitable[None]]
    drop: Callable[[], None]
    session_id: str


class ResponseStream:
    def __init__(self, wire: Wire, session: RealtimeSession, state: ResponseState, reply: Reply, draw: Draw,
                 speech: Synthesizer | RememberedSpeech, delay_ms: float | None, received: float, stamp: bool = False,
                 output_rate: float | None = None) -> None:
        self.wire, self.session, self.state, self.reply, self.draw = wire, session, state, reply, draw
        self.speech, self.stamp, self.output_rate = speech, stamp, output_rate
        self.paced_from: float | None = None  # when the first audio delta went out (output_rate pacing)
        self.audio_sent_s = 0.0
        self.deadline = None if delay_ms is None else received + (delay_ms + draw.jitter_ms) / 1000
        self.events = ResponseEvents(session, state)
        self.content_sent = False
        limit = state.response["max_output_tokens"]
        self.tokens_left: float = float("inf") if limit == "inf" else float(limit)
        self.truncated = False
        self.woken = asyncio.Event()
        state.on_cancel = self.woken.set

    async def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            await self.wire.send_frame(jsonwire.dumps(event))

    @property
    def cancelled(self) -> bool:
        return self.state.cancel_reason is not None

    async def run(self) -> None:
        """Stream the whole response; always frees the session's response slot."""
        try:
            if self.draw.fault:
                log.warning("fault %s: session %s sample %s response %s (attempt %d)", self.draw.fault,
                            self.wire.session_id, self.state.sample_id, self.state.id, self.draw.attempt)
            if self.draw.fault == "rate_limit":
                await self.send(*self._rate_limited())
                return
            if self.draw.fault == "invalid_request":
                await self.send(self.session.event("error", error={
                    "type": "invalid_request_error", "code": "invalid_value", "param": "response",
                    "event_id": self.state.client_event_id,
                    "message": "Invalid value for 'response' (the reference server's invalid_request fault)."}))
                return
            await self.send(*self.events.opening())
            if self.draw.fault == "stall":
                await asyncio.Event().wait()  # until the client gives up and the connection closes
            if self.draw.fault == "server_error":
                await self.send(self.events.done("failed", {"type": "failed", "error": {
                    "type": "server_error", "code": "server_error",
                    "message": "The server had an error while processing your request. Sorry about that!"}}))
                return
            await self._content()
            await self.send(self._final())
        except Dropped:
            pass
        finally:
            self.session.finish_response(self.state)

    def _rate_limited(self) -> list[dict[str, Any]]:
        return [
            self.session.event("rate_limits.updated", rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 0, "reset_seconds": RETRY_AFTER_S},
                {"name": "tokens", "limit": 40000, "remaining": 0, "reset_seconds": RETRY_AFTER_S}]),
            self.session.event("error", error={
                "type": "invalid_request_error", "code": "rate_limit_exceeded", "param": None,
                "event_id": self.state.client_event_id,
                "message": f"Rate limit reached for requests. Please try again in {RETRY_AFTER_S}s."}),
        ]

    def _final(self) -> dict[str, Any]:
        if self.cancelled:
            return self.events.done("cancelled", {"type": "cancelled", "reason": self.state.cancel_reason})
        if self.truncated:
            return self.events.done("incomplete", {"type": "incomplete", "reason": "max_output_tokens"})
        return self.events.done()

    async def _content(self) -> None:
        _, tool_choice = self.session.tools_for(self.state)
        calls = () if tool_choice == "none" else self.reply.tool_calls
        # "A Response will include at least one Item" (the SDK's `response.create` docs): a model that answers
        # nothing sends a message with no audio and an empty transcript, never a response without output.
        if self.reply.text or self.reply.pcm or not calls:
            message, opening = self.events.start_message()
            await self.send(*opening)
            await self._message(message)
            status = "incomplete" if self.cancelled or self.truncated else "completed"
            await self.send(*self.events.finish_message(message, status))
        for call in calls:
            if self.cancelled or self.truncated:
                return
            await self._frames([(jsonwire.dumps(e), 0) for e in self.events.function_call(call.name, call.arguments)])

    def _segments(self) -> list[tuple[str, bytes | None]]:
        """(text, speech) pieces; speech None = synthesise that sentence when its turn comes."""
        if not self.events.speaks:
            return [(self.reply.text, b"")]
        if self.reply.pcm is not None:
            return [(self.reply.text, self.reply.pcm)]
        return [(sentence, None) for sentence in sentences(self.reply.text)]

    async def _message(self, message: MessageStream) -> None:
        segments = self._segments()
        ahead: asyncio.Future[bytes] | None = None  # the next sentence, synthesised while this one streams
        try:
            for i, (text, pcm) in enumerate(segments):
                if self.cancelled or self.truncated:
                    return
                if pcm is None:
                    pcm = await self._speak(ahead or self._synthesise(text))
                    ahead = None
                    if self.cancelled:
                        return
                if i + 1 < len(segments) and segments[i + 1][1] is None:
                    # Paced output (`output_rate`) leaves no gap for synthesis between sentences: start it now.
                    ahead = self._synthesise(segments[i + 1][0])
                text, pcm = self._within_budget(text, pcm)
                deltas = self.events.content_deltas(message, text, pcm)
                sent = await self._frames([(jsonwire.dumps(e), _audio_bytes(e)) for e in deltas], message.item["id"])
                if sent < len(deltas):
                    # Cancelled mid-segment: the item keeps only what the client was sent, so the final transcript,
                    # the retrievable audio and the usage agree with the deltas.
                    message.keep_only(deltas[:sent])
        finally:
            if ahead is not None:
                ahead.cancel()  # a worker thread finishes on its own; its clip lands in the cache

    def _synthesise(self, text: str) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(speak(self.speech, text))

    async def _speak(self, synthesis: asyncio.Future[bytes]) -> bytes:
        return await wait_unless_cancelled(synthesis, self.woken)

    def _within_budget(self, text: str, pcm: bytes) -> tuple[str, bytes]:
        """Cut a segment to the tokens left under `max_output_tokens` (then the response ends `incomplete`)."""
        cost = estimate_text_tokens(text) + audio.duration_s(pcm) * 20
        if cost <= self.tokens_left:
            self.tokens_left -= cost
            return text, pcm
        share = max(0.0, self.tokens_left / cost) if cost else 0.0
        self.tokens_left, self.truncated = 0, True
        words = split_words(text, len(text.split()) or 1)
        keep = int(len(pcm) * share)
        return "".join(words[: int(len(words) * share)]), pcm[: keep - keep % 2]

    async def _frames(self, frames: list[tuple[str, int]], item_id: str | None = None) -> int:
        """Send serialised frames, each with the bytes of audio it carries; the response's first content frame
        waits for the first-audio deadline, and with an `output_rate` each later audio frame for its turn.

        Returns how many were sent: all of them unless the response was cancelled.
        """
        for sent, (frame, audio_bytes) in enumerate(frames):
            if self.cancelled:
                return sent
            if not self.content_sent and self.deadline is not None:
                late_ms = (time.perf_counter() - self.deadline) * 1000
                if late_ms > 0:
                    log.warning("response %s: first content ready %.1f ms after its deadline", self.state.id, late_ms)
                await self._until_deadline(self.deadline)
                if self.cancelled:
                    return sent
            elif audio_bytes and self.paced_from is not None and self.output_rate:
                await self._until_deadline(self.paced_from + self.audio_sent_s / self.output_rate)
                if self.cancelled:
                    return sent
            if audio_bytes and self.paced_from is None:
                self.paced_from = time.perf_counter()
            if self.stamp and not self.content_sent:
                # `selftest`: the send time on the shared monotonic clock separates the server's scheduling from
                # the client's receive delay. A non-standard field, added only when asked for.
                frame = f'{frame[:-1]}, "s2s_sent_at": {time.perf_counter():.6f}}}'
            await self.wire.send_frame(frame)
            if audio_bytes:
                self.audio_sent_s += audio_bytes / audio.BYTES_PER_SECOND
                if item_id is not None:
                    self.session.output_audio_sent(item_id, audio_bytes)
            if not self.content_sent:
                self.content_sent = True
                await self._after_first_content()
        return len(frames)

    async def _until_deadline(self, deadline: float) -> None:
        await until_deadline(deadline, self.woken, lambda: self.cancelled)

    async def _after_first_content(self) -> None:
        if self.draw.fault == "disconnect":
            self.wire.drop()
            raise Dropped
        if self.draw.fault == "malformed":
            await self.wire.send_frame(MALFORMED_FRAME)
