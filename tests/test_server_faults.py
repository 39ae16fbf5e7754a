"""Fault injection of the reference server, seen from a raw WebSocket client.

Each fault kind at rate 1.0 drives a real audio turn (echo engine, real speech) and checks exactly what the
client sees, as `streaming.py` documents it; every JSON frame is validated against the `openai` SDK's server
event union. Then: the server logs each fault with its session and sample, the fault plan is deterministic in
(seed, sample id, attempt) whatever the arrival order, jitter stays in range, and the session survives the
non-fatal faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from s2s_eval import audio
from s2s_eval.server.app import ServerConfig, running
from s2s_eval.server.faults import FaultConfig, FaultPlan
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from tests.conftest import TIMING_SCALE
from tests.test_server_sdk import MANUAL_SESSION, SERVER_EVENT

RECV_TIMEOUT_S = 10.0 * TIMING_SCALE
# How long the client listens to a stalled response. Unfaulted, the echo answer streams in full within ~10 ms
# here, so any frame the stall let through would arrive well inside this window.
STALL_WINDOW_S = 1.0 * TIMING_SCALE
NON_FATAL = ("rate_limit", "server_error", "malformed")


@pytest.fixture(scope="module")
def speech() -> bytes:
    return Synthesizer(TTSSettings()).speech("What is two plus two?")


class Client:
    """A raw client: keeps every frame, parses JSON ones and validates each against the SDK's event union."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any] | str] = []  # a str = a frame that was not JSON
        self.failures: list[str] = []
        self.session_id = ""

    async def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> dict[str, Any] | str:
        raw = await asyncio.wait_for(self.ws.recv(), timeout_s)
        assert isinstance(raw, str), "the server sent a binary frame"
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            self.frames.append(raw)
            return raw
        try:
            SERVER_EVENT.validate_python(event)
        except ValidationError as exc:
            self.failures.append(f"{event.get('type')}: {exc}")
        self.frames.append(event)
        return event

    async def until(self, *types: str) -> list[dict[str, Any] | str]:
        """Frames up to and including the first event of one of `types`."""
        seen = []
        while True:
            seen.append(await self.recv())
            if isinstance(seen[-1], dict) and seen[-1]["type"] in types:
                return seen

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def user_turn(self, pcm: bytes) -> None:
        """Manual turn detection, then one committed user audio item."""
        await self.send("session.update", session=MANUAL_SESSION)
        await self.until("session.updated")
        for chunk in audio.chunks(pcm, 200):
            await self.send("input_audio_buffer.append", audio=audio.b64(chunk))
        await self.send("input_audio_buffer.commit")
        await self.until("conversation.item.done")

    async def response(self, sample_id: str, event_id: str) -> None:
        await self.send("response.create", event_id=event_id, response={"metadata": {"sample_id": sample_id}})

    async def settle(self) -> list[dict[str, Any] | str]:
        """Everything still in flight: a `clear` is answered in order, so whatever precedes `cleared` came first."""
        await self.send("input_audio_buffer.clear", event_id="evt_settle")
        return (await self.until("input_audio_buffer.cleared"))[:-1]


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[Client]:
    async with connect(url, compression=None, max_size=None) as ws:
        c = Client(ws)
        created = await c.recv()
        assert isinstance(created, dict) and created["type"] == "session.created"
        c.session_id = created["session"]["id"]
        yield c


def faulted(kind: str, rate: float = 1.0, seed: int = 7) -> ServerConfig:
    return ServerConfig(port=0, engine="echo", faults=FaultConfig(kinds=(kind,), rate=rate, seed=seed))


def types_of(frames: list[dict[str, Any] | str]) -> list[str]:
    return [f["type"] if isinstance(f, dict) else "<not json>" for f in frames]


def fault_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The server's fault lines; and a fault is never an internal error (a crashed handler or stream)."""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    messages = [r.getMessage() for r in caplog.records if r.name == "s2s_eval.server"]
    return [m for m in messages if m.startswith("fault ")]


# -- each fault, at rate 1.0 ---------------------------------------------------------------------------------------


async def test_disconnect_drops_the_socket_after_the_first_audio_delta(speech: bytes,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(faulted("disconnect")) as (_, url):
        async with client(url) as c:
            await c.user_turn(speech)
            await c.response("q1", "evt_resp")
            with pytest.raises(ConnectionClosedError) as closed:
                while True:
                    await c.recv()
            # No close frame either way: websockets reports the abnormal closure code 1006.
            assert closed.value.rcvd is None and c.ws.close_code == 1006
            kinds = types_of(c.frames)
            turn = kinds[kinds.index("response.created"):]
            assert turn[-1] == "response.output_audio.delta"
            assert turn.count("response.output_audio.delta") == 1  # dropped right after the first one
            assert "response.done" not in turn
            session_id = c.session_id
        # The server survives the dropped session and serves the next one.
        async with client(url) as fresh:
            await fresh.send("input_audio_buffer.clear")
            assert (await fresh.recv())["type"] == "input_audio_buffer.cleared"
    assert c.failures == [] and fresh.failures == []
    assert any(f"fault disconnect: session {session_id} sample q1 " in m for m in fault_logs(caplog))


async def test_rate_limit_answers_with_an_error_and_no_response(speech: bytes,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(faulted("rate_limit")) as (_, url), client(url) as c:
        await c.user_turn(speech)
        await c.response("q1", "evt_resp_1")
        frames = await c.until("error")
        frames += await c.settle()
    assert types_of(frames) == ["rate_limits.updated", "error"]  # and no response.created, before or after
    assert all(limit["remaining"] == 0 for limit in frames[0]["rate_limits"])
    error = frames[1]["error"]
    assert error["code"] == "rate_limit_exceeded" and error["event_id"] == "evt_resp_1"
    hint = re.search(r"try again in (\d+(?:\.\d+)?)s", error["message"])
    assert hint and float(hint.group(1)) > 0, error["message"]
    assert c.failures == []
    assert any(f"fault rate_limit: session {c.session_id} sample q1 " in m for m in fault_logs(caplog))


async def test_invalid_request_refuses_the_response_and_keeps_the_session(speech: bytes,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(faulted("invalid_request")) as (_, url), client(url) as c:
        await c.user_turn(speech)
        await c.response("q1", "evt_resp_1")
        frames = await c.until("error")
        frames += await c.settle()  # the session is still open and answering
    assert types_of(frames) == ["error"]  # and no response.created, before or after
    error = frames[0]["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
    assert error["param"] == "response" and error["event_id"] == "evt_resp_1"
    assert c.failures == []
    assert any(f"fault invalid_request: session {c.session_id} sample q1 " in m for m in fault_logs(caplog))


async def test_server_error_fails_the_response(speech: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(faulted("server_error")) as (_, url), client(url) as c:
        await c.user_turn(speech)
        await c.response("q1", "evt_resp")
        frames = await c.until("response.done")
        frames += await c.settle()
    assert types_of(frames) == ["response.created", "rate_limits.updated", "response.done"]
    response = frames[-1]["response"]
    assert response["status"] == "failed" and response["id"] == frames[0]["response"]["id"]
    assert response["status_details"]["type"] == "failed"
    assert response["status_details"]["error"]["type"] == "server_error"
    assert c.failures == []
    assert any(f"fault server_error: session {c.session_id} sample q1 " in m for m in fault_logs(caplog))


async def test_malformed_sends_one_non_json_frame_then_completes(speech: bytes,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(faulted("malformed")) as (_, url), client(url) as c:
        await c.user_turn(speech)
        await c.response("q1", "evt_resp")
        frames = await c.until("response.done")
        frames += await c.settle()
    kinds = types_of(frames)
    assert kinds.count("<not json>") == 1
    bad = kinds.index("<not json>")
    assert kinds.index("response.output_audio.delta") == bad - 1  # right after the first content delta
    assert frames[-1]["type"] == "response.done" and frames[-1]["response"]["status"] == "completed"
    echoed = b"".join(audio.b64decode(f["delta"]) for f in frames
                      if isinstance(f, dict) and f["type"] == "response.output_audio.delta")
    assert echoed == speech  # the response went on: every audio delta arrived
    assert c.failures == []
    assert any(f"fault malformed: session {c.session_id} sample q1 " in m for m in fault_logs(caplog))


def response_streams() -> list[asyncio.Task[Any]]:
    """The server's response-stream tasks in this event loop (`running` serves in-process)."""
    return [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "Connection.stream"]


async def test_stall_opens_the_response_then_goes_silent(speech: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(faulted("stall")) as (_, url):
        async with client(url) as c:
            await c.user_turn(speech)
            await c.response("q1", "evt_resp")
            frames = await c.until("rate_limits.updated")
            assert types_of(frames) == ["response.created", "rate_limits.updated"]
            response_id = frames[0]["response"]["id"]
            await asyncio.sleep(STALL_WINDOW_S)
            # Silence: `clear` is answered in order, so anything the response sent in the window would precede it.
            assert await c.settle() == []
            # Not silently ended either: the response still holds the conversation, and the socket is open.
            await c.response("q1", "evt_resp_2")
            refused = await c.until("error")
            assert types_of(refused) == ["error"]
            error = refused[0]["error"]
            assert error["code"] == "conversation_already_has_active_response" and response_id in error["message"]
            assert c.ws.close_code is None
            assert len(response_streams()) == 1  # the stalled stream, parked
            session_id = c.session_id
        # The client gives up by closing: the stalled stream must not outlive the session.
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while response_streams():
                await asyncio.sleep(0.01)
        async with client(url) as fresh:
            await fresh.send("input_audio_buffer.clear")
            assert (await fresh.recv())["type"] == "input_audio_buffer.cleared"
    assert c.failures == [] and fresh.failures == []
    assert any(f"fault stall: session {session_id} sample q1 " in m for m in fault_logs(caplog))


# -- determinism ---------------------------------------------------------------------------------------------------

SAMPLES = [f"sample_{i:02d}" for i in range(40)]
ATTEMPTS = 2  # each sample is retried once: the retry draws again


async def observed_faults(url: str, samples: list[str], sessions: int, speech: bytes) -> dict[tuple[str, int], str]:
    """Run every sample ATTEMPTS times; return the fault the client saw per (sample id, attempt)."""
    seen: dict[tuple[str, int], str] = {}

    async def run(share: list[str]) -> None:
        async with client(url) as c:
            await c.user_turn(speech)
            for sample_id in share:
                for attempt in range(1, ATTEMPTS + 1):
                    await c.response(sample_id, f"evt_{sample_id}_{attempt}")
                    frames = await c.until("response.done", "error")
                    kinds = types_of(frames)
                    if kinds[-1] == "error":
                        assert frames[-1]["error"]["code"] == "rate_limit_exceeded"
                        seen[sample_id, attempt] = "rate_limit"
                    elif frames[-1]["response"]["status"] == "failed":
                        seen[sample_id, attempt] = "server_error"
                    elif "<not json>" in kinds:
                        seen[sample_id, attempt] = "malformed"
            assert c.failures == []

    async with asyncio.TaskGroup() as group:
        for i in range(sessions):
            group.create_task(run(samples[i::sessions]))
    return seen


def plan_config(seed: int) -> ServerConfig:
    return ServerConfig(port=0, engine="echo", faults=FaultConfig(kinds=NON_FATAL, rate=0.5, seed=seed))


async def test_faults_depend_on_seed_sample_and_attempt_not_on_order(speech: bytes,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s2s_eval.server")
    async with running(plan_config(7)) as (_, url):
        in_order = await observed_faults(url, SAMPLES, 1, speech)
    logged = set()
    for message in fault_logs(caplog):
        match = re.search(r"sample (\S+) response \S+ \(attempt (\d+)\)", message)
        assert match, message
        logged.add((match.group(1), int(match.group(2))))
    assert logged == set(in_order)  # the server's log and the client agree on every faulted attempt

    shuffled = random.Random(1).sample(SAMPLES, len(SAMPLES))
    async with running(plan_config(7)) as (_, url):
        reordered = await observed_faults(url, shuffled, 4, speech)  # another order, four concurrent sessions
    async with running(plan_config(8)) as (_, url):
        other_seed = await observed_faults(url, SAMPLES, 1, speech)

    assert reordered == in_order  # same pairs, and the same fault kind for each
    assert other_seed != in_order
    draws = len(SAMPLES) * ATTEMPTS
    assert 0.3 * draws < len(in_order) < 0.7 * draws  # rate 0.5 (exact count fixed by the seed)
    assert set(in_order.values()) == set(NON_FATAL)
    # A retry draws again: some samples fault only on their first attempt, others only on their retry.
    assert any((s, 1) in in_order and (s, 2) not in in_order for s in SAMPLES)
    assert any((s, 2) in in_order and (s, 1) not in in_order for s in SAMPLES)


def test_jitter_is_within_range_and_deterministic() -> None:
    config = FaultConfig(kinds=("stall",), rate=0.3, seed=11, jitter_ms=40.0)
    keys = [s for s in SAMPLES for _ in range(ATTEMPTS)]
    first, second = FaultPlan(config), FaultPlan(config)
    draws = [first.draw(k) for k in keys]
    assert draws == [second.draw(k) for k in keys]
    jitters = [d.jitter_ms for d in draws]
    assert all(0.0 <= j <= 40.0 for j in jitters)
    assert max(jitters) - min(jitters) > 20.0  # spread over the range, not a constant
    other = FaultPlan(FaultConfig(kinds=("stall",), rate=0.3, seed=12, jitter_ms=40.0))
    assert [other.draw(k).jitter_ms for k in keys] != jitters
    assert all(d.jitter_ms == 0.0 for d in map(FaultPlan(FaultConfig(seed=11)).draw, keys))  # off by default


async def test_jitter_delays_the_first_audio_by_the_drawn_amount(speech: bytes) -> None:
    """No first-audio delay configured: the first audio delta comes after exactly the drawn jitter."""
    faults = FaultConfig(seed=5, jitter_ms=120.0)
    expected = {s: FaultPlan(faults).draw(s).jitter_ms for s in SAMPLES[:6]}
    async with running(ServerConfig(port=0, engine="echo", faults=faults)) as (_, url), client(url) as c:
        await c.user_turn(speech)
        for sample_id, jitter_ms in expected.items():
            sent = time.perf_counter()
            await c.response(sample_id, f"evt_{sample_id}")
            while (await c.recv())["type"] != "response.output_audio.delta":
                pass
            ttfa_ms = (time.perf_counter() - sent) * 1000
            # Scheduled from the arrival of response.create, so never early (1 ms for clock reads).
            assert jitter_ms - 1 <= ttfa_ms < jitter_ms + 40 * TIMING_SCALE, (sample_id, jitter_ms, ttfa_ms)
            await c.until("response.done")
    assert c.failures == []


# -- the session survives the non-fatal faults ---------------------------------------------------------------------


def faulted_then_clean(config: FaultConfig) -> str:
    """A sample id whose first response faults and whose retry does not (the plan is deterministic)."""
    for i in range(1000):
        plan = FaultPlan(config)
        if plan.draw(f"s{i}").fault and not plan.draw(f"s{i}").fault:
            return f"s{i}"
    raise AssertionError("no such sample id")


@pytest.mark.parametrize("kind", NON_FATAL)
async def test_session_stays_usable_after_a_non_fatal_fault(kind: str, speech: bytes) -> None:
    config = faulted(kind, rate=0.5)
    sample_id = faulted_then_clean(config.faults)
    async with running(config) as (_, url), client(url) as c:
        await c.user_turn(speech)
        await c.response(sample_id, "evt_first")
        first = await c.until("response.done", "error")
        await c.response(sample_id, "evt_retry")  # the same socket, the same sample: a retry
        retry = await c.until("response.done", "error")
    first_outcome = {"rate_limit": ("error", None), "server_error": ("response.done", "failed"),
                     "malformed": ("response.done", "completed")}[kind]
    last = first[-1]
    assert (last["type"], last["response"]["status"] if last["type"] == "response.done" else None) == first_outcome
    assert ("<not json>" in types_of(first)) == (kind == "malformed")
    assert "<not json>" not in types_of(retry)
    assert retry[-1]["type"] == "response.done" and retry[-1]["response"]["status"] == "completed"
    echoed = b"".join(audio.b64decode(f["delta"]) for f in retry if f["type"] == "response.output_audio.delta")
    assert echoed == speech
    assert c.failures == []
