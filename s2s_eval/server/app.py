"""The embedded reference Realtime server: WebSocket I/O, handshake checks, limits, `s2s-eval serve`.

Protocol state lives in `protocol.py`, response streaming in `streaming.py`; this module only accepts connections,
moves frames and enforces limits: message size (close 1009), concurrent sessions (HTTP 429), session duration
(`session_expired`, close 1001) and, when an API key is configured, authentication (HTTP 401). A non-loopback bind
needs a key. Beta-shaped clients (`OpenAI-Beta: realtime=v1`, the `openai-beta.realtime-v1` subprotocol, or
`--protocol beta`) are translated at the edge by `beta.py`, or refused as OpenAI does today (`--beta reject`).
`--protocol grok` makes every session behave as xAI Grok Voice documents it (`grok.py`).
`--protocol gemini` serves Gemini Live instead (`gemini_app.py`); `--tls-cert`/`--tls-key` serve wss://.
`--vad-min-speech-ms`, `--yield-delay-ms` and `--output-rate` make it a better or worse turn-taker on purpose
(`dynamics.py`); `--yield-delay-ms` is scheduled here, on the monotonic clock, from the arrival of the audio frame
that completed the VAD's detection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import os
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from s2s_eval import audio, jsonwire
from s2s_eval.errors import UserError
from s2s_eval.hosts import is_loopback_host
from s2s_eval.server import API_KEY_ENV, beta, gemini_app, grok, responses
from s2s_eval.server.dynamics import Dynamics
from s2s_eval.server.engines import Engine, Reply, make_engine
from s2s_eval.server.faults import Draw, FaultConfig, FaultPlan
from s2s_eval.server.limits import MAX_EVENT_DEPTH, nested_deeper_than
from s2s_eval.server.protocol import ProtocolError, RealtimeSession, ResponseState
from s2s_eval.server.streaming import RememberedSpeech, ResponseStream, Wire, sleep_until
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from s2s_eval.timing import frozen_heap

log = logging.getLogger("s2s_eval.server")

PATHS = ("/v1/realtime", "/realtime")
# One 15 MiB append, base64-encoded (20 MiB) in its JSON envelope, still fits: it earns an `error`, not a close.
MAX_MESSAGE_BYTES = 24 * 1024 * 1024
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
BETA_DISABLED = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    engine: str = "echo"
    script: Path | None = None
    first_audio_delay_ms: float | None = None
    model: str = "s2s-eval-reference"
    tts: TTSSettings = TTSSettings()
    compression: bool = False  # permessage-deflate costs milliseconds per audio frame; off unless asked
    faults: FaultConfig = FaultConfig()
    api_key: str | None = None
    protocol: Literal["ga", "beta", "grok", "gemini"] = "ga"
    beta: Literal["accept", "reject"] = "accept"
    max_sessions: int = 1000
    max_session_s: float = 3600.0
    max_buffer_s: float = 600.0
    stamp_send_time: bool = False  # add `s2s_sent_at` (monotonic) to each first content delta, for selftest
    tls_cert: Path | None = None  # serve wss:// with this certificate chain (PEM) and key
    tls_key: Path | None = None
    # Conversational dynamics (`dynamics.py`): the defaults are the plain server.
    vad_min_speech_ms: int = 0
    yield_delay_ms: float = 0.0
    output_rate: float | None = None

    def __post_init__(self) -> None:
        try:
            self.dynamics  # noqa: B018 -- validates the dynamics settings
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not is_loopback_host(self.host) and not self.api_key:
            raise UserError(f"binding {self.host} exposes the server beyond this machine: give it a key with "
                            f"--api-key or {API_KEY_ENV}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise UserError("TLS needs both --tls-cert and --tls-key")

    @property
    def dynamics(self) -> Dynamics:
        return Dynamics(vad_min_speech_ms=self.vad_min_speech_ms, yield_delay_ms=self.yield_delay_ms,
                        output_rate=self.output_rate)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"cannot load the TLS certificate {self.tls_cert} and key {self.tls_key}: {exc}") from None
        return context


@dataclass
class Shared:
    """State shared by all connections of one server."""

    config: ServerConfig
    engine: Engine
    speech: RememberedSpeech
    faults: FaultPlan
    sessions: int = 0
    session_numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_reply(self, session: Any, state: ResponseState, turns: Counter[str | None],
                   session_number: int) -> tuple[Reply, Draw, float | None]:
        """What one response does, whatever the protocol: the engine's reply (the n-th of its sample in this
        session, counted in `turns`), the fault drawn for it, and its first-audio delay (None: none scheduled)."""
        sample_id = state.sample_id
        reply = self.engine.reply(session, state, turns[sample_id])
        turns[sample_id] += 1
        draw = self.faults.draw(sample_id if sample_id is not None else f"session-{session_number}")
        delay_ms = reply.first_audio_delay_ms if reply.first_audio_delay_ms is not None else \
            self.config.first_audio_delay_ms
        if delay_ms is None and draw.jitter_ms:
            delay_ms = 0.0
        return reply, draw, delay_ms


def _offered(request: Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


def _wants_beta(request: Request, config: ServerConfig) -> bool:
    return (config.protocol == "beta" or request.headers.get("OpenAI-Beta", "").strip() == "realtime=v1"
            or BETA_SUBPROTOCOL in _offered(request))


def _authorised(request: Request, key: str) -> bool:
    offered = [p.removeprefix("openai-insecure-api-key.") for p in _offered(request)
               if p.startswith("openai-insecure-api-key.")]
    bearer = request.headers.get("Authorization", "")
    candidates = [bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else "",
                  request.headers.get("api-key", ""), *offered]
    return any(c and hmac.compare_digest(c.encode(), key.encode()) for c in candidates)


class Connection:
    """One client session: reads frames, answers protocol events, runs response streams."""

    def __init__(self, ws: ServerConnection, shared: Shared) -> None:
        self.ws, self.shared, self.config = ws, shared, shared.config
        request = ws.request
        assert request is not None
        self.query = parse_qs(urlsplit(request.path).query)
        self.beta = _wants_beta(request, self.config)
        self.grok = self.config.protocol == "grok"
        self.number = next(shared.session_numbers)
        self.session = RealtimeSession(model=(self.query.get("model") or [self.config.model])[0],
                                       max_buffer_bytes=int(self.config.max_buffer_s * audio.BYTES_PER_SECOND),
                                       dynamics=self.config.dynamics)
        self.turns: Counter[str | None] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.wire = Wire(send_frame=self.send_frame, drop=self.drop, session_id=self.session.session["id"])

    async def send_frame(self, frame: str) -> None:
        if self.beta:
            is_json = frame.startswith("{") and frame.endswith("}")
            translated = beta.server_event_to_beta(jsonwire.loads(frame)) if is_json else frame
            if translated is None:
                return
            frame = translated if isinstance(translated, str) else jsonwire.dumps(translated)
        elif self.grok and frame.startswith("{") and frame.endswith("}"):
            grok_event = grok.server_event_to_grok(jsonwire.loads(frame))
            if grok_event is None:
                return
            frame = jsonwire.dumps(grok_event)
        await self.ws.send(frame)

    async def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            await self.send_frame(jsonwire.dumps(event))

    def drop(self) -> None:
        """Lose the connection abruptly, as a network failure would: no close frame."""
        self.ws.transport.abort()

    async def fatal(self, exc: ProtocolError) -> None:
        """An error the real service ends the session for: `error`, then close 4000 with `<type>.<code>`."""
        await self.send(self.session.error(exc, None))
        await self.ws.close(4000, f"{exc.error_type}.{exc.code}")

    async def run(self) -> None:
        expiry = asyncio.get_running_loop().call_later(self.config.max_session_s, self._expire)
        try:
            if self.beta and self.config.beta == "reject":
                await self.fatal(ProtocolError("beta_api_shape_disabled", BETA_DISABLED))
                return
            if "call_id" in self.query or "intent" in self.query:
                what = "call_id (SIP/WebRTC sideband)" if "call_id" in self.query else "intent"
                await self.fatal(ProtocolError("invalid_intent", f"This reference server does not support {what} "
                                               "sessions; connect with ?model=... only."))
                return
            if self.grok:
                await self.send(*grok.first_events(self.session))
            else:
                await self.send(self.session.created(), *(beta.after_created(self.session) if self.beta else []))
            async for frame in self.ws:
                await self.on_frame(frame, time.perf_counter())
                # Reading a backlog of queued frames never suspends: yield, or one client's burst upload would
                # hold up every other session's scheduled first-audio send.
                await asyncio.sleep(0)
        except ConnectionClosed:
            pass  # a client may vanish at any moment; that ends the session, never the server
        finally:
            expiry.cancel()
            for task in self.tasks:
                task.cancel()

    def _expire(self) -> None:
        minutes = self.config.max_session_s / 60
        message = f"Your session hit the maximum duration of {minutes:g} minutes."
        exc = ProtocolError("session_expired", message)

        async def expire() -> None:
            with contextlib.suppress(ConnectionClosed):
                await self.send(self.session.error(exc, None))
                await self.ws.close(1001, message)

        self._spawn(expire())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def on_frame(self, frame: str | bytes, received: float) -> None:
        if isinstance(frame, bytes):
            exc = ProtocolError("invalid_event", "Binary frames are not supported; send JSON text frames.")
            await self.send(self.session.error(exc, None))
            return
        try:
            event = jsonwire.loads(frame)
            if nested_deeper_than(event, MAX_EVENT_DEPTH):
                raise RecursionError
        except (json.JSONDecodeError, RecursionError) as err:
            reason = err.msg if isinstance(err, json.JSONDecodeError) else \
                f"nested deeper than {MAX_EVENT_DEPTH} levels"
            exc = ProtocolError("invalid_json", f"The server could not parse the event as JSON: {reason}.")
            await self.send(self.session.error(exc, None))
            return
        if self.beta and isinstance(event, dict):
            event = beta.client_event_to_ga(event)
        elif self.grok and isinstance(event, dict):
            event = grok.client_event_to_ga(event)
        outcome = self.session.handle(event)
        await self.send(*outcome.events)
        for state in outcome.yields:
            self._spawn(self.yield_later(state, received + self.config.yield_delay_ms / 1000))
        for state in outcome.start:
            self._spawn(self.stream(state, received))

    async def yield_later(self, state: ResponseState, deadline: float) -> None:
        """Cancel a response a VAD barge-in interrupted, at `deadline` (one that ended meanwhile stays as it is);
        a turn that ended meanwhile is answered now, its first-audio delay counted from here."""
        await sleep_until(deadline)
        for started in self.session.yielded(state).start:
            self._spawn(self.stream(started, deadline))

    async def stream(self, state: ResponseState, received: float) -> None:
        reply, draw, delay_ms = self.shared.next_reply(self.session, state, self.turns, self.number)
        await ResponseStream(self.wire, self.session, state, reply, draw, self.shared.speech, delay_ms,
                             received, stamp=self.config.stamp_send_time, output_rate=self.config.output_rate).run()


def _handshake_check(shared: Shared) -> Callable[[ServerConnection, Request], Response | None]:
    def check(connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if shared.config.protocol == "gemini":
            # Google checks the key after the handshake (gemini_app.py): only the path and the load are checked here.
            if gemini_app.api_version(request) is None:
                return connection.respond(404, f"Not found: the Gemini Live endpoint is {gemini_app.DEFAULT_PATH}\n")
        elif path not in PATHS:
            return connection.respond(404, f"Not found: the Realtime endpoint is {PATHS[0]}\n")
        elif shared.config.api_key and not _authorised(request, shared.config.api_key):
            return connection.respond(401, "Unauthorized: send Authorization: Bearer <key> or api-key: <key>\n")
        if shared.sessions >= shared.config.max_sessions:
            log.warning("refused a session: %d open, the limit", shared.sessions)
            return connection.respond(429, f"Too many concurrent sessions (limit {shared.config.max_sessions})\n")
        return None

    return check


def _select_subprotocol(connection: ServerConnection, offered: Any) -> Any:
    # Browsers offer ["realtime", "openai-insecure-api-key.<key>"] and reject a handshake that selects none.
    return "realtime" if "realtime" in offered else None


@contextlib.asynccontextmanager
async def running(config: ServerConfig) -> AsyncIterator[tuple[Server, str]]:
    """Run the server in this event loop; yields the server and its ws:// (wss:// with TLS) URL (port 0 picks a
    free port)."""
    engine = make_engine(config.engine, config.script)
    speech = RememberedSpeech(Synthesizer(config.tts))
    # Only the first sentence of an answer must be ready at its first-audio deadline; have those at hand.
    first_sentences = [responses.sentences(text)[0] for text in engine.known_texts() if text.strip()]
    warmed = await asyncio.to_thread(speech.prepare, first_sentences, progress=False)
    if warmed:
        log.info("synthesised the first sentence of %d scripted answers", warmed)
    shared = Shared(config, engine, speech, FaultPlan(config.faults))

    async def handler(ws: ServerConnection) -> None:
        shared.sessions += 1
        try:
            await (gemini_app.GeminiConnection(ws, shared) if config.protocol == "gemini" else
                   Connection(ws, shared)).run()
        finally:
            shared.sessions -= 1

    async with serve(handler, config.host, config.port, compression="deflate" if config.compression else None,
                     max_size=MAX_MESSAGE_BYTES, process_request=_handshake_check(shared),
                     select_subprotocol=_select_subprotocol, ssl=config.ssl_context()) as server:
        host, port = next(iter(server.sockets)).getsockname()[:2]
        scheme = "wss" if config.tls_cert else "ws"
        path = gemini_app.DEFAULT_PATH if config.protocol == "gemini" else PATHS[0]
        yield server, f"{scheme}://{config.host}:{port}{path}"


async def serve_forever(config: ServerConfig, on_ready: Callable[[str], None], *,
                        until: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve until cancelled, or until `until()` returns (then every session is closed)."""
    async with running(config) as (server, url):
        on_ready(url)
        with frozen_heap():  # a full collection over the imports would hold up every due first audio
            if until is None:
                await server.serve_forever()
            else:
                await until()


async def stdin_closed() -> None:
    """Return when standard input reaches its end: the process holding the other end of the pipe has gone.

    A parent that starts the server with a pipe as its stdin thereby keeps it alive no longer than itself, even
    when the parent is killed with SIGKILL and cannot stop it.
    """
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(65536):
        pass
    log.info("standard input closed: stopping")


def api_key_from_env() -> str | None:
    return os.environ.get(API_KEY_ENV) or None


__all__ = ["ServerConfig", "api_key_from_env", "running", "serve_forever", "stdin_closed"]
