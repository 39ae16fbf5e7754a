"""The reference server's turn-taking settings against known truths (issue 16, point 3; `server/dynamics.py`).

A small full-duplex client streams caller audio in 20 ms frames at real time (silence included) while it receives,
stamps every frame it sends and every event it receives on the monotonic clock, and validates each server event
against the SDK's `RealtimeServerEvent` union. Caller audio is espeak-ng speech or a synthesised voiced tone (a
harmonic complex at -20 dBFS) whose length is exact. Timing bounds are correctness bounds around the configured
values (one client frame, scaled by S2S_TIMING_SCALE), not speed targets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from s2s_eval import audio
from s2s_eval.runners.local_server import local_server
from s2s_eval.runners.profile import LocalServerSettings, RunnerProfile
from s2s_eval.server.app import ServerConfig, running
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from tests.conftest import TIMING_SCALE
from tests.servers import write_script
from tests.test_server_sdk import SERVER_EVENT

FRAME_MS = 20
BOUND_MS = 20 * TIMING_SCALE  # one client frame
TIMEOUT_S = 15 * TIMING_SCALE
LONG = ("Here is a long answer, so that there is time to interrupt it. It goes on for several sentences. "
        "Each sentence adds a few more seconds of speech. And this one is the last of them.")
SCRIPT = [{"sample_id": "*", "responses": [{"text": LONG}]}]


def tone(ms: int, dbfs: float = -20.0) -> bytes:
    """A voiced stand-in for speech: 150 Hz plus four harmonics, `ms` long, at `dbfs` RMS."""
    t = np.arange(audio.SAMPLE_RATE * ms // 1000) / audio.SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    x *= 10 ** (dbfs / 20) / np.sqrt(np.mean(x * x))
    return audio.to_pcm16(x)


def silence(ms: int) -> bytes:
    return bytes(audio.BYTES_PER_SECOND * ms // 1000)


class Duplex:
    """Streams caller audio at real time while receiving; `events` are (receive time, event)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.failures: list[str] = []
        self.sent_ms = 0  # the session audio clock: caller audio sent so far
        self.frames: list[tuple[float, int]] = []  # (send time, session ms at the frame's end)
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            received = time.perf_counter()
            event = json.loads(frame)
            try:
                SERVER_EVENT.validate_python(event)
            except ValueError as exc:
                self.failures.append(f"{event.get('type')}: {exc}")
            self.events.append((received, event))
            self._arrived.set()

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def stream(self, pcm: bytes) -> None:
        """Send `pcm` in 20 ms appends at real time, each once its audio has "happened", as from a microphone:
        the frame holding [t, t + 20 ms) of the stream goes out t + 20 ms after the call."""
        size = audio.BYTES_PER_SECOND * FRAME_MS // 1000
        start = time.perf_counter()
        for i in range(0, len(pcm), size):
            due = start + (i + size) / audio.BYTES_PER_SECOND
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            await self.send("input_audio_buffer.append", audio=audio.b64(pcm[i : i + size]))
            self.sent_ms += FRAME_MS
            self.frames.append((sent, self.sent_ms))

    async def wait(self, match: Callable[[dict[str, Any]], bool]) -> tuple[float, dict[str, Any]]:
        """The first event (ever received) that matches, waiting for it if need be."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                found = [(t, e) for t, e in self.events if match(e)]
                if found:
                    return found[0]
                self._arrived.clear()
                await self._arrived.wait()

    def of(self, type_: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e["type"] == type_]

    def frame_ending(self, session_ms: int) -> float:
        """When the frame that completed session audio up to `session_ms` was sent."""
        return next(t for t, end in self.frames if end >= session_ms)

    def frame_with(self, session_ms: float) -> float:
        """When the frame holding the instant `session_ms` of session audio was sent."""
        return next(t for t, end in self.frames if end > session_ms)


@contextlib.asynccontextmanager
async def duplex(url: str, **turn_detection: Any) -> AsyncIterator[Duplex]:
    async with connect(url, max_size=None) as ws:
        client = Duplex(ws)
        await client.wait(lambda e: e["type"] == "session.created")
        vad = {"type": "server_vad", "silence_duration_ms": 500, "create_response": True,
               "interrupt_response": True, **turn_detection}
        await client.send("session.update", session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
        await client.wait(lambda e: e["type"] == "session.updated")
        yield client
        client._reader.cancel()
    assert client.failures == []


@contextlib.asynccontextmanager
async def server(tmp_path: Path, **settings: Any) -> AsyncIterator[str]:
    script = write_script(tmp_path / "script.jsonl", SCRIPT)
    async with running(ServerConfig(port=0, engine="scripted", script=script, **settings)) as (_, url):
        yield url


def done_of(response_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "response.done" and e["response"]["id"] == response_id


def kind(type_: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == type_


async def start_answer(c: Duplex) -> tuple[str, float]:
    """Ask for the long answer by hand (the VAD stays on); returns its id and when its first audio arrived."""
    await c.send("conversation.item.create", item={"type": "message", "role": "user",
                                                   "content": [{"type": "input_text", "text": "Talk to me."}]})
    await c.send("response.create")
    _, created = await c.wait(kind("response.created"))
    first, _ = await c.wait(kind("response.output_audio.delta"))
    return created["response"]["id"], first


@pytest.fixture(scope="module")
def question(isolated_cache: Path) -> bytes:
    """A spoken question (espeak-ng): about 1.8 s of speech with no pause longer than 60 ms."""
    return Synthesizer(TTSSettings()).speech("What is the capital of France?")


# -- yield delay --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("yield_delay_ms", [0, 200])
async def test_a_barge_in_cancels_the_response_after_the_yield_delay(tmp_path: Path, question: bytes,
                                                                      yield_delay_ms: int) -> None:
    """`response.done` (cancelled, turn_detected) follows `speech_started` by the yield delay; the client
    truncates the still-streaming item at speech_started (its playback policy), which the server accepts."""
    async with server(tmp_path, yield_delay_ms=yield_delay_ms, output_rate=1.0) as url, duplex(url) as c:
        answer, first_audio = await start_answer(c)
        await c.stream(silence(600))
        speaking = asyncio.create_task(c.stream(question + silence(700)))
        started_at, started = await c.wait(kind("input_audio_buffer.speech_started"))
        played_ms = int((started_at - first_audio) * 1000)
        item_id = next(e["item_id"] for _, e in c.events if e["type"] == "response.output_audio.delta")
        await c.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=played_ms)
        done_at, done = await c.wait(done_of(answer))
        await speaking
        await c.wait(lambda e: e["type"] == "response.created" and e["response"]["id"] != answer)
        await c.send("conversation.item.retrieve", item_id=item_id)
        _, retrieved = await c.wait(kind("conversation.item.retrieved"))

    assert (done["response"]["status"], done["response"]["status_details"]) == (
        "cancelled", {"type": "cancelled", "reason": "turn_detected"})
    assert (done_at - started_at) * 1000 == pytest.approx(yield_delay_ms, abs=BOUND_MS)
    # Detected at the first voiced frame: speech_started comes with the frame that holds the onset.
    onset_ms = 600 + audio.voiced_span_ms(question)[0]  # type: ignore[index]
    assert started["audio_start_ms"] == pytest.approx(onset_ms - 300, abs=10)
    assert (started_at - c.frame_with(onset_ms)) * 1000 < BOUND_MS
    [(_, truncated)] = c.of("conversation.item.truncated")
    assert (truncated["item_id"], truncated["audio_end_ms"]) == (item_id, played_ms)
    assert done["response"]["output"][0]["status"] == "incomplete"
    part = retrieved["item"]["content"][0]  # what the conversation keeps: the audio played, no transcript
    assert len(base64.b64decode(part["audio"])) == played_ms * audio.BYTES_PER_SECOND // 1000
    assert part["transcript"] == ""


async def test_a_turn_that_ends_before_the_yield_is_answered_when_the_response_yields(tmp_path: Path) -> None:
    """Yield delay 800 ms, silence 300 ms, a 400 ms utterance: the turn ends (commit) while the interrupted response
    still holds the conversation; it is answered the moment that response yields, not dropped."""
    async with server(tmp_path, yield_delay_ms=800, output_rate=1.0) as url, duplex(url, silence_duration_ms=300) as c:
        answer, _ = await start_answer(c)
        await c.stream(silence(200) + tone(400) + silence(700))
        started_at, _ = await c.wait(kind("input_audio_buffer.speech_started"))
        committed_at, _ = await c.wait(kind("input_audio_buffer.committed"))
        done_at, done = await c.wait(done_of(answer))
        created_at, _ = await c.wait(lambda e: e["type"] == "response.created" and e["response"]["id"] != answer)
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert committed_at < done_at and (done_at - started_at) * 1000 == pytest.approx(800, abs=BOUND_MS)
    assert (created_at - done_at) * 1000 < BOUND_MS


def test_vad_min_speech_counts_voiced_audio_and_forgets_an_onset_after_the_silence() -> None:
    """The VAD alone, without I/O: "mm" (150 ms), a 100 ms gap, "hmm" (200 ms) is 350 ms of voiced audio, under
    600 ms; two 400 ms sounds 600 ms apart (more than the 500 ms silence) do not add up; 700 ms does, reported at
    its 600th ms with the onset minus the prefix padding."""
    from s2s_eval.server.vad import EnergyVad, SpeechStarted, SpeechStopped, VadSettings

    vad = EnergyVad(VadSettings(min_speech_ms=600))
    assert vad.feed(silence(500) + tone(150) + silence(100) + tone(200) + silence(600)) == []
    assert vad.feed(tone(400) + silence(600) + tone(400) + silence(600)) == []
    clock_ms = vad.written_ms
    assert vad.feed(tone(590)) == []
    assert vad.feed(tone(10)) == [SpeechStarted(clock_ms - 300)]
    assert vad.feed(tone(100) + silence(500)) == [SpeechStopped(clock_ms + 700 + 500)]
    assert EnergyVad().feed(silence(500) + tone(150)) == [SpeechStarted(200)]  # 0: at the first voiced frame


# -- minimum speech -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("min_speech_ms", [0, 600])
async def test_min_speech_ignores_a_backchannel_and_takes_a_longer_utterance(tmp_path: Path,
                                                                             min_speech_ms: int) -> None:
    """A 400 ms "mm-hmm" during the answer, then a 900 ms utterance: at 600 ms minimum speech the backchannel
    leaves no trace (no speech_started, no cancel, no commit) and the utterance is detected 600 ms after its onset;
    at 0 the backchannel interrupts."""
    async with server(tmp_path, vad_min_speech_ms=min_speech_ms, output_rate=1.0) as url, duplex(url) as c:
        answer, _ = await start_answer(c)
        await c.stream(silence(400))
        clock_ms = c.sent_ms
        await c.stream(tone(400) + silence(800) + tone(900) + silence(600))
        await c.wait(done_of(answer))
        await c.wait(kind("input_audio_buffer.committed"))
        await asyncio.sleep(0.1)
        backchannel_ms, utterance_ms = clock_ms, clock_ms + 400 + 800

    started = c.of("input_audio_buffer.speech_started")
    committed = c.of("input_audio_buffer.committed")
    [(_, done)] = [(t, e) for t, e in c.of("response.done") if e["response"]["id"] == answer]
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    if min_speech_ms == 0:  # both are heard; the backchannel interrupts
        assert [e["audio_start_ms"] for _, e in started] == [backchannel_ms - 300, utterance_ms - 300]
        assert len(committed) == 2
        return
    [(started_at, event)] = started
    assert event["audio_start_ms"] == utterance_ms - 300  # still the onset minus the prefix padding
    assert len(committed) == 1 and committed[0][1]["item_id"] == event["item_id"]
    # Reported with the frame that completed 600 ms of voiced audio, and the answer was cancelled only then.
    assert (started_at - c.frame_ending(utterance_ms + min_speech_ms)) * 1000 == pytest.approx(0, abs=BOUND_MS)
    assert started_at < [t for t, e in c.of("response.done") if e["response"]["id"] == answer][0]


# -- output rate --------------------------------------------------------------------------------------------------

async def test_output_rate_paces_the_audio_from_the_first_delta(tmp_path: Path) -> None:
    """At 2x real time, the delta that starts at second t of the answer arrives t/2 after the first delta; the
    first still comes at the first-audio delay. A truncate while it streams is bounded by the audio sent."""
    rate, delay_ms = 2.0, 300
    async with server(tmp_path, output_rate=rate, first_audio_delay_ms=delay_ms) as url, \
            duplex(url, create_response=False) as c:
        await c.send("conversation.item.create", item={"type": "message", "role": "user",
                                                       "content": [{"type": "input_text", "text": "Talk."}]})
        await c.wait(kind("conversation.item.done"))
        asked = time.perf_counter()
        await c.send("response.create")
        _, created = await c.wait(kind("response.created"))
        answer = created["response"]["id"]
        await c.wait(kind("response.output_audio.delta"))
        await asyncio.sleep(1.0)
        _, delta = c.of("response.output_audio.delta")[0]
        sent_ms = sum(len(base64.b64decode(e["delta"])) for _, e in c.of("response.output_audio.delta")) * 1000 \
            // audio.BYTES_PER_SECOND
        await c.send("conversation.item.truncate", item_id=delta["item_id"], content_index=0,
                     audio_end_ms=sent_ms + 1000, event_id="too_far")
        _, error = await c.wait(kind("error"))
        await c.send("conversation.item.truncate", item_id=delta["item_id"], content_index=0, audio_end_ms=800)
        _, done = await c.wait(done_of(answer))
        await c.send("conversation.item.retrieve", item_id=delta["item_id"])
        _, retrieved = await c.wait(kind("conversation.item.retrieved"))

    deltas = c.of("response.output_audio.delta")
    assert (deltas[0][0] - asked) * 1000 == pytest.approx(delay_ms, abs=BOUND_MS)
    offsets_s = np.cumsum([0] + [len(base64.b64decode(e["delta"])) / audio.BYTES_PER_SECOND for _, e in deltas])
    errors_ms = [((t - deltas[0][0]) - offsets_s[i] / rate) * 1000 for i, (t, _) in enumerate(deltas)]
    assert offsets_s[-1] > 4  # several seconds of speech, in ~half the time
    # Each delta on its turn: a few may arrive late on a loaded machine, but the schedule never drifts.
    assert np.percentile(np.abs(errors_ms), 90) < BOUND_MS and abs(errors_ms[-1]) < BOUND_MS, errors_ms
    assert (error["error"]["event_id"], error["error"]["param"]) == ("too_far", "audio_end_ms")
    assert done["response"]["status"] == "completed"
    assert done["response"]["output"][0]["content"][0]["transcript"] == ""
    part = retrieved["item"]["content"][0]
    assert len(base64.b64decode(part["audio"])) == 800 * audio.BYTES_PER_SECOND // 1000 and part["transcript"] == ""


# -- turn-end latency ---------------------------------------------------------------------------------------------

async def test_vad_response_first_audio_counts_from_the_frame_that_ended_the_silence(tmp_path: Path,
                                                                                     question: bytes) -> None:
    """Turn end: the first audio comes `first_audio_delay_ms` after the frame that completed `silence_duration_ms`
    arrived, so the end of the caller's voiced audio -> first audio = silence + delay + under one frame."""
    silence_ms, delay_ms, lead_ms = 500, 300, 300
    async with server(tmp_path, first_audio_delay_ms=delay_ms) as url, \
            duplex(url, silence_duration_ms=silence_ms) as c:
        streamed_from = time.perf_counter()
        speaking = asyncio.create_task(c.stream(silence(lead_ms) + question + silence(1000)))
        _, stopped = await c.wait(kind("input_audio_buffer.speech_stopped"))
        first_at, _ = await c.wait(kind("response.output_audio.delta"))
        await speaking

    voiced_end_ms = lead_ms + audio.voiced_span_ms(question)[1]  # type: ignore[index]
    assert stopped["audio_end_ms"] == pytest.approx(voiced_end_ms + silence_ms, abs=10)
    assert (first_at - c.frame_ending(stopped["audio_end_ms"])) * 1000 == pytest.approx(delay_ms, abs=BOUND_MS)
    # On the caller's real-time clock, the voiced audio ended at streamed_from + voiced_end_ms; the frame that
    # completes the silence goes out up to a frame later, and the VAD judges 10 ms frames.
    turn_end_ms = (first_at - streamed_from) * 1000 - voiced_end_ms
    assert silence_ms + delay_ms - 10 <= turn_end_ms <= silence_ms + delay_ms + FRAME_MS + 10 + BOUND_MS


@pytest.mark.parametrize(("flag", "value"), [("--output-rate", "0"), ("--yield-delay-ms", "-1"),
                                             ("--vad-min-speech-ms", "0.5")])
def test_serve_refuses_a_bad_setting_in_one_line(flag: str, value: str) -> None:
    result = subprocess.run([sys.executable, "-m", "s2s_eval", "serve", "--port", "0", flag, value],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"argument {flag}:" in result.stderr.splitlines()[-1]


# -- profile ------------------------------------------------------------------------------------------------------

async def test_a_local_profile_configures_the_dynamics(tmp_path: Path) -> None:
    """The `server:` block of a profile yaml reaches `s2s-eval serve`: here its output rate paces a response."""
    profile = RunnerProfile.model_validate({
        "name": "local-slow", "provider": "local", "model": "s2s-eval-reference",
        "server": {"engine": "scripted", "script": str(write_script(tmp_path / "script.jsonl", SCRIPT)),
                   "vad_min_speech_ms": 600, "yield_delay_ms": 200, "output_rate": 4.0}})
    assert profile.server == LocalServerSettings(engine="scripted", script=profile.server.script,  # type: ignore
                                                 vad_min_speech_ms=600, yield_delay_ms=200, output_rate=4.0)
    async with local_server(profile.server, tmp_path / "server.log") as served, \
            duplex(served.url, create_response=False) as c:  # type: ignore[arg-type]
        answer, _ = await start_answer(c)
        await c.wait(done_of(answer))
    deltas = c.of("response.output_audio.delta")
    audio_s = sum(len(base64.b64decode(e["delta"])) for _, e in deltas) / audio.BYTES_PER_SECOND
    paced_s = (audio_s - 0.1) / 4.0  # the last 100 ms delta starts 0.1 s before the end
    assert math.isclose(deltas[-1][0] - deltas[0][0], paced_s, abs_tol=0.05 * paced_s + BOUND_MS / 1000)
