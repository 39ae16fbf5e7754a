"""The reference server's Gemini Live connections (`s2s-eval serve --protocol gemini`): frames in, frames out.

Protocol state is `gemini.py`, turn streaming `gemini_stream.py`; this module moves frames, checks the key and
enforces the session limit. As Google's server does, it sends every message as JSON in a binary frame, takes
JSON in text or binary frames, and ends a session by closing the WebSocket with a code and a reason (never an
error message). A key (`--api-key`) is checked after the handshake, as Google closes rather than refusing it
over HTTP: `x-goog-api-key: <key>` (what the SDK sends) or `?key=<key>`. The session's sample id, which picks
the scripted answers and the fault draws, is the `X-S2S-Sample-Id` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from s2s_eval.server import gemini_wire as wire
from s2s_eval.server.gemini import GeminiSession
from s2s_eval.server.gemini_stream import GeminiWire, TurnStream
from s2s_eval.server.gemini_wire import GeminiClose
from s2s_eval.server.limits import MAX_EVENT_DEPTH, nested_deeper_than
from s2s_eval.server.protocol import ResponseState
from s2s_eval.server.streaming import sleep_until

if TYPE_CHECKING:
    from s2s_eval.server.app import Shared

log = logging.getLogger("s2s_eval.server")

# v1beta and v1alpha are documented; google-genai 3.6.1 dials v1 unless told otherwise.
PATH = re.compile(r"^/ws/google\.ai\.generativelanguage\.(v1|v1alpha|v1beta)\.GenerativeService\.BidiGenerateContent$")
DEFAULT_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
SAMPLE_HEADER = "X-S2S-Sample-Id"
# [I] Google's lead time for `goAway` is not documented; the one example seen said 50 s.
GO_AWAY_LEAD_S = 50.0


def api_version(request: Request) -> str | None:
    match = PATH.match(urlsplit(request.path).path.rstrip("/"))
    return match.group(1) if match else None


def key_problem(request: Request, key: str | None) -> GeminiClose | None:
    """The close Google answers a missing or wrong key with [I]; None when the key is right or none is required."""
    if not key:
        return None
    given = request.headers.get("x-goog-api-key") or (parse_qs(urlsplit(request.path).query).get("key") or [""])[0]
    if not given:
        return GeminiClose(1008, wire.NO_KEY)
    if not hmac.compare_digest(given.encode(), key.encode()):
        return GeminiClose(1007, wire.BAD_KEY)
    return None


class GeminiConnection:
    """One Gemini Live session: reads frames, answers messages, runs model turns."""

    def __init__(self, ws: ServerConnection, shared: Shared) -> None:
        self.ws, self.shared, self.config = ws, shared, shared.config
        request = ws.request
        assert request is not None
        self.request = request
        self.number = next(shared.session_numbers)
        self.session = GeminiSession(sample_id=request.headers.get(SAMPLE_HEADER) or None,
                                     api_version=api_version(request) or "v1beta", dynamics=self.config.dynamics)
        self.turns: Counter[str | None] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.wire = GeminiWire(send=self.send, close=self.close, drop=self.drop)

    async def send(self, message: dict[str, Any] | bytes) -> None:
        """Send one message, JSON in a binary frame as Google does (bytes are sent as they are)."""
        await self.ws.send(message if isinstance(message, bytes) else json.dumps(message).encode())

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, wire.truncate_reason(reason))

    def drop(self) -> None:
        """Lose the connection abruptly, as a network failure would: no close frame."""
        self.ws.transport.abort()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        limit_s = self.config.max_session_s
        timers = [loop.call_later(max(0.0, limit_s - min(GO_AWAY_LEAD_S, limit_s / 2)), self._go_away),
                  loop.call_later(limit_s, self._expire)]
        try:
            problem = key_problem(self.request, self.config.api_key)
            if problem is not None:
                await self.close(problem.code, problem.reason)
                return
            async for frame in self.ws:
                await self.on_frame(frame, time.perf_counter())
                await asyncio.sleep(0)  # a burst of queued frames must not hold up other sessions' deadlines
        except GeminiClose as exc:
            log.info("gemini session %d closed: %d %s", self.number, exc.code, exc.reason)
            await self.close(exc.code, exc.reason)
        except ConnectionClosed:
            pass  # a client may vanish at any moment; that ends the session, never the server
        finally:
            for timer in timers:
                timer.cancel()
            for task in self.tasks:
                task.cancel()

    async def on_frame(self, frame: str | bytes, received: float) -> None:
        """Handle one client frame; raises `GeminiClose` for what ends the session."""
        try:
            message = json.loads(frame)
            if nested_deeper_than(message, MAX_EVENT_DEPTH):
                raise RecursionError
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise wire.invalid("Invalid JSON payload received.") from None
        outcome = self.session.handle(message)
        for reply in outcome.messages:
            await self.send(reply)
        for state in outcome.yields:
            self._spawn(self.yield_later(state, received + self.config.yield_delay_ms / 1000))
        for state in outcome.start:
            self._spawn(self.stream(state, received))

    async def yield_later(self, state: ResponseState, deadline: float) -> None:
        """Cut a model turn the VAD heard the user interrupt, at `deadline`; one that ended meanwhile stays so."""
        await sleep_until(deadline)
        if self.session.active is state and state.cancel_reason is None:
            state.cancel("interrupted")

    async def stream(self, state: ResponseState, received: float) -> None:
        reply, draw, delay_ms = self.shared.next_reply(self.session, state, self.turns, self.number)
        with contextlib.suppress(ConnectionClosed):
            await TurnStream(self.wire, self.session, state, reply, draw, self.shared.speech, delay_ms,
                             received, output_rate=self.config.output_rate).run()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _go_away(self) -> None:
        async def go_away() -> None:
            with contextlib.suppress(ConnectionClosed):
                await self.send(wire.go_away(min(GO_AWAY_LEAD_S, self.config.max_session_s / 2)))

        self._spawn(go_away())

    def _expire(self) -> None:
        async def expire() -> None:
            with contextlib.suppress(ConnectionClosed):
                await self.close(1008, f"Session time limit ({self.config.max_session_s:g} s) exceeded.")  # [I]

        self._spawn(expire())

