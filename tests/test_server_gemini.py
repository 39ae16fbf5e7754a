"""The reference server speaking Gemini Live (`serve --protocol gemini`), checked against Google's own SDK.

Every message the server sends is validated against `google.genai.types.LiveServerMessage`, and every message a
client sends (ours here, the official client's in `test_server_gemini_sdk.py`) against `types.LiveClientMessage` —
extended by one field, `setup.realtimeInputConfig`: the SDK's own converter sends it and the proto has it, but
`types.LiveClientSetup` (3.6.1) lacks it, so plain validation would refuse a correct manual-activity setup. Each
test ends by asserting there were no validation failures. The official client dials only wss://, so the server
runs with a self-signed certificate made at test time (the private key never leaves tmp).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.genai import types
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from s2s_eval import audio
from s2s_eval.server import gemini_wire
from s2s_eval.server.app import ServerConfig, running
from s2s_eval.server.faults import FAULT_KINDS, FaultConfig
from s2s_eval.server.gemini_app import SAMPLE_HEADER, GeminiConnection
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from tests.conftest import TIMING_SCALE
from tests.servers import serve_process, write_script

MODEL = "models/gemini-live-2.5-flash"
ANSWER = "Two plus two is four."
AFTER_TOOL = "It is sunny in Paris."
SCRIPT = [{"sample_id": "weather", "responses": [{"text": "", "tool_calls": [
              {"name": "get_weather", "arguments": {"city": "Paris", "time_zone": "Europe/Paris"}}]},
              {"text": AFTER_TOOL}]},
          {"sample_id": "*", "responses": [{"text": ANSWER}]}]
TIMEOUT_S = 15 * TIMING_SCALE


class LiveClientSetup(types.LiveClientSetup):
    """The SDK's setup type plus the one field it lacks (3.6.1) although its converter sends it."""

    realtime_input_config: types.RealtimeInputConfig | None = None


class LiveClientMessage(types.LiveClientMessage):
    setup: LiveClientSetup | None = None  # type: ignore[assignment]


def validate(kind: type[Any], frame: str | bytes, failures: list[str]) -> None:
    try:
        kind.model_validate_json(frame)
    except ValidationError as exc:
        failures.append(f"{kind.__name__}: {str(frame)[:200]}: {exc}")


# -- fixtures ------------------------------------------------------------------------------------------------------


def make_tls(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made now: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s2s-eval test server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def question_16k() -> bytes:
    """A spoken question at 16 kHz (Gemini's input rate), resampled with soxr."""
    pcm = Synthesizer(TTSSettings()).speech("What is two plus two?")
    return audio.to_pcm16(audio.resample(audio.from_pcm16(pcm), audio.SAMPLE_RATE, 16000))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def trust(tls: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls[0]))


@pytest.fixture(scope="module")
def speech16() -> bytes:
    return question_16k()


def chunks16(pcm: bytes, ms: int = 100) -> list[bytes]:
    size = 16000 * 2 * ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def audio_in(pcm: bytes) -> dict[str, Any]:
    return {"realtimeInput": {"audio": {"data": base64.b64encode(pcm).decode(), "mimeType": "audio/pcm;rate=16000"}}}


class Tap:
    """Every frame of every Gemini session, both ways, recorded on the server and validated."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.failures: list[str] = []

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> Tap:
        return _install_tap(cls(), monkeypatch)


def _install_tap(tap: Tap, monkeypatch: pytest.MonkeyPatch) -> Tap:
    send, on_frame = GeminiConnection.send, GeminiConnection.on_frame

    async def recording_send(self: GeminiConnection, message: dict[str, Any] | bytes) -> None:
        if isinstance(message, dict):
            validate(types.LiveServerMessage, json.dumps(message), tap.failures)
            tap.sent.append(message)
        await send(self, message)

    async def recording_on_frame(self: GeminiConnection, frame: str | bytes, received: float) -> None:
        validate(LiveClientMessage, frame, tap.failures)
        tap.received.append(json.loads(frame))
        await on_frame(self, frame, received)

    monkeypatch.setattr(GeminiConnection, "send", recording_send)
    monkeypatch.setattr(GeminiConnection, "on_frame", recording_on_frame)
    return tap


@contextlib.asynccontextmanager
async def gemini_server(tls: tuple[Path, Path], folder: Path, **config: Any) -> AsyncIterator[str]:
    script = write_script(folder / "script.jsonl", config.pop("script", SCRIPT))
    async with running(ServerConfig(port=0, engine="scripted", script=script, protocol="gemini", tls_cert=tls[0],
                                    tls_key=tls[1], **config)) as (_, url):
        yield url


MANUAL_SETUP = {"setup": {
    "model": MODEL,
    "generationConfig": {"responseModalities": ["AUDIO"],
                         "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}},
    "systemInstruction": {"parts": [{"text": "Answer briefly."}]},
    "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "The weather in a city.",
                                         "parameters": {"type": "OBJECT", "properties": {
                                             "city": {"type": "STRING"}, "time_zone": {"type": "STRING"}}}}]}],
    "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
    "inputAudioTranscription": {}, "outputAudioTranscription": {}}}


class Client:
    """A bare WebSocket client: validates what it sends and receives, stamps arrivals before parsing."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.failures: list[str] = []

    async def send(self, message: dict[str, Any]) -> None:
        frame = json.dumps(message)
        validate(LiveClientMessage, frame, self.failures)
        await self.ws.send(frame)

    async def recv(self) -> dict[str, Any] | bytes:
        async with asyncio.timeout(TIMEOUT_S):
            frame = await self.ws.recv()
        self.arrivals.append(time.perf_counter())
        if not isinstance(frame, bytes):
            self.failures.append(f"a text frame: {frame[:80]}")
        try:
            message = json.loads(frame)
        except json.JSONDecodeError:
            return frame if isinstance(frame, bytes) else frame.encode()
        validate(types.LiveServerMessage, frame, self.failures)
        self.messages.append(message)
        return message

    async def until_turn_complete(self) -> list[dict[str, Any] | bytes]:
        seen = []
        while True:
            seen.append(await self.recv())
            if isinstance(seen[-1], dict) and seen[-1].get("serverContent", {}).get("turnComplete"):
                return seen

    async def setup(self, setup: dict[str, Any] = MANUAL_SETUP) -> None:
        await self.send(setup)
        assert await self.recv() == {"setupComplete": {}}

    async def manual_turn(self, pcm16: bytes) -> None:
        await self.send({"realtimeInput": {"activityStart": {}}})
        for chunk in chunks16(pcm16):
            await self.send(audio_in(chunk))
        await self.send({"realtimeInput": {"activityEnd": {}}})

    async def closed(self) -> tuple[int | None, str | None]:
        """Read until the server closes; returns its close code and reason (None, None: no close frame)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.recv()
        received = self.ws.protocol.close_rcvd
        return (received.code, received.reason) if received else (None, None)


@contextlib.asynccontextmanager
async def client(url: str, trust: ssl.SSLContext, sample_id: str | None = None, *,
                 headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    extra = {**({SAMPLE_HEADER: sample_id} if sample_id else {}), **(headers or {})}
    async with connect(url, ssl=trust, additional_headers=extra, max_size=None) as ws:
        yield Client(ws)


def server_content(messages: list[Any], field: str) -> list[Any]:
    return [m["serverContent"][field] for m in messages if isinstance(m, dict) and field in m.get("serverContent", {})]


def spoken(messages: list[Any]) -> bytes:
    return b"".join(base64.b64decode(part["inlineData"]["data"]) for turn in server_content(messages, "modelTurn")
                    for part in turn["parts"])


def kinds(messages: list[Any]) -> list[str]:
    """What each message is, deltas collapsed: `modelTurn`, `outputTranscription`, `toolCall`, ..."""
    out: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            kind = "malformed"
        elif "serverContent" in message:
            kind = "+".join(k for k in message["serverContent"]) + ("+usage" if "usageMetadata" in message else "")
        else:
            kind = "+".join(message)
        if not out or out[-1] != kind or kind == "malformed":
            out.append(kind)
    return out


# -- a turn, as sent by a bare client ------------------------------------------------------------------------------


async def test_a_manual_audio_turn_is_audio_and_transcript_then_generation_then_turn_complete_with_usage(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path) -> None:
    async with gemini_server(tls, tmp_path) as url, client(url, trust, "q1") as c:
        await c.setup()
        await c.manual_turn(speech16)
        turn = await c.until_turn_complete()

    assert c.failures == []  # every frame binary, every message valid both ways
    assert kinds(turn)[-2:] == ["generationComplete", "turnComplete+usage"]
    assert set(kinds(turn)[:-2]) == {"modelTurn", "outputTranscription"}
    assert "".join(t["text"] for t in server_content(turn, "outputTranscription")) == ANSWER
    parts = [p for t in server_content(turn, "modelTurn") for p in t["parts"]]
    assert {p["inlineData"]["mimeType"] for p in parts} == {"audio/pcm;rate=24000"}
    pcm = spoken(turn)
    assert audio.duration_s(pcm) > 0.5 and np.abs(audio.from_pcm16(pcm)).max() > 0.05  # real speech, 24 kHz
    usage = turn[-1]["usageMetadata"]
    audio_in = next(d["tokenCount"] for d in usage["promptTokensDetails"] if d["modality"] == "AUDIO")
    assert audio_in == pytest.approx(len(speech16) / 32000 * 25, abs=2)  # 25 tokens a second, at 16 kHz
    audio_out = next(d["tokenCount"] for d in usage["responseTokensDetails"] if d["modality"] == "AUDIO")
    assert audio_out == pytest.approx(audio.duration_s(pcm) * 25, abs=1)
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]


async def test_snake_case_keys_and_binary_frames_are_accepted_as_google_does(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path) -> None:
    setup = {"setup": {"model": MODEL, "generation_config": {"response_modalities": ["AUDIO"], "speech_config": {
        "voice_config": {"prebuilt_voice_config": {"voice_name": "Puck"}}}},
        "realtime_input_config": {"automatic_activity_detection": {"disabled": True}},
        "output_audio_transcription": {}}}
    async with gemini_server(tls, tmp_path) as url, client(url, trust) as c:
        for message in [setup, {"realtime_input": {"activity_start": {}}},
                        *({"realtime_input": {"audio": {"data": base64.b64encode(chunk).decode(),
                                                        "mime_type": "audio/pcm;rate=16000"}}}
                          for chunk in chunks16(speech16)),
                        {"realtimeInput": {"activity_end": {}}}]:
            validate(LiveClientMessage, json.dumps(message), c.failures)  # the SDK's types take both spellings
            await c.ws.send(json.dumps(message).encode())  # binary, as some clients send
        assert await c.recv() == {"setupComplete": {}}
        turn = await c.until_turn_complete()
    assert c.failures == []
    assert "".join(t["text"] for t in server_content(turn, "outputTranscription")) == ANSWER


def test_key_spelling_is_normalised_except_inside_values_the_caller_owns() -> None:
    message = {"tool_response": {"function_responses": [{"id": "c1", "name": "get_weather",
                                                         "response": {"sky_cover": "clear"}}]}}
    assert gemini_wire.camel_keys(message) == {"toolResponse": {"functionResponses": [
        {"id": "c1", "name": "get_weather", "response": {"sky_cover": "clear"}}]}}
    with pytest.raises(gemini_wire.GeminiClose, match="Duplicate field"):
        gemini_wire.camel_keys({"realtimeInput": {}, "realtime_input": {}})


# -- faults --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_each_fault_kind_is_what_google_does(kind: str, tls: tuple[Path, Path], trust: ssl.SSLContext,
                                                   speech16: bytes, tmp_path: Path) -> None:
    faults = FaultConfig(kinds=(kind,), rate=1.0)
    async with gemini_server(tls, tmp_path, faults=faults) as url, client(url, trust, "q1") as c:
        await c.setup()
        await c.manual_turn(speech16)
        if kind == "stall":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5 * TIMING_SCALE):
                    await c.ws.recv()
            code, reason = None, None
            seen: list[Any] = []
        elif kind == "malformed":
            seen = await c.until_turn_complete()
        else:
            code, reason = await c.closed()
            seen = c.messages[1:]
    assert c.failures == []
    expected = {"rate_limit": (1011, gemini_wire.QUOTA[:123]), "server_error": (1011, "Internal error occurred."),
                "invalid_request": (1007, "Request contains an invalid argument.")}
    if kind in expected:
        assert (code, reason) == expected[kind] and seen == []
    elif kind == "disconnect":  # one audio message, then the socket is gone without a close frame
        assert (code, reason) == (None, None) and kinds(seen) == ["modelTurn"] and len(seen) == 1
    elif kind == "malformed":  # one frame that is not JSON right after the first audio, then the turn goes on
        assert kinds(seen)[:2] == ["modelTurn", "malformed"] and kinds(seen)[-1] == "turnComplete+usage"


# -- timing --------------------------------------------------------------------------------------------------------


async def test_first_audio_is_sent_the_configured_delay_after_activity_end(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured twice: on the server (arrival of `activityEnd` → first audio sent: the scheduling alone) and on
    the client (`activityEnd` sent → first audio received: plus TLS, loopback and the client's loop)."""
    delay_ms, ends, server_ms = 300, [], []
    on_frame, send = GeminiConnection.on_frame, GeminiConnection.send

    async def stamping_on_frame(self: GeminiConnection, frame: str | bytes, received: float) -> None:
        if "activityEnd" in json.loads(frame).get("realtimeInput", {}):
            ends.append(received)
        await on_frame(self, frame, received)

    async def stamping_send(self: GeminiConnection, message: dict[str, Any] | bytes) -> None:
        if ends and isinstance(message, dict) and "modelTurn" in message.get("serverContent", {}):
            server_ms.append((time.perf_counter() - ends.pop()) * 1000 - delay_ms)
        await send(self, message)

    monkeypatch.setattr(GeminiConnection, "on_frame", stamping_on_frame)
    monkeypatch.setattr(GeminiConnection, "send", stamping_send)
    client_ms = []
    async with gemini_server(tls, tmp_path, first_audio_delay_ms=delay_ms) as url, client(url, trust, "q1") as c:
        await c.setup()
        for _ in range(3):
            await c.send({"realtimeInput": {"activityStart": {}}})
            for chunk in chunks16(speech16):
                await c.send(audio_in(chunk))
            # Let the audio leave first: time zero is when the server gets activityEnd, not when the client
            # queued it behind 100 kB of TLS records (that backlog alone measured up to ~90 ms here).
            await asyncio.sleep(0.3)
            sent = time.perf_counter()
            await c.ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
            first = len(c.arrivals)
            await c.until_turn_complete()
            client_ms.append((c.arrivals[first] - sent) * 1000 - delay_ms)
    assert c.failures == []
    assert all(0 <= e < 10 * TIMING_SCALE for e in server_ms) and len(server_ms) == 3, server_ms
    assert all(0 <= e < 40 * TIMING_SCALE for e in client_ms), client_ms


# -- barge-in, session limits, keys and refusals -------------------------------------------------------------------


async def test_activity_start_interrupts_the_model_and_cancels_pending_tool_calls(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path) -> None:
    script = [{"sample_id": "weather", "responses": SCRIPT[0]["responses"]},
              {"sample_id": "*", "responses": [{"text": ANSWER, "first_audio_delay_ms": 3000}]}]
    async with gemini_server(tls, tmp_path, script=script) as url:
        async with client(url, trust, "slow") as c:
            await c.setup()
            await c.manual_turn(speech16)
            await asyncio.sleep(0.1)
            await c.send({"realtimeInput": {"activityStart": {}}})  # the user speaks again before any audio
            interrupted = await c.until_turn_complete()
        async with client(url, trust, "weather") as w:
            await w.setup()
            await w.manual_turn(speech16)
            call = await w.recv()
            await w.send({"realtimeInput": {"activityStart": {}}})
            cancelled = await w.recv()
    assert c.failures == [] and w.failures == []
    assert kinds(interrupted) == ["interrupted", "turnComplete"]  # no generationComplete after a barge-in
    assert isinstance(call, dict) and cancelled == {"toolCallCancellation": {
        "ids": [call["toolCall"]["functionCalls"][0]["id"]]}}


async def test_speech_heard_by_vad_interrupts_the_model_and_audio_stream_end_ends_a_turn(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path) -> None:
    script = [{"sample_id": "*", "responses": [{"text": ANSWER, "first_audio_delay_ms": 3000}, {"text": AFTER_TOOL}]}]
    vad_setup = {"setup": {**{k: v for k, v in MANUAL_SETUP["setup"].items() if k != "realtimeInputConfig"},
                           "realtimeInputConfig": {"automaticActivityDetection": {"silenceDurationMs": 300}}}}
    silence = bytes(16000 * 2 // 2)  # 500 ms: more than the 300 ms that end a turn
    async with gemini_server(tls, tmp_path, script=script) as url, client(url, trust) as c:
        await c.setup(vad_setup)
        for chunk in chunks16(speech16 + silence):  # a turn; its answer waits 3 s for its first audio
            await c.send(audio_in(chunk))
        for chunk in chunks16(speech16):  # the user speaks again: VAD hears it and the model stops
            await c.send(audio_in(chunk))
        interrupted = await c.until_turn_complete()
        await c.send({"realtimeInput": {"audioStreamEnd": True}})  # no trailing silence: the stream's end ends it
        answered = await c.until_turn_complete()
    assert c.failures == []
    assert kinds(interrupted) == ["interrupted", "turnComplete"]
    assert "".join(t["text"] for t in server_content(answered, "outputTranscription")) == AFTER_TOOL


async def test_turn_taking_settings_apply_to_gemini_live(tls: tuple[Path, Path], trust: ssl.SSLContext,
                                                       tmp_path: Path) -> None:
    """`dynamics.py` on Gemini Live, with audio streamed at real time in 20 ms frames (24 kHz, no resampling):
    at 600 ms minimum speech a 400 ms backchannel does not interrupt the model; a 900 ms utterance does, 200 ms
    (the yield delay) after the frame that completed 600 ms of voiced audio; the model's audio parts go out at
    real time (output rate 1.0) until then."""
    from tests.test_server_dynamics import BOUND_MS, LONG, silence, tone

    script = [{"sample_id": "*", "responses": [{"text": LONG}]}]
    vad_setup = {"setup": {**{k: v for k, v in MANUAL_SETUP["setup"].items() if k != "realtimeInputConfig"},
                           "realtimeInputConfig": {"automaticActivityDetection": {"silenceDurationMs": 500}}}}
    arrivals: list[tuple[float, dict[str, Any]]] = []
    sent: list[tuple[float, int]] = []  # (send time, session ms at the frame's end)

    async def read(c: Client) -> None:
        while True:
            message = await c.recv()
            if isinstance(message, dict):
                arrivals.append((c.arrivals[-1], message))

    async with gemini_server(tls, tmp_path, script=script, vad_min_speech_ms=600, yield_delay_ms=200,
                             output_rate=1.0) as url, client(url, trust) as c:
        await c.setup(vad_setup)
        reader = asyncio.create_task(read(c))
        await c.send({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "Talk to me."}]}],
                      "turnComplete": True}})
        pcm = silence(400) + tone(400) + silence(800) + tone(900) + silence(300)
        size = audio.BYTES_PER_SECOND * 20 // 1000
        start = time.perf_counter()
        for i in range(0, len(pcm), size):
            await asyncio.sleep(max(0.0, start + (i + size) / audio.BYTES_PER_SECOND - time.perf_counter()))
            sent.append((time.perf_counter(), (i + size) * 1000 // audio.BYTES_PER_SECOND))
            await c.send({"realtimeInput": {"audio": {"data": base64.b64encode(pcm[i : i + size]).decode(),
                                                      "mimeType": "audio/pcm;rate=24000"}}})
        await asyncio.sleep(0.3)
        reader.cancel()
    assert c.failures == []
    interrupted = [t for t, m in arrivals if m.get("serverContent", {}).get("interrupted")]
    assert len(interrupted) == 1  # the backchannel did not interrupt; the utterance did
    detected = next(t for t, end in sent if end >= 400 + 400 + 800 + 600)
    assert (interrupted[0] - detected) * 1000 == pytest.approx(200, abs=BOUND_MS)
    parts = [t for t, m in arrivals if "modelTurn" in m.get("serverContent", {})]
    errors_ms = [(t - parts[0] - i * 0.1) * 1000 for i, t in enumerate(parts)]  # 100 ms parts at real time
    assert len(parts) > 15 and np.percentile(np.abs(errors_ms), 90) < BOUND_MS, errors_ms


async def test_the_session_limit_sends_go_away_then_closes_1008(tls: tuple[Path, Path], trust: ssl.SSLContext,
                                                                tmp_path: Path) -> None:
    async with gemini_server(tls, tmp_path, max_session_s=0.6) as url, client(url, trust) as c:
        await c.setup()
        code, _ = await c.closed()
    assert c.failures == []
    assert c.messages[1:] == [{"goAway": {"timeLeft": "0.3s"}}] and code == 1008


@pytest.mark.parametrize(("headers", "query", "expected"), [
    ({}, "", (1008, gemini_wire.NO_KEY[:123])),
    ({"x-goog-api-key": "wrong"}, "", (1007, gemini_wire.BAD_KEY)),
    ({"x-goog-api-key": "k"}, "", None),
    ({}, "?key=k", None),
])
async def test_a_missing_or_wrong_key_closes_the_session(headers: dict[str, str], query: str,
                                                          expected: tuple[int, str] | None, tls: tuple[Path, Path],
                                                          trust: ssl.SSLContext, tmp_path: Path) -> None:
    async with gemini_server(tls, tmp_path, api_key="k") as url, client(url + query, trust, headers=headers) as c:
        if expected is None:
            await c.setup()
        else:
            with contextlib.suppress(ConnectionClosed):  # the server may have closed already: it needs no setup
                await c.ws.send(json.dumps(MANUAL_SETUP))
            assert await c.closed() == expected
    assert c.failures == []


REFUSALS = [
    ({**MANUAL_SETUP["setup"], "generationConfig": {"responseModalities": ["AUDIO"], "inputAudioTranscription": {}}},
     "Invalid JSON payload received. Unknown name \"inputAudioTranscription\" at 'setup.generation_config': Cannot "
     "find field."),
    ({**MANUAL_SETUP["setup"], "generationConfig": {"speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {
        "voiceName": "Nobody"}}}}}, "No matching speaker voice found"),
]


@pytest.mark.parametrize(("setup", "reason"), REFUSALS)
async def test_a_bad_setup_closes_1007_with_googles_reason(setup: dict[str, Any], reason: str, tls: tuple[Path, Path],
                                                           trust: ssl.SSLContext, tmp_path: Path) -> None:
    async with gemini_server(tls, tmp_path) as url, client(url, trust) as c:
        await c.ws.send(json.dumps({"setup": setup}))
        assert await c.closed() == (1007, reason)


async def test_activity_control_with_server_vad_on_closes_1007(tls: tuple[Path, Path], trust: ssl.SSLContext,
                                                               tmp_path: Path) -> None:
    vad_setup = {"setup": {k: v for k, v in MANUAL_SETUP["setup"].items() if k != "realtimeInputConfig"}}
    async with gemini_server(tls, tmp_path) as url, client(url, trust) as c:
        await c.setup(vad_setup)
        await c.send({"realtimeInput": {"activityStart": {}}})
        code, _ = await c.closed()
    assert code == 1007 and c.failures == []


# -- engines, modalities, the command ------------------------------------------------------------------------------


async def test_the_echo_engine_speaks_back_the_users_audio_at_24_khz(tls: tuple[Path, Path], trust: ssl.SSLContext,
                                                                     speech16: bytes, tmp_path: Path) -> None:
    config = ServerConfig(port=0, engine="echo", protocol="gemini", tls_cert=tls[0], tls_key=tls[1])
    async with running(config) as (_, url), client(url, trust) as c:
        await c.setup()
        await c.manual_turn(speech16)
        turn = await c.until_turn_complete()
    assert c.failures == []
    echoed = audio.from_pcm16(spoken(turn))
    original = audio.resample(audio.from_pcm16(speech16), 16000, audio.SAMPLE_RATE)
    assert len(echoed) == pytest.approx(len(original), abs=audio.SAMPLE_RATE // 100)  # within 10 ms
    n = min(len(echoed), len(original))
    assert np.corrcoef(echoed[:n], original[:n])[0, 1] > 0.95  # the same speech, resampled, not noise


async def test_a_text_setup_answers_a_client_content_turn_in_text_parts(tls: tuple[Path, Path],
                                                                        trust: ssl.SSLContext, tmp_path: Path) -> None:
    setup = {"setup": {"model": MODEL, "generationConfig": {"responseModalities": ["TEXT"]}}}
    async with gemini_server(tls, tmp_path) as url, client(url, trust, "q1") as c:
        await c.setup(setup)
        await c.send({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "2+2?"}]}],
                                        "turnComplete": True}})
        turn = await c.until_turn_complete()
    assert c.failures == []
    assert kinds(turn) == ["modelTurn", "generationComplete", "turnComplete+usage"]
    assert turn[0]["serverContent"]["modelTurn"]["parts"] == [{"text": ANSWER}]


async def test_serve_speaks_gemini_over_tls_from_the_command_line(tls: tuple[Path, Path], trust: ssl.SSLContext,
                                                                  tmp_path: Path) -> None:
    with serve_process("--protocol", "gemini", "--tls-cert", str(tls[0]), "--tls-key", str(tls[1]),
                       log=tmp_path / "serve.log") as url:
        assert url.startswith("wss://127.0.0.1:") and url.endswith(".BidiGenerateContent")
        async with client(url, trust) as c:
            await c.setup()
    assert c.failures == []


def test_the_server_never_imports_the_sdk_types() -> None:
    """Their first parse costs tens of milliseconds: nothing on the server's timing path may use them."""
    code = "import sys, s2s_eval.server.app; print(any(m.startswith('google.genai') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
