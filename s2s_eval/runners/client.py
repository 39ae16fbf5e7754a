"""The WebSocket side of a session: connect, move frames, pace uploads, stamp times. Decisions are the machine's.

Two tasks share a socket. The receiver stamps every frame with the monotonic clock before parsing it, has the
provider's codec normalise it to GA events (`s2s_eval.providers`) and feeds the machine; what the machine answers
goes to an outbox. The sender drains the outbox, in real time for audio when `pace="realtime"` (each append leaves
when the audio before it would have finished playing), has the codec encode each event, and stamps it as it is
handed to the socket; the event that starts a response's clock is stamped only once every frame queued before it
has left the process (a protocol with no turn-end acknowledgement, like Gemini's `activityEnd`, would otherwise
stamp time zero while a burst of audio is still queued ahead of it). The sender runs beside the receiver in one
TaskGroup
(`tasks.background`), so it never outlives the session and a cancellation always propagates. No
permessage-deflate is offered unless asked: it costs milliseconds per audio frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from s2s_eval import __version__, audio
from s2s_eval.hosts import is_loopback
from s2s_eval.providers import Codec
from s2s_eval.providers._openai import BetaCodec
from s2s_eval.runners.session import SessionMachine
from s2s_eval.runners.tasks import background

OPEN_TIMEOUT_S = 15
Pace = Literal["burst", "realtime"]


@dataclass(frozen=True)
class Transport:
    """Where and how to connect. `headers` may hold a secret: it is never logged, journaled or put in errors.

    `codec` makes each session's translator between the provider's frames and GA events (a profile's provider
    supplies it); without one, `protocol` picks OpenAI GA or beta.
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    protocol: Literal["ga", "beta"] = "ga"
    compression: bool = False
    codec: Callable[[], Codec] | None = None

    def new_codec(self) -> Codec:
        if self.codec is not None:
            return self.codec()
        return BetaCodec() if self.protocol == "beta" else Codec()

    @property
    def safe_url(self) -> str:
        return self.url.split("?")[0]


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "invalid_request"


async def run_session(transport: Transport, machine: SessionMachine, *, timeout_s: float,
                      pace: Pace = "burst", exchange: Exchange | None = None) -> None:
    """Drive `machine` over one WebSocket session until it is done; failures end up in `machine.error`.

    `timeout_s` is a turn timeout: the session fails when that long passes without progress, counted from the
    connection attempt, the last audio sent (a paced upload of a long question never counts against it) and the
    last `response.done` (each tool round and each turn gets its own). Safe to cancel: cancellation closes the
    socket and propagates. `exchange` moves the frames once connected (default: turn by turn; the full-duplex
    streaming of `duplex.py` brings its own).
    """
    codec = transport.new_codec()
    headers = {**transport.headers, **({"OpenAI-Beta": "realtime=v1"} if transport.protocol == "beta" else {}),
               **codec.session_headers(machine.plan.metadata)}
    try:
        async with asyncio.timeout(timeout_s) as deadline:
            progress = Progress(deadline, timeout_s)
            async with connect(transport.url, additional_headers=headers, max_size=None,
                               compression="deflate" if transport.compression else None, open_timeout=OPEN_TIMEOUT_S,
                               proxy=None if is_loopback(transport.url) else True,
                               user_agent_header=f"s2s-eval/{__version__}") as ws:
                await (exchange or _exchange)(ws, machine, codec, pace, progress)
    except TimeoutError:
        machine.abort("timeout", f"no progress for {timeout_s:g} s (turn timeout)")
    except InvalidStatus as exc:
        status = exc.response.status_code
        retry_after = exc.response.headers.get("Retry-After")
        machine.abort(_status_kind(status), f"handshake rejected with HTTP {status}",
                      float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else "no close frame"
        classified = codec.closed(exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else None
        machine.abort(*(classified or ("disconnect", f"connection closed by the server ({code})")))
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        machine.abort("connect", f"cannot connect to {transport.safe_url}: {type(exc).__name__}: {exc}")


@dataclass
class Progress:
    """Pushes the turn timeout forward whenever the session makes progress."""

    deadline: asyncio.Timeout
    timeout_s: float

    def made(self) -> None:
        self.deadline.reschedule(asyncio.get_running_loop().time() + self.timeout_s)


Exchange = Callable[[ClientConnection, SessionMachine, Codec, Pace, Progress], Awaitable[None]]


async def _exchange(ws: ClientConnection, machine: SessionMachine, codec: Codec, pace: Pace,
                    progress: Progress) -> None:
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with background(_send(ws, outbox, machine, codec, pace, progress)):
        if feed(machine, codec.opened(), time.perf_counter(), outbox, progress):
            return
        await receive(ws, machine, codec, outbox, progress)


def feed(machine: SessionMachine, events: list[dict[str, Any]], received: float,
          outbox: asyncio.Queue[dict[str, Any]], progress: Progress) -> bool:
    """Give the machine normalised events; True when the session is done."""
    for event in events:
        if event.get("type") == "response.done":
            progress.made()
        for out in machine.on_event(event, received):
            outbox.put_nowait(out)
        if machine.done:
            return True
    return False


async def receive(ws: ClientConnection, machine: SessionMachine, codec: Codec,
                   outbox: asyncio.Queue[dict[str, Any]], progress: Progress) -> None:
    async for frame in ws:
        received = time.perf_counter()
        try:
            events = codec.decode(frame)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            what = "not JSON" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) else str(exc)
            machine.abort("protocol", f"malformed server event ({what}): {str(frame)[:120]!r}")
            return
        if feed(machine, events, received, outbox, progress):
            return
    machine.abort("disconnect", "the server closed the session before it was done")


async def _flushed(ws: ClientConnection) -> None:
    """Wait until every frame written so far has left this process (is in the kernel's hands).

    The transport's write-buffer limits are dropped to zero for the wait, so websockets' own flow control (`drain`)
    resumes exactly when the buffer is empty; then they are put back.
    """
    transport = ws.transport
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        await ws.drain()
    finally:
        transport.set_write_buffer_limits(high=high, low=low)


def _audio_seconds(event: dict[str, Any]) -> float:
    data = event.get("audio") or ""
    return (len(data) * 3 // 4 - data[-2:].count("=")) / audio.BYTES_PER_SECOND


async def _send(ws: ClientConnection, outbox: asyncio.Queue[dict[str, Any]], machine: SessionMachine, codec: Codec,
                pace: Pace, progress: Progress) -> None:
    paced_until: float | None = None  # when the audio sent so far in this upload would have finished playing
    while True:
        event = await outbox.get()
        if event["type"] == "input_audio_buffer.append" and pace == "realtime":
            now = time.perf_counter()
            if paced_until is None or event.get("event_id") in machine.upload_starts:
                paced_until = now  # each upload starts its own clock
            if paced_until > now:
                await asyncio.sleep(paced_until - now)
            paced_until += _audio_seconds(event)
        frames = codec.encode(event)
        if machine.starts_clock(event):
            await _flushed(ws)
        # Stamped just before the write: a loopback write can wake the server and preempt this process
        # before `send` returns, so a stamp taken afterwards may fall after the server already has the event.
        machine.sent(event, time.perf_counter())
        try:
            for frame in frames:
                await ws.send(frame)
        except ConnectionClosed:
            return  # the receiver reads what the server sent before closing (often an `error` saying why) and reports
        if event["type"] == "input_audio_buffer.append":
            progress.made()
        if feed(machine, codec.replies(), time.perf_counter(), outbox, progress):
            await ws.close()  # the receiver is waiting on the socket: closing ends its loop
            return
        if outbox.empty() or pace == "burst":
            await asyncio.sleep(0)  # a burst never waits on the socket: let other sessions' frames be stamped
