"""The WebSocket side of a turn: connect, move frames, stamp times. All protocol decisions are the machine's.

Every received frame is stamped with the monotonic clock before it is parsed; every sent event is stamped as
it is handed to the socket. No permessage-deflate is offered unless the profile asks (it costs milliseconds per
audio frame).
"""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from s2s_eval import __version__
from s2s_eval.runners.events import normalise
from s2s_eval.runners.profile import is_loopback
from s2s_eval.runners.session import TurnMachine

OPEN_TIMEOUT_S = 15


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "connect"


async def run_turn(url: str, headers: dict[str, str], machine: TurnMachine, *, timeout_s: float,
                   compression: bool = False) -> None:
    """Drive `machine` over one WebSocket session until it is done; failures end up in `machine.error`.

    Safe to cancel: cancellation closes the socket and propagates.
    """
    try:
        async with asyncio.timeout(timeout_s):
            async with connect(url, additional_headers=headers, compression="deflate" if compression else None,
                               max_size=None, open_timeout=OPEN_TIMEOUT_S,
                               proxy=None if is_loopback(url) else True,
                               user_agent_header=f"s2s-eval/{__version__}") as ws:
                await _pump(ws, machine)
    except TimeoutError:
        machine.abort("timeout", f"no response.done within {timeout_s:g} s")
    except InvalidStatus as exc:
        status = exc.response.status_code
        machine.abort(_status_kind(status), f"handshake rejected with HTTP {status}")
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else "no close frame"
        machine.abort("disconnect", f"connection closed by the server ({code})")
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        machine.abort("connect", f"cannot connect to {url.split('?')[0]}: {type(exc).__name__}: {exc}")


async def _pump(ws, machine: TurnMachine) -> None:  # type: ignore[no-untyped-def]
    async for frame in ws:
        received = time.perf_counter()
        try:
            event = json.loads(frame)
        except (json.JSONDecodeError, UnicodeDecodeError):
            machine.abort("protocol", f"malformed server event (not JSON): {str(frame)[:120]!r}")
            return
        if not isinstance(event, dict):
            machine.abort("protocol", f"malformed server event (not an object): {str(frame)[:120]!r}")
            return
        for out in machine.on_event(normalise(event), received):
            frame_out = json.dumps(out)
            # Stamped just before the write: a loopback write can wake the server and preempt this process
            # before `send` returns, so a stamp taken afterwards may fall after the server already has the event.
            machine.sent(out, time.perf_counter())
            await ws.send(frame_out)
            # A burst of appends never waits on the socket; yield so other sessions' frames are stamped on time.
            await asyncio.sleep(0)
        if machine.done:
            return
    machine.abort("disconnect", "the server closed the session before response.done")
