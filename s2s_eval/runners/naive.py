"""The naive baseline client of `measurement-notes.md`, kept as the yardstick the runner is measured against.

Deliberately plain: raw `websockets` (no permessage-deflate), `json`, `base64`, one coroutine per session, no
state machine. It configures a manual turn, streams the clip in 100 ms base64 chunks (back to back, or each when
the audio before it would have finished playing), commits, sends `response.create` (time zero, stamped just before
the write) and stamps `time.perf_counter()` when the first `response.output_audio.delta` frame arrives, before
parsing it. `selftest` and `benchmarks/latency_scale.py` run it against the same server as the runner, so every
figure can be given as a ratio to this floor. Not used by runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass

from websockets.asyncio.client import connect

from s2s_eval import audio

CHUNK_MS = 100
SESSION_UPDATE = {"type": "session.update", "session": {
    "type": "realtime", "output_modalities": ["audio"],
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}, "turn_detection": None}}}}


@dataclass(frozen=True)
class NaiveTurn:
    """One turn's stamps on the monotonic clock (seconds); `server_sent_at` is the server's stamp, if any."""

    t_zero: float
    first_audio_at: float
    server_sent_at: float | None


async def naive_turn(url: str, pcm: bytes, pace: str, timeout_s: float = 60) -> NaiveTurn:
    """One session, one manual turn, until `response.done`; raises on any failure."""
    async with asyncio.timeout(timeout_s), connect(url, compression=None, max_size=None, proxy=None) as ws:
        await ws.send(json.dumps(SESSION_UPDATE))
        size = audio.BYTES_PER_SECOND * CHUNK_MS // 1000
        started = time.perf_counter()
        for index, offset in enumerate(range(0, len(pcm), size)):
            if pace == "realtime":
                await asyncio.sleep(max(0.0, started + index * CHUNK_MS / 1000 - time.perf_counter()))
            chunk = base64.b64encode(pcm[offset : offset + size]).decode("ascii")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        t_zero = time.perf_counter()
        await ws.send(json.dumps({"type": "response.create"}))
        first: tuple[float, float | None] | None = None
        async for frame in ws:
            received = time.perf_counter()
            event = json.loads(frame)
            kind = event.get("type")
            if kind == "response.output_audio.delta" and first is None:
                first = (received, event.get("s2s_sent_at"))
            elif kind == "error":
                raise RuntimeError(f"server error: {event.get('error')}")
            elif kind == "response.done":
                break
        if first is None:
            raise RuntimeError("the response had no audio")
        return NaiveTurn(t_zero, first[0], first[1])
