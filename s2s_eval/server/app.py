"""The embedded reference Realtime server: WebSocket I/O, response timing, `s2s-eval serve`.

Protocol state lives in `protocol.py` and `responses.py`; this module only moves frames and keeps time. A
response's first content delta is sent exactly `first_audio_delay_ms` after its `response.create` frame arrived,
scheduled on the monotonic clock while speech is synthesised in a worker thread (not "sleep, then synthesise").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from s2s_eval import audio
from s2s_eval.datasets.tts import Synthesizer, TTSSettings
from s2s_eval.server import responses
from s2s_eval.server.engines import Engine, Reply, make_engine
from s2s_eval.server.protocol import ProtocolError, RealtimeSession, ResponseRequest

log = logging.getLogger("s2s_eval.server")

PATHS = ("/v1/realtime", "/realtime")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # one 15 MiB append, base64-encoded, fits with room to spare
# asyncio.sleep overshoots by 1-2 ms (measurement-notes.md): sleep until this close, then spin to the deadline.
SPIN_S = 0.002


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


async def sleep_until(deadline: float) -> None:
    """Wait until `deadline` (time.perf_counter) to within microseconds, without blocking the loop for long."""
    remaining = deadline - time.perf_counter()
    if remaining > SPIN_S:
        await asyncio.sleep(remaining - SPIN_S)
    while time.perf_counter() < deadline:
        pass


class Connection:
    """One client session: reads frames, answers protocol events, streams responses."""

    def __init__(self, ws: ServerConnection, engine: Engine, speech: Synthesizer, config: ServerConfig) -> None:
        self.ws, self.engine, self.speech, self.config = ws, engine, speech, config
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
        self.session = RealtimeSession(model=(query.get("model") or [config.model])[0])
        self.turns: Counter[str | None] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            await self.ws.send(json.dumps(event))

    async def run(self) -> None:
        try:
            await self.send(self.session.created())
            async for frame in self.ws:
                received = time.perf_counter()
                await self.on_frame(frame, received)
                # Reading a backlog of queued frames never suspends: yield, or one client's burst upload would
                # hold up every other session's scheduled first-audio send.
                await asyncio.sleep(0)
        except ConnectionClosed:
            pass  # a client may vanish at any moment; that ends the session, never the server
        finally:
            for task in self.tasks:
                task.cancel()

    async def on_frame(self, frame: str | bytes, received: float) -> None:
        if isinstance(frame, bytes):
            exc = ProtocolError("invalid_event", "Binary frames are not supported; send JSON text frames.")
            await self.send(self.session.error(exc, None))
            return
        try:
            event = json.loads(frame)
        except json.JSONDecodeError as err:
            exc = ProtocolError("invalid_json", f"The server could not parse the event as JSON: {err.msg}.")
            await self.send(self.session.error(exc, None))
            return
        events, request = self.session.handle(event)
        await self.send(*events)
        if request is not None:
            task = asyncio.create_task(self.respond(request, received))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def respond(self, request: ResponseRequest, received: float) -> None:
        """Stream one response; its first content delta goes out at `received + first_audio_delay_ms`.

        Speech is synthesised one sentence at a time in a worker thread, so only the first sentence has to be
        ready by the deadline, and the wait for the deadline overlaps that synthesis.
        """
        sample_id = (request.params.get("metadata") or {}).get("sample_id")
        reply = self.engine.reply(self.session, request, self.turns[sample_id])
        self.turns[sample_id] += 1
        delay_ms = reply.first_audio_delay_ms if reply.first_audio_delay_ms is not None else \
            self.config.first_audio_delay_ms
        ids, opening = responses.opening(self.session, request)
        item: dict[str, Any] | None = None
        try:
            await self.send(*opening)
            segments = self._segments(reply, ids.audio)
            output_audio_s = 0.0
            for index, (text, pcm) in enumerate(segments):
                if pcm is None:
                    pcm = await asyncio.to_thread(self.speech.speech, text) if text.strip() else b""
                output_audio_s += audio.duration_s(pcm)
                frames = [json.dumps(e) for e in responses.content_deltas(self.session, ids, text, pcm)]
                if index == 0 and delay_ms is not None:
                    # Serialised before the deadline, so the first frame leaves right at it.
                    await self._wait_for_deadline(received + delay_ms / 1000, ids.response_id)
                for frame in frames:
                    await self.ws.send(frame)
            closing, item = responses.closing(self.session, request, ids, reply.text, output_audio_s)
            await self.send(*closing)
        except ConnectionClosed:
            pass
        finally:
            self.session.finish_response(ids.response_id, [item] if item else [])

    @staticmethod
    def _segments(reply: Reply, speak: bool) -> list[tuple[str, bytes | None]]:
        """(text, speech) pieces of a reply; speech None = synthesise that sentence when its turn comes."""
        if not speak:
            return [(reply.text, b"")]
        if reply.pcm is not None:
            return [(reply.text, reply.pcm)]
        return [(sentence, None) for sentence in responses.sentences(reply.text)]

    @staticmethod
    async def _wait_for_deadline(deadline: float, response_id: str) -> None:
        late_ms = (time.perf_counter() - deadline) * 1000
        if late_ms > 0:
            log.warning("response %s: first audio ready %.1f ms after its deadline (synthesis too slow)",
                        response_id, late_ms)
        await sleep_until(deadline)


def _check_path(connection: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path).path.rstrip("/")
    if path not in PATHS:
        return connection.respond(404, f"Not found: the Realtime endpoint is {PATHS[0]}\n")
    return None


def _select_subprotocol(connection: ServerConnection, offered: Any) -> Any:
    # Browsers offer ["realtime", "openai-insecure-api-key.<key>"] and reject a handshake that selects none.
    return "realtime" if "realtime" in offered else None


@contextlib.asynccontextmanager
async def running(config: ServerConfig) -> AsyncIterator[tuple[Server, str]]:
    """Run the server in this event loop; yields the server and its ws:// URL (port 0 picks a free port)."""
    engine = make_engine(config.engine, config.script)
    speech = Synthesizer(config.tts)
    # Only the first sentence of an answer must be ready at its first-audio deadline; have those at hand.
    first_sentences = [responses.sentences(text)[0] for text in engine.known_texts() if text.strip()]
    warmed = await asyncio.to_thread(speech.prepare, first_sentences, progress=False)
    if warmed:
        log.info("synthesised the first sentence of %d scripted answers", warmed)

    async def handler(ws: ServerConnection) -> None:
        await Connection(ws, engine, speech, config).run()

    async with serve(handler, config.host, config.port, compression="deflate" if config.compression else None,
                     max_size=MAX_MESSAGE_BYTES, process_request=_check_path,
                     select_subprotocol=_select_subprotocol) as server:
        host, port = next(iter(server.sockets)).getsockname()[:2]
        yield server, f"ws://{config.host}:{port}{PATHS[0]}"


async def serve_forever(config: ServerConfig, on_ready: Callable[[str], None]) -> None:
    async with running(config) as (server, url):
        on_ready(url)
        await server.serve_forever()


__all__ = ["ServerConfig", "running", "serve_forever"]
