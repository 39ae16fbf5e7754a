"""How the runner classifies a failure, from the server's `error` event and from a refused handshake.

Error events are fed to the session machine as plain dicts (validated by the SDK's type). Refused handshakes come
from a real WebSocket server on a loopback port that answers HTTP 429 with `Retry-After`, as OpenAI's edge does
when too many sessions are open; the last test puts it in front of a reference server and runs the runner whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openai.types.realtime import RealtimeErrorEvent
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from s2s_eval.log import read_records
from s2s_eval.runners.client import Transport, run_session
from s2s_eval.runners.retry import RetryPolicy
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn
from tests.conftest import TIMING_SCALE
from tests.servers import serve_process, write_script

TIMEOUT_S = 10 * TIMING_SCALE


def session() -> SessionMachine:
    return SessionMachine(SessionPlan(session_update={"type": "realtime"}, turns=(UserTurn(text="Hello?"),),
                                      metadata={"sample_id": "s1"}))


# -- error events -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("error_type", "code", "kind", "error_class"), [
    # The type alone decides when there is no code, as some servers (and older API versions) send.
    ("rate_limit_error", None, "rate_limited", "rate_limited"),
    ("invalid_request_error", "rate_limit_exceeded", "rate_limited", "rate_limited"),
    ("authentication_error", None, "auth", "fatal"),
    ("permission_error", None, "auth", "fatal"),
    ("invalid_request_error", "invalid_api_key", "auth", "fatal"),
    ("invalid_request_error", "access_not_enabled", "auth", "fatal"),
    ("server_error", None, "server_error", "transient"),
    ("invalid_request_error", "session_expired", "session_expired", "transient"),
    ("invalid_request_error", "unknown_parameter", "invalid_request", "fatal"),
])
def test_an_error_event_is_classified_by_its_type_or_code(error_type: str, code: str | None, kind: str,
                                                          error_class: str) -> None:
    event = RealtimeErrorEvent.model_validate({"type": "error", "event_id": "event_9", "error": {
        "type": error_type, "code": code, "message": "Something went wrong.", "param": None, "event_id": None}})
    machine = session()
    assert machine.on_event(event.model_dump(), 0.0) == []
    assert machine.done and machine.error is not None
    assert (machine.error.kind, machine.error.error_class) == (kind, error_class)
    assert RetryPolicy().should_retry(machine.error, 1) is (error_class != "fatal")


# -- refused handshakes -----------------------------------------------------------------------------------------


@dataclass
class Gate:
    """A WebSocket server that refuses its first `refusals` handshakes with HTTP 429, then accepts."""

    refusals: int
    retry_after: str | None
    upstream: str | None = None  # accepted sessions are relayed there; without one they are closed at once
    url: str = ""
    handshakes: list[float] = field(default_factory=list)  # monotonic time of every handshake attempt

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append(time.monotonic())
        if len(self.handshakes) > self.refusals:
            return None
        response = connection.respond(429, "Too Many Requests: too many concurrent sessions\n")
        if self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response

    async def relay(self, client: ServerConnection) -> None:
        if self.upstream is None:
            return
        async with connect(self.upstream, max_size=None, proxy=None) as server:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pump(client, server))
                group.create_task(_pump(server, client))


async def _pump(source: ServerConnection | ClientConnection, sink: ServerConnection | ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in source:
            await sink.send(message)
    await sink.close()  # one side has gone: end the other, so both pumps finish


@contextlib.asynccontextmanager
async def gate(refusals: int, retry_after: str | None, upstream: str | None = None) -> AsyncIterator[Gate]:
    keeper = Gate(refusals, retry_after, upstream)
    async with serve(keeper.relay, "127.0.0.1", 0, process_request=keeper.check, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        keeper.url = f"ws://127.0.0.1:{port}/v1/realtime"
        yield keeper


@pytest.mark.parametrize(("retry_after", "retry_after_s"), [("2", 2.0), ("1.5", 1.5), (None, None)])
async def test_a_handshake_refused_with_429_is_rate_limited_with_the_retry_after_hint(
        retry_after: str | None, retry_after_s: float | None) -> None:
    async with gate(refusals=1, retry_after=retry_after) as keeper:
        machine = session()
        await run_session(Transport(keeper.url), machine, timeout_s=TIMEOUT_S)
    assert len(keeper.handshakes) == 1
    assert machine.error is not None
    assert (machine.error.kind, machine.error.error_class, machine.error.retry_after_s) == (
        "rate_limited", "rate_limited", retry_after_s)
    assert machine.error.message == "handshake rejected with HTTP 429"
    assert RetryPolicy().should_retry(machine.error, 1)


async def test_the_runner_waits_out_a_429_handshake_and_then_runs_the_sample(data_dir: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": "Yes."}]}])
    with serve_process("--engine", "scripted", "--script", str(script), log=tmp_path / "server.log") as upstream:
        async with gate(refusals=1, retry_after="1", upstream=upstream) as keeper:
            run_dir, summary = await execute(RunOptions(model="openai-compatible", eval="big_bench_audio", limit=1,
                                                        url=keeper.url, out=tmp_path / "run", data_dir=data_dir,
                                                        progress=False))
    [record] = read_records(run_dir)
    assert record["status"] == "ok" and record["attempts"] == 2, record["attempt_errors"]
    assert record["attempt_errors"] == [{"kind": "rate_limited", "class": "rate_limited",
                                         "message": "handshake rejected with HTTP 429"}]
    assert record["response_text"] == "Yes."
    # The retry waited for the hint (1 s), not the first exponential backoff (0.25 to 0.5 s).
    first, second = keeper.handshakes
    assert second - first >= 1.0
    assert summary["counts"]["ok"] == 1 and summary["complete"] is True
