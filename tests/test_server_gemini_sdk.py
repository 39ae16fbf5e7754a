"""Google's official client (`google-genai`) drives the Gemini Live reference server: one manual audio turn, one
tool round and one VAD turn, every frame both ways recorded on the server and validated against the SDK's Live
types (the client type extended by `setup.realtimeInputConfig`, see `test_server_gemini.py`)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from s2s_eval import audio
from s2s_eval.server import gemini_wire
from s2s_eval.server.gemini_app import SAMPLE_HEADER
from tests.test_server_gemini import (
    AFTER_TOOL,
    ANSWER,
    MODEL,
    TIMEOUT_S,
    Tap,
    chunks16,
    gemini_server,
    make_tls,
    question_16k,
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def trust(tls: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls[0]))


@pytest.fixture(scope="module")
def speech16() -> bytes:
    return question_16k()


@pytest.fixture
def tap(monkeypatch: pytest.MonkeyPatch) -> Tap:
    return Tap.install(monkeypatch)


def sdk(url: str, trust: ssl.SSLContext, sample_id: str | None = None, key: str = "test-key") -> genai.Client:
    """Google's client pointed at the loopback server: its base URL, our certificate, the sample id header."""
    base = url.split("/ws/")[0].replace("wss://", "https://")
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        base_url=base, async_client_args={"ssl": trust}, headers={SAMPLE_HEADER: sample_id} if sample_id else None))


def live_config(manual: bool) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore"))),
        system_instruction="Answer briefly.",
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="get_weather", description="The weather in a city.", parameters=types.Schema(
                type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}))])],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=manual)))


async def receive_turn(session: Any, on_tool_call: Any = None) -> list[types.LiveServerMessage]:
    """The SDK's `receive()` until `turnComplete` (tool calls answered on the way)."""
    messages = []
    async with asyncio.timeout(TIMEOUT_S):
        async for message in session.receive():
            messages.append(message)
            if message.tool_call and on_tool_call:
                await on_tool_call(message.tool_call)
    return messages


def transcript(messages: list[types.LiveServerMessage]) -> str:
    return "".join(m.server_content.output_transcription.text for m in messages
                   if m.server_content and m.server_content.output_transcription)


async def test_the_official_client_drives_a_manual_audio_turn(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path, tap: Tap) -> None:
    async with gemini_server(tls, tmp_path, api_key="test-key") as url:
        async with sdk(url, trust, "q1").aio.live.connect(model=MODEL, config=live_config(manual=True)) as session:
            await session.send_realtime_input(activity_start=types.ActivityStart())
            for chunk in chunks16(speech16):
                await session.send_realtime_input(audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=16000"))
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            messages = await receive_turn(session)

    assert tap.failures == []
    setup = gemini_wire.camel_keys(tap.received[0])["setup"]
    assert setup["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": True}}
    assert "realtime_input" in tap.received[1]  # the SDK mixes key styles; the server took them
    assert transcript(messages) == ANSWER
    pcm = b"".join(p.inline_data.data for m in messages if m.server_content and m.server_content.model_turn
                   for p in m.server_content.model_turn.parts)
    assert audio.duration_s(pcm) > 0.5
    assert messages[-1].usage_metadata.total_token_count > 0
    assert [m.server_content.generation_complete for m in messages[-2:]] == [True, None]


async def test_the_official_client_answers_a_tool_call_and_hears_the_answer(
        tls: tuple[Path, Path], trust: ssl.SSLContext, tmp_path: Path, tap: Tap) -> None:
    async with gemini_server(tls, tmp_path) as url:
        async with sdk(url, trust, "weather").aio.live.connect(model=MODEL, config=live_config(manual=True)) as session:
            calls: list[types.FunctionCall] = []

            async def answer(tool_call: types.LiveServerToolCall) -> None:
                calls.extend(tool_call.function_calls)
                await session.send_tool_response(function_responses=[types.FunctionResponse(
                    id=call.id, name=call.name, response={"sky_cover": "clear"}) for call in tool_call.function_calls])

            await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(
                text="What is the weather in Paris?")]), turn_complete=True)
            messages = await receive_turn(session, answer)

    assert tap.failures == []
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris", "time_zone": "Europe/Paris"})]
    assert "toolResponse" in tap.received[-1] or "tool_response" in tap.received[-1]
    assert transcript(messages) == AFTER_TOOL


async def test_the_official_client_gets_a_turn_from_server_vad(
        tls: tuple[Path, Path], trust: ssl.SSLContext, speech16: bytes, tmp_path: Path, tap: Tap) -> None:
    silence = bytes(16000 * 2)  # 1 s: more than the 500 ms of silence that ends a turn
    async with gemini_server(tls, tmp_path) as url:
        async with sdk(url, trust, "q1").aio.live.connect(model=MODEL, config=live_config(manual=False)) as session:
            for chunk in chunks16(speech16 + silence):
                await session.send_realtime_input(audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=16000"))
            messages = await receive_turn(session)
    assert tap.failures == []
    assert transcript(messages) == ANSWER
