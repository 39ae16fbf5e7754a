"""The reference server in the beta shape (protocol brief §1.2, §3): the official SDK's beta client end to end,
the other ways a session becomes beta, and refusing beta as OpenAI does today.

Every beta frame is validated against `openai.types.beta.realtime.RealtimeServerEvent` (discriminated by `type`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import openai.types.beta.realtime
import pytest
from openai import AsyncOpenAI
from pydantic import Field, TypeAdapter
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from s2s_eval import audio
from s2s_eval.server.app import BETA_DISABLED, ServerConfig, running
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from tests.conftest import TIMING_SCALE
from tests.servers import write_script
from tests.test_server_sdk import SERVER_EVENT, Recorder, sdk_client

BETA_EVENT = TypeAdapter(Annotated[openai.types.beta.realtime.RealtimeServerEvent, Field(discriminator="type")])
GA_ONLY = {"conversation.item.added", "conversation.item.done", "response.output_audio.delta",
           "response.output_audio.done", "response.output_audio_transcript.delta",
           "response.output_audio_transcript.done", "response.output_text.delta", "response.output_text.done"}
GREETING = "Hello there, how can I help?"
FINAL = "It is sunny in Paris."
SCRIPT = [
    {"sample_id": "weather", "responses": [
        {"text": "Let me check.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": FINAL}]},
    {"sample_id": "*", "responses": [{"text": GREETING}]},
]
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIMEOUT_S = 15 * TIMING_SCALE


class BetaRecorder(Recorder):
    """Reads raw frames and validates each against the SDK's beta server event union."""

    def __init__(self, recv: Any) -> None:
        super().__init__(None, recv=recv, events=BETA_EVENT, timeout_s=TIMEOUT_S)


def beta_client(url: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="sk-local-test", websocket_base_url=url.removesuffix("/realtime"))


def assert_beta_session(session: dict[str, Any]) -> None:
    """The flat beta session: `modalities`, `voice`, `input_audio_format`, ... and none of GA's nesting."""
    assert "type" not in session and "audio" not in session and "output_modalities" not in session
    assert {"modalities", "voice", "input_audio_format", "output_audio_format", "turn_detection",
            "temperature", "max_response_output_tokens"} <= set(session)


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    script = write_script(tmp_path / "script.jsonl", SCRIPT)
    async with running(ServerConfig(port=0, engine="scripted", script=script)) as (_, server_url):
        yield server_url


async def test_sdk_beta_client_runs_audio_and_tool_turns(url: str) -> None:
    speech = Synthesizer(TTSSettings()).speech("What is the weather like?")
    async with beta_client(url).beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        rec = BetaRecorder(conn.recv_bytes)
        created, conversation = await rec.next(), await rec.next()
        assert (created["type"], conversation["type"]) == ("session.created", "conversation.created")
        assert_beta_session(created["session"])
        assert created["session"]["turn_detection"]["type"] == "server_vad"
        assert conversation["conversation"]["object"] == "realtime.conversation"

        await conn.session.update(session={
            "modalities": ["text", "audio"], "voice": "alloy", "input_audio_format": "pcm16",
            "output_audio_format": "pcm16", "turn_detection": None, "temperature": 0.7,
            "instructions": "Answer briefly.", "tools": [WEATHER_TOOL]})
        session = (await rec.until("session.updated"))[-1]["session"]
        assert_beta_session(session)
        assert (session["modalities"], session["voice"], session["input_audio_format"], session["turn_detection"],
                session["instructions"], session["tools"]) == (["text", "audio"], "alloy", "pcm16", None,
                                                              "Answer briefly.", [WEATHER_TOOL])

        # An audio turn: the user item and the assistant's spoken answer, in beta names and content types.
        for chunk in audio.chunks(speech, 100):
            await conn.input_audio_buffer.append(audio=audio.b64(chunk))
        await conn.input_audio_buffer.commit()
        committed = await rec.until("conversation.item.created")
        assert [e["type"] for e in committed] == ["input_audio_buffer.committed", "conversation.item.created"]
        assert committed[-1]["item"]["content"][0]["type"] == "input_audio"
        await conn.response.create()
        turn = await rec.until("response.done")
        kinds = [e["type"] for e in turn]
        assert {"response.audio.delta", "response.audio.done", "response.audio_transcript.delta",
                "response.audio_transcript.done", "conversation.item.created"} <= set(kinds)
        assert "".join(e["delta"] for e in turn if e["type"] == "response.audio_transcript.delta") == GREETING
        done = turn[-1]["response"]
        assert (done["status"], done["modalities"], done["voice"], done["output_audio_format"]) == (
            "completed", ["text", "audio"], "alloy", "pcm16")
        assert "output_modalities" not in done and "audio" not in done
        assert done["output"][0]["content"] == [{"type": "audio", "transcript": GREETING}]
        assert only(turn, "response.output_item.done")["item"]["content"][0]["type"] == "audio"

        # A text turn with a tool call, then the tool's output and the answer that uses it.
        await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "Weather in Paris?"}]})
        await rec.until("conversation.item.created")
        await conn.response.create(response={"modalities": ["text"], "metadata": {"sample_id": "weather"}})
        turn = await rec.until("response.done")
        assert "response.text.delta" in [e["type"] for e in turn]
        assert not [e for e in turn if e["type"].startswith("response.audio")]
        message, call = turn[-1]["response"]["output"]
        assert message["content"] == [{"type": "text", "text": "Let me check."}]
        assert (call["type"], call["name"], json.loads(call["arguments"])) == ("function_call", "get_weather",
                                                                               {"city": "Paris"})
        arguments_done = only(turn, "response.function_call_arguments.done")
        assert arguments_done["call_id"] == call["call_id"] and "name" not in arguments_done  # not in beta types
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call["call_id"],
                                                  "output": json.dumps({"sky": "sunny"})})
        await rec.until("conversation.item.created")
        await conn.response.create(response={"modalities": ["text"], "metadata": {"sample_id": "weather"}})
        turn = await rec.until("response.done")
        assert only(turn, "response.text.done")["text"] == FINAL

    assert rec.failures == []
    assert not GA_ONLY & {e["type"] for e in rec.events}
    assert all(e.get("event_id") for e in rec.events)


def only(events: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    [event] = [e for e in events if e["type"] == type_]
    return event


@pytest.mark.parametrize("switch", ["subprotocol", "server_config"])
async def test_other_beta_switches(tmp_path: Path, switch: str) -> None:
    config = ServerConfig(port=0, protocol="beta" if switch == "server_config" else "ga")
    offered = ["realtime", "openai-beta.realtime-v1"] if switch == "subprotocol" else None
    # The beta session type only knows OpenAI's model names: name one, as beta clients always do.
    async with running(config) as (_, url), connect(f"{url}?model=gpt-4o-realtime-preview",
                                                    subprotocols=offered) as ws:
        rec = BetaRecorder(ws.recv)
        assert [(await rec.next())["type"], (await rec.next())["type"]] == ["session.created", "conversation.created"]
        assert_beta_session(rec.events[0]["session"])
        if offered:
            assert ws.subprotocol == "realtime"
        await ws.send(json.dumps({"type": "session.update", "session": {"modalities": ["text"],
                                                                          "turn_detection": None}}))
        session = (await rec.until("session.updated"))[-1]["session"]
        assert (session["modalities"], session["turn_detection"]) == (["text"], None)
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}}))
        await ws.send(json.dumps({"type": "response.create"}))
        turn = await rec.until("response.done")
        assert "response.text.delta" in [e["type"] for e in turn]
        assert turn[-1]["response"]["output"][0]["content"][0]["type"] == "text"
    assert rec.failures == []
    assert not GA_ONLY & {e["type"] for e in rec.events}


async def test_beta_can_be_refused_as_openai_does_today() -> None:
    async with running(ServerConfig(port=0, beta="reject")) as (_, url):
        async with beta_client(url).beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
            rec = BetaRecorder(conn.recv_bytes)
            error = await rec.next()
            assert error["type"] == "error"
            assert (error["error"]["type"], error["error"]["code"], error["error"]["message"]) == (
                "invalid_request_error", "beta_api_shape_disabled", BETA_DISABLED)
            with pytest.raises(ConnectionClosed) as closed:
                await rec.next()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                4000, "invalid_request_error.beta_api_shape_disabled")
        assert rec.failures == []

        # A GA client on the same server is unaffected.
        async with sdk_client(url).realtime.connect(model="gpt-realtime") as conn:
            async with asyncio.timeout(TIMEOUT_S):
                created = json.loads(await conn.recv_bytes())
            SERVER_EVENT.validate_python(created)
            assert created["type"] == "session.created" and created["session"]["type"] == "realtime"
