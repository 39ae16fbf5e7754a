"""The reference server through the official `openai` SDK realtime client, every server event validated
against `openai.types.realtime.RealtimeServerEvent` (discriminated by `type`)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import Field, TypeAdapter, ValidationError

from s2s_eval import audio
from s2s_eval.errors import DataError
from s2s_eval.server.app import ServerConfig, running
from s2s_eval.server.engines import load_script
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from tests.servers import write_script

SERVER_EVENT = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])

RESPONSE_SEQUENCE = [  # canonical sequence E of the protocol brief, deltas collapsed
    "response.created", "rate_limits.updated", "response.output_item.added", "conversation.item.added",
    "response.content_part.added", "response.output_audio.delta", "response.output_audio_transcript.delta",
    "response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
    "conversation.item.done", "response.output_item.done", "response.done",
]


class Recorder:
    """Reads raw frames from an SDK connection (or any `recv`) and validates each against a server event union
    (the SDK's GA one by default); a frame that does not validate is recorded in `failures`, not raised."""

    def __init__(self, conn: Any, *, recv: Callable[[], Awaitable[str | bytes]] | None = None,
                 events: TypeAdapter[Any] = SERVER_EVENT, timeout_s: float | None = None) -> None:
        self.conn = conn
        self._recv = recv or conn.recv_bytes
        self._adapter = events
        self._timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self.failures: list[str] = []

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(self._timeout_s):
            event = json.loads(await self._recv())
        try:
            self._adapter.validate_python(event)
        except ValidationError as exc:
            self.failures.append(f"{event.get('type')}: {exc}")
        self.events.append(event)
        return event

    async def until(self, type_: str) -> list[dict[str, Any]]:
        seen = []
        while True:
            seen.append(await self.next())
            if seen[-1]["type"] == type_:
                return seen


def collapse(types: list[str]) -> list[str]:
    """Event types in order of first appearance (deltas collapse to their first occurrence)."""
    out: list[str] = []
    for t in types:
        if t not in out:
            out.append(t)
    return out


@pytest.fixture
def speech() -> bytes:
    return Synthesizer(TTSSettings()).speech("What is two plus two?")


@pytest.fixture
async def scripted_url(tmp_path):  # type: ignore[no-untyped-def]
    script = write_script(tmp_path / "script.jsonl", [
        {"sample_id": "q1", "responses": [{"text": "Two plus two is four."}, {"text": "Still four."}]},
    ])
    async with running(ServerConfig(port=0, engine="scripted", script=script)) as (_, url):
        yield url


def sdk_client(url: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="sk-local-test", websocket_base_url=url.removesuffix("/realtime"))


MANUAL_SESSION = {"type": "realtime", "output_modalities": ["audio"], "instructions": "Answer briefly.",
                  "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}}}


async def test_full_audio_turn_validates_against_sdk_types(scripted_url: str, speech: bytes) -> None:
    async with sdk_client(scripted_url).realtime.connect(model="gpt-realtime") as conn:
        rec = Recorder(conn)
        created = await rec.next()
        assert created["type"] == "session.created"
        assert created["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"  # the real default

        await conn.session.update(session=MANUAL_SESSION)
        updated = await rec.until("session.updated")
        assert updated[-1]["session"]["audio"]["input"]["turn_detection"] is None
        assert updated[-1]["session"]["instructions"] == "Answer briefly."

        for chunk in audio.chunks(speech, 100):
            await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
        await conn.input_audio_buffer.commit()
        committed = await rec.until("conversation.item.done")
        assert [e["type"] for e in committed] == ["input_audio_buffer.committed", "conversation.item.added",
                                                  "conversation.item.done"]
        user_item = committed[-1]["item"]
        assert user_item["role"] == "user" and user_item["content"][0]["type"] == "input_audio"

        await conn.response.create(response={"metadata": {"sample_id": "q1"}})
        turn = await rec.until("response.done")

    assert rec.failures == []
    assert collapse([e["type"] for e in turn]) == RESPONSE_SEQUENCE
    assert all(e.get("event_id") for e in rec.events)
    assert len({e["event_id"] for e in rec.events}) == len(rec.events)
    pcm = b"".join(base64.b64decode(e["delta"]) for e in turn if e["type"] == "response.output_audio.delta")
    assert audio.duration_s(pcm) > 0.5 and max(abs(x) for x in audio.from_pcm16(pcm)) > 0.05  # real speech
    transcript = "".join(e["delta"] for e in turn if e["type"] == "response.output_audio_transcript.delta")
    assert transcript == "Two plus two is four."
    done = turn[-1]["response"]
    assert done["status"] == "completed" and done["metadata"] == {"sample_id": "q1"}
    assert done["output"][0]["content"][0] == {"type": "output_audio", "transcript": "Two plus two is four."}
    usage = done["usage"]
    # Plausible usage: 1 audio token per 100 ms in, per 50 ms out.
    assert usage["input_token_details"]["audio_tokens"] == pytest.approx(audio.duration_s(speech) * 10, abs=1)
    assert usage["output_token_details"]["audio_tokens"] == pytest.approx(audio.duration_s(pcm) * 20, abs=1)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_scripted_responses_advance_and_text_modality(scripted_url: str) -> None:
    async with sdk_client(scripted_url).realtime.connect(model="gpt-realtime") as conn:
        rec = Recorder(conn)
        await rec.next()
        await conn.session.update(session={**MANUAL_SESSION, "output_modalities": ["text"]})
        await rec.until("session.updated")
        await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "2+2?"}]})
        await rec.until("conversation.item.done")
        texts = []
        for _ in range(2):
            await conn.response.create(response={"metadata": {"sample_id": "q1"}})
            turn = await rec.until("response.done")
            assert "response.output_audio.delta" not in [e["type"] for e in turn]
            texts.append(next(e["text"] for e in turn if e["type"] == "response.output_text.done"))
            assert turn[-1]["response"]["output"][0]["content"][0]["type"] == "output_text"
    assert texts == ["Two plus two is four.", "Still four."]
    assert rec.failures == []


async def test_an_empty_scripted_answer_is_one_message_without_audio_and_with_an_empty_transcript(
        tmp_path: Path) -> None:
    """A response has at least one item (the SDK's `response.create` docs): answering nothing is sequence E without
    its deltas, in both modalities, every event valid."""
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": ""}]}])
    async with running(ServerConfig(port=0, engine="scripted", script=script)) as (_, url):
        async with sdk_client(url).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.next()
            await conn.session.update(session=MANUAL_SESSION)
            await rec.until("session.updated")
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "2+2?"}]})
            await rec.until("conversation.item.done")
            await conn.response.create()
            spoken = await rec.until("response.done")
            await conn.session.update(session={**MANUAL_SESSION, "output_modalities": ["text"]})
            await rec.until("session.updated")
            await conn.response.create()
            written = await rec.until("response.done")

    assert rec.failures == []
    assert [e["type"] for e in spoken] == [t for t in RESPONSE_SEQUENCE if not t.endswith(".delta")]
    assert next(e for e in spoken if e["type"] == "response.output_audio_transcript.done")["transcript"] == ""
    done = spoken[-1]["response"]
    assert done["status"] == "completed" and len(done["output"]) == 1
    assert done["output"][0]["content"] == [{"type": "output_audio", "transcript": ""}]
    assert done["usage"]["output_token_details"] == {"text_tokens": 0, "audio_tokens": 0}

    assert [e["type"] for e in written] == [
        "response.created", "rate_limits.updated", "response.output_item.added", "conversation.item.added",
        "response.content_part.added", "response.output_text.done", "response.content_part.done",
        "conversation.item.done", "response.output_item.done", "response.done"]
    assert next(e for e in written if e["type"] == "response.output_text.done")["text"] == ""
    assert written[-1]["response"]["output"][0]["content"] == [{"type": "output_text", "text": ""}]


def test_a_script_may_answer_nothing_but_a_response_must_say_what(tmp_path: Path) -> None:
    script = load_script(write_script(tmp_path / "ok.jsonl", [{"sample_id": "s", "responses": [{"text": ""}]}]))
    assert script["s"][0].text == "" and script["s"][0].tool_calls == ()
    with pytest.raises(DataError, match=r"responses\[0\]: a response needs a 'text'"):
        load_script(write_script(tmp_path / "bad.jsonl", [{"sample_id": "s", "responses": [{}]}]))


async def test_echo_engine_speaks_back_text_and_audio(speech: bytes) -> None:
    async with running(ServerConfig(port=0, engine="echo")) as (_, url):
        async with sdk_client(url).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.next()
            await conn.session.update(session=MANUAL_SESSION)
            await rec.until("session.updated")
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "Hello there."}]})
            await rec.until("conversation.item.done")
            await conn.response.create()
            turn = await rec.until("response.done")
            said = next(e for e in turn if e["type"] == "response.output_audio_transcript.done")["transcript"]
            assert said == "Hello there."

            await conn.input_audio_buffer.append(audio=audio.b64(speech))
            await conn.input_audio_buffer.commit()
            await conn.response.create()
            turn = await rec.until("response.done")
            echoed = b"".join(base64.b64decode(e["delta"]) for e in turn
                              if e["type"] == "response.output_audio.delta")
    assert echoed == speech  # the audio comes back as it was sent
    assert rec.failures == []


async def test_errors_match_the_real_service_and_session_survives(scripted_url: str, speech: bytes) -> None:
    async with sdk_client(scripted_url).realtime.connect(model="gpt-realtime") as conn:
        rec = Recorder(conn)
        await rec.next()

        await conn.send({"type": "session.update", "event_id": "evt_1", "session": {"instructions": "x"}})
        error = (await rec.until("error"))[-1]["error"]
        assert (error["code"], error["param"], error["event_id"]) == ("missing_required_parameter",
                                                                      "session.type", "evt_1")

        await conn.send({"type": "input_audio_buffer.commit", "event_id": "evt_2"})
        error = (await rec.until("error"))[-1]["error"]
        assert error["code"] == "input_audio_buffer_commit_empty" and error["event_id"] == "evt_2"
        assert error["type"] == "invalid_request_error"

        await conn.send({"type": "input_audio_buffer.append", "event_id": "evt_3", "audio": "not base64!"})
        assert (await rec.until("error"))[-1]["error"]["event_id"] == "evt_3"

        await conn.send({"type": "no.such.event", "event_id": "evt_4"})
        assert (await rec.until("error"))[-1]["error"]["code"] == "invalid_event"

        await conn.send({"type": "conversation.item.create", "event_id": "evt_5", "item": {
            "type": "message", "role": "assistant", "content": [{"type": "output_audio", "audio": "AAAA"}]}})
        error = (await rec.until("error"))[-1]["error"]
        assert error["code"] == "missing_required_parameter" and error["param"] == "item.content[0].text"

        # Two response.create in a row: the second is refused while the first is active, and no
        # response.created follows it.
        await conn.session.update(session=MANUAL_SESSION)
        await rec.until("session.updated")
        await conn.input_audio_buffer.append(audio=audio.b64(speech))
        await conn.input_audio_buffer.commit()
        await conn.send({"type": "response.create", "event_id": "evt_6", "response": {"metadata": {"sample_id": "q1"}}})
        await conn.send({"type": "response.create", "event_id": "evt_7"})
        turn = await rec.until("response.done")
        errors = [e["error"] for e in turn if e["type"] == "error"]
        assert [(e["code"], e["event_id"]) for e in errors] == [("conversation_already_has_active_response", "evt_7")]
        assert [e["type"] for e in turn].count("response.created") == 1

        # The session is still usable after every error.
        await conn.send({"type": "response.create", "event_id": "evt_8", "response": {"metadata": {"sample_id": "q1"}}})
        turn = await rec.until("response.done")
        assert turn[-1]["response"]["status"] == "completed"
    assert rec.failures == []


async def test_invalid_json_and_unknown_paths(scripted_url: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    async with connect(scripted_url, compression=None) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send("{not json")
        error = json.loads(await ws.recv())
        SERVER_EVENT.validate_python(error)
        assert error["type"] == "error" and error["error"]["code"] == "invalid_json"
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert json.loads(await ws.recv())["type"] == "input_audio_buffer.cleared"

    with pytest.raises(InvalidStatus) as rejected:
        async with connect(scripted_url.replace("/v1/realtime", "/v1/other")):
            pass
    assert rejected.value.response.status_code == 404


async def test_browser_subprotocol_is_echoed_and_no_compression_by_default(scripted_url: str) -> None:
    from websockets.asyncio.client import connect

    async with connect(scripted_url, subprotocols=["realtime", "openai-insecure-api-key.sk-x"]) as ws:
        assert ws.subprotocol == "realtime"
        # The client offered permessage-deflate (library default); the server declines it by default.
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
