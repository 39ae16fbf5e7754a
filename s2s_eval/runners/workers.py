"""Run a coroutine in several processes at once and hear from them in the parent, in order, one message at a time.

One process and one event loop saturate one core long before a 2-core machine is busy: at a few hundred paced
sessions the runner's own loop lag becomes the floor under every latency it measures. `run_workers` gives each job
its own spawned process and event loop. Everything a worker finishes comes back to the parent through a pipe, so the
parent stays the one writer of whatever the messages are written to (the run's journal).

Lifetimes, which are the point of this module:

- Workers start together: each sets itself up (imports, models), says it is ready, and waits; the parent then gives
  all of them one start time on the shared monotonic clock, so a worker that started first does not run its sessions
  while another is still loading (and paced starts are laid out from one instant, as in one process).
- A worker never outlives the parent: it watches the parent's sentinel and exits when the parent is gone, even one
  killed with SIGKILL (no orphan keeps talking to a paid API).
- Workers ignore SIGINT. Ctrl-C reaches the whole process group, but only the parent decides what it means: it is
  cancelled as before, stops the workers, and still hands over every message that had arrived.
- A worker that dies (killed, out of memory, a crash in a C extension) or fails (an exception) stops the others and
  becomes one exception in the parent: `WorkerCrashed`, or the worker's own `UserError` when it raised one (an
  unreachable endpoint says so in one line whichever process found it). Messages sent before stay delivered.

Spawned, not forked: the parent has threads (the TTS pool, tqdm's monitor), and forking a threaded process can copy a
lock in its held state.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from s2s_eval import loops
from s2s_eval.errors import UserError

__all__ = ["Link", "WorkerCrashed", "run_workers"]

J = TypeVar("J")

STOP_TIMEOUT_S = 5.0  # a terminated worker gets this long to go before it is killed
START_MARGIN_S = 0.05  # the common start lies this far ahead, so every worker has it in time

_MESSAGE, _READY, _DONE, _FAILED, _ENDED = "message", "ready", "done", "failed", "ended"


class WorkerCrashed(UserError):
    """A worker process died or failed. What it and the others had sent before was delivered."""


# --- in the worker --------------------------------------------------------------------------------------------------


def _exit_with_parent() -> None:
    """End this process as soon as the parent is gone (its sentinel becomes readable when it exits)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)  # no cleanup: there is nobody left to report to

    threading.Thread(target=watch, name="parent watcher", daemon=True).start()


class _Outbox:
    """Sends from a thread of its own, so a full pipe or a large pickle never stalls the worker's event loop."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._send_all, name="outbox", daemon=True)
        self.thread.start()

    def _send_all(self) -> None:
        while (item := self.pending.get()) is not None:
            self.conn.send(item)

    def put(self, kind: str, payload: Any) -> None:
        self.pending.put((kind, payload))

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join()
        self.conn.close()


class Link:
    """A worker's side of the parent: `send` messages to it; `await ready()` once set up, to start with the others."""

    def __init__(self, outbox: _Outbox, go: Connection) -> None:
        self._outbox = outbox
        self._go = go

    def send(self, message: Any) -> None:
        """Queue `message` for the parent (`on_message` there); returns at once."""
        self._outbox.put(_MESSAGE, message)

    async def ready(self) -> float:
        """Say this worker is set up; return, when every worker is, the common start time (`time.monotonic()`, the
        same clock in every process of the machine), having waited for it."""
        self._outbox.put(_READY, None)
        start_at: float = await asyncio.to_thread(self._go.recv)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        return start_at


Target = Callable[[J, Link], Awaitable[Any]]


def _failure(exc: BaseException) -> BaseException | str:
    """A `UserError` travels as itself (its one line is the message the user needs); anything else as its traceback,
    since an arbitrary exception may not survive pickling."""
    if isinstance(exc, UserError):
        with contextlib.suppress(Exception):
            pickle.loads(pickle.dumps(exc))
            return exc
    return "".join(traceback.format_exception(exc)).rstrip()


def _worker_main(target: Target[J], job: J, conn: Connection, go: Connection) -> None:
    """The body of a worker process: run `target(job, link)` on a fresh event loop and report how it ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _exit_with_parent()
    outbox = _Outbox(conn)
    try:
        result = loops.run(target(job, Link(outbox, go)))  # the loop the parent records (`loops.py`)
    except BaseException as exc:  # noqa: BLE001 - every way out is reported, then the process ends
        outbox.put(_FAILED, _failure(exc))
    else:
        outbox.put(_DONE, result)
    finally:
        outbox.close()


# --- in the parent --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Children spawned meanwhile start with SIGINT ignored (the disposition survives exec, and Python keeps it),
    so a Ctrl-C while a worker is still importing cannot kill it with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    go: Connection  # the parent's end of the start signal
    ready: bool = False
    finished: bool = False  # sent its result or its failure

    def describe(self, count: int) -> str:
        return f"worker {self.index + 1} of {count} (pid {self.process.pid})"

    def how_it_ended(self) -> str:
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
            return f"was killed by signal {-code}"
        return f"exited with code {code} without reporting"


class _Inbox:
    """What the workers sent, in arrival order: filled by one reader thread, emptied by the parent's event loop."""

    def __init__(self, workers: Sequence[_Worker]) -> None:
        self.items: queue.SimpleQueue[tuple[int, str, Any]] = queue.SimpleQueue()
        self.arrived = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._by_conn = {id(w.conn): w.index for w in workers}
        self._thread = threading.Thread(target=self._read, args=([w.conn for w in workers],), name="worker inbox",
                                        daemon=True)
        self._thread.start()

    def _read(self, conns: list[Connection]) -> None:
        live = list(conns)
        while live:
            for conn in multiprocessing.connection.wait(live):
                assert isinstance(conn, Connection)
                index = self._by_conn[id(conn)]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):  # the worker's end is closed: it has exited
                    live.remove(conn)
                    kind, payload = _ENDED, None
                self.items.put((index, kind, payload))
                with contextlib.suppress(RuntimeError):  # the loop may already be closed (interpreter exit)
                    self._loop.call_soon_threadsafe(self.arrived.set)

    async def get(self) -> tuple[int, str, Any]:
        while True:
            try:
                return self.items.get_nowait()
            except queue.Empty:
                self.arrived.clear()
                if not self.items.empty():
                    continue
                await self.arrived.wait()

    def drain(self, timeout_s: float) -> list[tuple[int, str, Any]]:
        """Everything still to come once every worker is gone (the reader ends at the last end of file)."""
        self._thread.join(timeout_s)
        items = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(self.items.get_nowait())
        return items


def _stop(workers: Sequence[_Worker]) -> None:
    """Terminate every worker still running; kill what does not go in time. Blocking, and brief."""
    for worker in workers:
        if worker.process.is_alive():
            worker.process.terminate()
    for worker in workers:
        worker.process.join(STOP_TIMEOUT_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


async def run_workers(jobs: Sequence[J], target: Target[J], on_message: Callable[[int, Any], None]) -> list[Any]:
    """Run `target(job, link)` for each job in its own spawned process; return each one's result, in job order.

    `target` must be a module-level coroutine function, each job picklable, and each target must await
    `link.ready()` once (the workers start together). Every `link.send(message)` arrives in the parent as
    `on_message(job index, message)`, on the parent's event loop, in the order each worker sent them. The first worker
    to die or fail stops the rest and raises here (see the module docstring); so does cancelling this call, which
    still delivers the messages that had arrived.
    """
    context = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []
    try:
        with _sigint_ignored():
            for index, job in enumerate(jobs):
                reader, writer = context.Pipe(duplex=False)
                go_reader, go_writer = context.Pipe(duplex=False)
                process = context.Process(target=_worker_main, args=(target, job, writer, go_reader), daemon=True,
                                          name=f"s2s-eval worker {index + 1}/{len(jobs)}")
                process.start()
                writer.close()  # the child holds the only write end: its exit is an end of file here
                go_reader.close()
                workers.append(_Worker(index, process, reader, go_writer))
    except BaseException:
        _stop(workers)
        raise
    inbox = _Inbox(workers)
    results: list[Any] = [None] * len(jobs)
    failure: BaseException | None = None
    ended = 0

    def handle(index: int, kind: str, payload: Any) -> BaseException | None:
        worker = workers[index]
        if kind == _MESSAGE:
            on_message(index, payload)
        elif kind == _READY:
            worker.ready = True
            if all(w.ready for w in workers):
                start_at = time.monotonic() + START_MARGIN_S
                for each in workers:
                    each.go.send(start_at)
        elif kind == _DONE:
            worker.finished = True
            results[index] = payload
        elif kind == _FAILED:
            worker.finished = True
            if isinstance(payload, BaseException):
                return payload
            print(f"s2s-eval: {worker.describe(len(jobs))} failed:\n{payload}", file=sys.stderr)
            return WorkerCrashed(f"{worker.describe(len(jobs))} failed: {payload.splitlines()[-1]} (traceback "
                                 "above); finished samples are journaled: fix the cause, then run again with --resume")
        elif not worker.finished:  # _ENDED before a word: the process died
            worker.process.join(STOP_TIMEOUT_S)
            return WorkerCrashed(f"{worker.describe(len(jobs))} {worker.how_it_ended()}; the samples it and the "
                                 "others finished are journaled: run the same command again with --resume")
        return None

    try:
        while ended < len(jobs) and failure is None:
            index, kind, payload = await inbox.get()
            ended += kind == _ENDED
            failure = handle(index, kind, payload)
    finally:
        _stop(workers)
        for index, kind, payload in inbox.drain(STOP_TIMEOUT_S):
            if kind == _MESSAGE:  # finished work is kept, whatever stopped the run
                on_message(index, payload)
        for worker in workers:
            worker.conn.close()
            worker.go.close()
    if failure is not None:
        raise failure
    return results
