"""Which asyncio event loop the runner and the reference server use: uvloop where it is installed, else asyncio's.

uvloop (libuv underneath) does a socket read and a callback in less CPU than the standard loop, which at hundreds
of sessions per core is the difference between a loop that wakes on time and one that does not
(`benchmarks/latency_scale.py` prints both). It exists for Linux and macOS only; elsewhere, or when it is not
installed, the standard loop runs and the run says so (`spec.json` `host.event_loop`). `S2S_EVENT_LOOP=asyncio`
forces the standard loop (to compare, or to rule uvloop out when something looks wrong).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

LoopName = Literal["asyncio", "uvloop"]
LOOP_ENV = "S2S_EVENT_LOOP"
T = TypeVar("T")

__all__ = ["LOOP_ENV", "LoopName", "available", "current", "preferred", "run"]


def _uvloop() -> Any | None:
    if sys.platform not in ("linux", "darwin"):
        return None
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    return uvloop


def available() -> tuple[LoopName, ...]:
    """The loops this interpreter can run: always asyncio's, and uvloop when installed on Linux or macOS."""
    return ("asyncio", "uvloop") if _uvloop() is not None else ("asyncio",)


def preferred() -> LoopName:
    """uvloop when available, unless `S2S_EVENT_LOOP=asyncio` asks for the standard loop."""
    asked = os.environ.get(LOOP_ENV, "").strip().lower()
    if asked == "asyncio" or "uvloop" not in available():
        return "asyncio"
    return "uvloop"


def _factory(name: LoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        uvloop = _uvloop()
        if uvloop is None:
            raise RuntimeError("uvloop is not installed here (pip install uvloop; Linux and macOS only)")
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], loop: LoopName | None = None) -> T:
    """`asyncio.run(main)` on the named loop (default: `preferred()`)."""
    with asyncio.Runner(loop_factory=_factory(loop or preferred())) as runner:
        return runner.run(main)


def current() -> LoopName:
    """The loop running now (call from inside a coroutine)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
