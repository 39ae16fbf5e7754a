"""Cancelling a session or the loop-lag monitor: `CancelledError` propagates at once and no task is left behind.

A run shuts down by cancelling its workers (a TaskGroup after a failure, Ctrl-C, a timeout). A worker that swallows
the cancellation keeps going, and whoever cancelled it waits. The sessions here run against a real `s2s-eval serve`
on a free loopback port; "as it ends" cases cancel at the moment the old hand-written cleanup (`await task` under
`suppress(CancelledError)`) lost the caller's cancellation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s2s_eval.runners.client import Transport, run_session
from s2s_eval.runners.looplag import LoopLagMonitor
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn
from s2s_eval.runners.tasks import background
from tests.conftest import TIMING_SCALE
from tests.servers import serve_process

PROMPT_S = 2.0 * TIMING_SCALE  # a cancelled session closes its socket on loopback; far below any turn timeout
TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}


def plan() -> SessionPlan:
    return SessionPlan(session_update=TEXT_ONLY, turns=(UserTurn(text="Hello?"),), metadata={"sample_id": "s1"})


class CancelledAsItEnds(SessionMachine):
    """Its caller's cancellation lands just as the last `response.done` ends the session."""

    def on_event(self, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        out = super().on_event(event, t)
        if self.done:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
        return out


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with serve_process("--engine", "echo") as url:
        yield url


@pytest.fixture(scope="module")
def stalling_url() -> Iterator[str]:
    """Every response stalls after `response.created` until the client goes away."""
    with serve_process("--engine", "echo", "--faults", "stall", "--fault-rate", "1") as url:
        yield url


async def until(condition: Callable[[], object], timeout_s: float = 10 * TIMING_SCALE) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def assert_cancel_propagates(task: asyncio.Task[Any], others: set[asyncio.Task[Any]],
                                   cancel: bool = True) -> None:
    """`task` ends in CancelledError within PROMPT_S, and the tasks alive afterwards are exactly `others`."""
    started = time.monotonic()
    if cancel:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < PROMPT_S
    assert asyncio.all_tasks() == others


# -- sessions ---------------------------------------------------------------------------------------------------


async def test_cancelling_a_session_mid_response_propagates_and_leaves_no_task(stalling_url: str) -> None:
    others = asyncio.all_tasks()
    machine = SessionMachine(plan())
    session = asyncio.create_task(run_session(Transport(stalling_url), machine, timeout_s=60 * TIMING_SCALE))
    await until(lambda: machine.responses)  # response.created: the server now sends nothing more
    await assert_cancel_propagates(session, others)
    assert machine.error is None  # cancelled, not failed: the sample is not recorded as an error


async def test_a_cancellation_landing_as_the_session_ends_still_propagates(echo_url: str) -> None:
    others = asyncio.all_tasks()
    machine = CancelledAsItEnds(plan())
    session = asyncio.create_task(run_session(Transport(echo_url), machine, timeout_s=30 * TIMING_SCALE))
    await until(session.done)
    await assert_cancel_propagates(session, others, cancel=False)
    assert machine.done and machine.error is None and machine.final() is not None


# -- loop-lag monitor -------------------------------------------------------------------------------------------


async def test_cancelling_inside_the_loop_lag_monitor_propagates_and_leaves_no_task() -> None:
    others = asyncio.all_tasks()
    monitor = LoopLagMonitor(interval_s=0.005)
    entered = asyncio.Event()

    async def watched() -> None:
        async with monitor.running():
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(watched())
    await entered.wait()
    await asyncio.sleep(0.05)
    await assert_cancel_propagates(task, others)
    assert len(monitor.lag_ms) > 0


async def test_a_cancellation_landing_as_the_monitored_block_ends_still_propagates() -> None:
    others = asyncio.all_tasks()

    async def watched() -> None:
        async with LoopLagMonitor(interval_s=0.005).running():
            await asyncio.sleep(0.02)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # delivered at the next await: the monitor's cleanup

    task = asyncio.create_task(watched())
    await until(task.done)
    await assert_cancel_propagates(task, others, cancel=False)


# -- the helper both use -----------------------------------------------------------------------------------------


async def test_a_failing_background_task_cancels_the_block_and_raises_its_own_exception() -> None:
    cancelled = asyncio.Event()

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise KeyError("sender bug")

    with pytest.raises(KeyError, match="sender bug"):
        async with background(fails()):
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
    assert cancelled.is_set()


async def test_a_failing_block_cancels_the_background_task_and_raises_its_own_exception() -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(ValueError, match="receiver") as raised:
        async with background(forever()) as task:
            await asyncio.sleep(0.01)
            raise ValueError("receiver") from OSError("cause")
    assert task.cancelled()
    assert isinstance(raised.value.__cause__, OSError)  # the exception is the block's own, cause and all
