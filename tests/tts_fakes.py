"""Loopback stand-ins for the online TTS services, for tests that cannot reach them: real HTTP and WebSocket servers
on port 0 that the real clients (`edge-tts`, the `openai` SDK) talk to unmodified.

`FakeEdge` speaks the Edge read-aloud WebSocket protocol as `edge-tts` expects it (speech.config, then SSML in;
turn.start, binary `Path:audio` frames of MP3, turn.end out). `FakeSpeech` serves `POST /v1/audio/speech` with a
WAV body. Both answer from a list of planned statuses (a status other than 200 fails that request) and record what
they were asked.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
from aiohttp import WSMsgType, web

SR = 24_000


def tone(seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def encoded(samples: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SR, format=fmt)
    return buffer.getvalue()


@dataclass
class _Plan:
    statuses: list[int] = field(default_factory=list)  # per request, in order; 200 once they run out
    requests: list[dict[str, Any]] = field(default_factory=list)

    def next_status(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


class _Server:
    def __init__(self) -> None:
        self.plan = _Plan()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeEdge(_Server):
    """`async with FakeEdge(statuses=[503]) as edge:` then set `edge_tts.communicate.WSS_URL = edge.url`."""

    def __init__(self, statuses: list[int] | None = None, audio: bytes | None = None) -> None:
        super().__init__()
        self.plan.statuses = list(statuses or [])
        self.mp3 = audio if audio is not None else encoded(tone(), "MP3")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/edge/v1?TrustedClientToken=fake"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/edge/v1", self._socket)
        return app

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        status = self.plan.next_status()
        if status != 200:
            return web.Response(status=status, text="planned failure")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen: dict[str, Any] = {"query": dict(request.query)}
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            if "Path:speech.config" in message.data:
                seen["config"] = message.data
            elif "Path:ssml" in message.data:
                seen["ssml"] = message.data.split("\r\n\r\n", 1)[1]
                self.plan.requests.append(seen)
                await self._speak(ws)
                break
        await ws.close()
        return ws

    async def _speak(self, ws: web.WebSocketResponse) -> None:
        await ws.send_str("X-RequestId:fake\r\nContent-Type:application/json; charset=utf-8\r\n"
                          "Path:turn.start\r\n\r\n{}")
        headers = b"X-RequestId:fake\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n"
        for start in range(0, len(self.mp3), 4096):
            await ws.send_bytes(len(headers).to_bytes(2, "big") + headers + self.mp3[start : start + 4096])
        await ws.send_str("X-RequestId:fake\r\nContent-Type:application/json; charset=utf-8\r\n"
                          "Path:turn.end\r\n\r\n{}")

    def voices(self) -> list[str]:
        return [m.group(1) for r in self.plan.requests for m in [re.search(r"<voice name='([^']+)'", r["ssml"])] if m]


class FakeSpeech(_Server):
    """An OpenAI-compatible `/v1/audio/speech` endpoint answering with `wav` (or a planned error status)."""

    def __init__(self, statuses: list[int] | None = None, wav: bytes | None = None) -> None:
        super().__init__()
        self.plan.statuses = list(statuses or [])
        self.wav = wav if wav is not None else encoded(tone(), "WAV")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/audio/speech", self._speech)
        return app

    async def _speech(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.plan.requests.append({"body": body, "authorization": request.headers.get("Authorization")})
        status = self.plan.next_status()
        if status != 200:
            return web.json_response({"error": {"message": f"planned HTTP {status}", "type": "fake"}},
                                     status=status)
        return web.Response(body=self.wav, content_type="audio/wav")
