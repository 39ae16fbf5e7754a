"""The reference server's GA surface, event for event and error for error (protocol brief §1.4, §2, §4, §9.2).

Every frame the server sends is validated against the official SDK's `RealtimeServerEvent` union (discriminated by
`type`), and each test ends by asserting there were no validation failures. Sessions go through the official
`openai` client; the handshake and close-code tests use a bare `websockets` client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from s2s_eval import audio
from s2s_eval.server import app
from s2s_eval.server.app import MAX_MESSAGE_BYTES, ServerConfig, running
from s2s_eval.server.responses import sentences
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from tests.conftest import TIMING_SCALE
from tests.servers import write_script
from tests.test_server_sdk import MANUAL_SESSION, SERVER_EVENT, Recorder, sdk_client

LONG = "First comes a short sentence. Second, the middle of the answer runs a little longer. Third and last."
OKAY = "Okay. Here is a slightly longer answer for you."
TOOL_CALLS = [{"name": "get_weather", "arguments": {"city": "Paris"}},
              {"name": "get_weather", "arguments": {"city": "Rome"}},
              {"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}]
AFTER_TOOLS = "Paris is sunny, Rome is rainy, and it is noon."
# Answers whose first audio waits this long: responses that are reliably still active while a test acts.
SLOW_DELAY_MS, STUCK_DELAY_MS = 400, 4000
SCRIPT = [
    {"sample_id": "long", "responses": [{"text": LONG}]},
    {"sample_id": "tools", "responses": [{"text": "", "tool_calls": TOOL_CALLS}, {"text": AFTER_TOOLS}]},
    {"sample_id": "slow", "responses": [{"text": "Sorry for the wait.", "first_audio_delay_ms": SLOW_DELAY_MS}]},
    {"sample_id": "stuck", "responses": [{"text": "Sorry for the wait.", "first_audio_delay_ms": STUCK_DELAY_MS}]},
    {"sample_id": "oob", "responses": [{"text": "A summary of the conversation."}]},
    {"sample_id": "*", "responses": [{"text": OKAY}]},
]
TOOLS = [{"type": "function", "name": name, "description": f"{name} tool.",
          "parameters": {"type": "object", "properties": {key: {"type": "string"}}, "required": [key]}}
         for name, key in (("get_weather", "city"), ("get_time", "timezone"))]
TIMEOUT_S = 15 * TIMING_SCALE


class Client(Recorder):
    """A `Recorder` that sends raw client events, gives up instead of hanging, and can wait for the server."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn, timeout_s=TIMEOUT_S)

    async def send(self, type_: str, **fields: Any) -> None:
        await self.conn.send_raw(json.dumps({"type": type_, **fields}))

    async def barrier(self) -> list[dict[str, Any]]:
        """Everything the server sent before it handled one more event (a retrieve of a missing item: an error
        with our event id and no side effects)."""
        token = f"barrier_{len(self.events)}"
        await self.send("conversation.item.retrieve", item_id=token, event_id=token)
        seen = []
        while True:
            event = await self.next()
            if event["type"] == "error" and event["error"]["event_id"] == token:
                return seen
            seen.append(event)

    async def error(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send an event that must fail; return its `error`, checking that it echoes the client event id."""
        event_id = f"evt_{len(self.events)}"
        await self.send(type_, event_id=event_id, **fields)
        events = await self.until("error")
        error = events[-1]["error"]
        assert error["event_id"] == event_id, error
        assert error["type"] == "invalid_request_error"
        return error

    async def update(self, session: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """`session.update` with `session` and/or `fields`; returns the session of `session.updated`."""
        await self.send("session.update", session={"type": "realtime", **(session or {}), **fields})
        return (await self.until("session.updated"))[-1]["session"]

    async def create_item(self, item: dict[str, Any], **fields: Any) -> dict[str, Any]:
        await self.send("conversation.item.create", item=item, **fields)
        added, done = (await self.until("conversation.item.done"))[-2:]
        assert added["type"] == "conversation.item.added" and added["item"]["id"] == done["item"]["id"]
        return done

    async def retrieve(self, item_id: str) -> dict[str, Any]:
        await self.send("conversation.item.retrieve", item_id=item_id)
        return (await self.until("conversation.item.retrieved"))[-1]["item"]

    async def commit(self, pcm: bytes, chunk_ms: int = 100) -> str:
        for chunk in audio.chunks(pcm, chunk_ms):
            await self.send("input_audio_buffer.append", audio=audio.b64(chunk))
        await self.send("input_audio_buffer.commit")
        return (await self.until("conversation.item.done"))[-1]["item"]["id"]

    async def respond(self, **response: Any) -> list[dict[str, Any]]:
        await self.send("response.create", response=response)
        return await self.until("response.done")

    async def until_done(self, response_id: str) -> list[dict[str, Any]]:
        """Events up to the `response.done` of one response (others may interleave)."""
        seen = []
        while True:
            seen.append(await self.next())
            if seen[-1]["type"] == "response.done" and seen[-1]["response"]["id"] == response_id:
                return seen

    async def stream(self, pcm: bytes) -> None:
        """Append audio in 20, 60 and 100 ms chunks, in turn (the chunking must not matter to VAD)."""
        sizes = [20, 60, 100]
        offset, i = 0, 0
        while offset < len(pcm):
            size = audio.BYTES_PER_SECOND * sizes[i % len(sizes)] // 1000
            await self.send("input_audio_buffer.append", audio=audio.b64(pcm[offset : offset + size]))
            offset, i = offset + size, i + 1


@contextlib.asynccontextmanager
async def session(url: str) -> AsyncIterator[Client]:
    """An SDK session on the server; on a clean exit, asserts that every server event validated."""
    async with sdk_client(url).realtime.connect(model="gpt-realtime") as conn:
        client = Client(conn)
        assert (await client.next())["type"] == "session.created"
        yield client
    assert client.failures == []


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    script = write_script(tmp_path / "script.jsonl", SCRIPT)
    async with running(ServerConfig(port=0, engine="scripted", script=script)) as (_, server_url):
        yield server_url


@pytest.fixture
async def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, threading.Event]]:
    """A scripted server whose speech for LONG's second sentence waits for the test's go-ahead: a response held
    mid-stream, after its first sentence went out, for as long as the test needs."""
    gate = threading.Event()
    held = sentences(LONG)[1]

    class GatedSynthesizer(Synthesizer):
        def cached(self, text: str) -> bool:
            return text != held and super().cached(text)  # so the server synthesises it in a worker thread

        def speech(self, text: str) -> bytes:
            if text == held:
                gate.wait(TIMEOUT_S)
            return super().speech(text)

    monkeypatch.setattr(app, "Synthesizer", GatedSynthesizer)
    script = write_script(tmp_path / "script.jsonl", SCRIPT)
    try:
        async with running(ServerConfig(port=0, engine="scripted", script=script)) as (_, server_url):
            yield server_url, gate
    finally:
        gate.set()


@pytest.fixture(scope="module")
def question(isolated_cache: Path) -> bytes:
    """A spoken question (espeak-ng, 24 kHz PCM16): about 1.8 s, no pause inside it longer than 60 ms."""
    return Synthesizer(TTSSettings()).speech("What is the capital of France?")


def silence(ms: int) -> bytes:
    return bytes(audio.BYTES_PER_SECOND * ms // 1000)


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def audio_of(events: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")


def transcript_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")


def only(events: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    [event] = [e for e in events if e["type"] == type_]
    return event


def of_response(events: list[dict[str, Any]], response_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("response_id") == response_id
            or (e["type"].startswith("response.") and (e.get("response") or {}).get("id") == response_id)]


def span(started: dict[str, Any], stopped: dict[str, Any]) -> slice:
    """The bytes of session audio between `speech_started.audio_start_ms` and `speech_stopped.audio_end_ms`."""
    return slice(started["audio_start_ms"] * audio.BYTES_PER_SECOND // 1000,
                 stopped["audio_end_ms"] * audio.BYTES_PER_SECOND // 1000)


def voiced_span_ms(pcm: bytes) -> tuple[float, float]:
    """Where speech starts and ends in a clip: the first and last sample above -40 dBFS (the level the server's
    VAD documents for threshold 0.5), by a plain scan of samples rather than the server's 10 ms frames."""
    loud = np.flatnonzero(np.abs(audio.from_pcm16(pcm)) > 10 ** (-40 / 20))
    return loud[0] * 1000 / audio.SAMPLE_RATE, (loud[-1] + 1) * 1000 / audio.SAMPLE_RATE


# -- conversation items ---------------------------------------------------------------------------------------------

async def test_retrieve_returns_the_exact_audio_of_user_and_assistant_items(url: str, question: bytes) -> None:
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        committed = await c.commit(question)
        part = (await c.retrieve(committed))["content"][0]
        assert part["type"] == "input_audio" and base64.b64decode(part["audio"]) == question

        snippet = question[: audio.BYTES_PER_SECOND // 2]
        done = await c.create_item({"type": "message", "role": "user", "content": [
            {"type": "input_audio", "audio": audio.b64(snippet), "transcript": "What is"}]})
        assert "audio" not in done["item"]["content"][0]  # item events carry everything but the audio bytes
        part = (await c.retrieve(done["item"]["id"]))["content"][0]
        assert base64.b64decode(part["audio"]) == snippet and part["transcript"] == "What is"

        turn = await c.respond()
        item = await c.retrieve(turn[-1]["response"]["output"][0]["id"])
        assert (item["role"], item["status"], item["content"][0]["type"]) == ("assistant", "completed", "output_audio")
        assert base64.b64decode(item["content"][0]["audio"]) == audio_of(turn) != b""
        assert item["content"][0]["transcript"] == transcript_of(turn) == OKAY

        error = await c.error("conversation.item.retrieve", item_id="item_missing")
        assert (error["code"], error["param"]) == ("invalid_value", "item_id")


async def test_truncate_cuts_assistant_audio_and_its_transcript(url: str, question: bytes) -> None:
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        user = await c.commit(question)
        turn = await c.respond()
        item_id, full = turn[-1]["response"]["output"][0]["id"], audio_of(turn)
        duration_ms = len(full) * 1000 // audio.BYTES_PER_SECOND

        for fields, param in [({"audio_end_ms": duration_ms + 500}, "audio_end_ms"),
                              ({"audio_end_ms": -1}, "audio_end_ms"),
                              ({"content_index": 1, "audio_end_ms": 10}, "content_index")]:
            error = await c.error("conversation.item.truncate", item_id=item_id, **{"content_index": 0, **fields})
            assert (error["code"], error["param"]) == ("invalid_value", param)
        error = await c.error("conversation.item.truncate", item_id=user, content_index=0, audio_end_ms=10)
        assert error["code"] == "invalid_value"  # only assistant audio can be truncated
        error = await c.error("conversation.item.truncate", item_id="item_missing", content_index=0, audio_end_ms=10)
        assert error["code"] == "invalid_value"
        assert base64.b64decode((await c.retrieve(item_id))["content"][0]["audio"]) == full  # refusals change nothing

        end_ms = duration_ms // 2
        await c.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=end_ms)
        truncated = (await c.until("conversation.item.truncated"))[-1]
        assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (item_id, 0, end_ms)
        part = (await c.retrieve(item_id))["content"][0]
        assert base64.b64decode(part["audio"]) == full[: end_ms * audio.BYTES_PER_SECOND // 1000]
        # "Truncating audio will delete the server-side text transcript" (SDK docstring).
        assert part["transcript"] == ""
        error = await c.error("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=end_ms + 20)
        assert error["param"] == "audio_end_ms"  # the bound is now the truncated audio


async def test_delete_removes_an_item(url: str) -> None:
    async with session(url) as c:
        first = (await c.create_item(user_text("one")))["item"]["id"]
        second = (await c.create_item(user_text("two")))["item"]["id"]
        await c.send("conversation.item.delete", item_id=second)
        assert (await c.until("conversation.item.deleted"))[-1]["item_id"] == second
        assert (await c.error("conversation.item.retrieve", item_id=second))["code"] == "invalid_value"
        error = await c.error("conversation.item.delete", item_id=second)
        assert (error["code"], error["param"]) == ("invalid_value", "item_id")
        assert (await c.create_item(user_text("three")))["previous_item_id"] == first


async def test_previous_item_id_places_new_items(url: str) -> None:
    async with session(url) as c:
        a = await c.create_item(user_text("a"))
        assert a["previous_item_id"] is None
        a_id = a["item"]["id"]
        b = await c.create_item(user_text("b"))
        assert b["previous_item_id"] == a_id
        at_root = await c.create_item(user_text("root"), previous_item_id="root")
        assert at_root["previous_item_id"] is None
        after_a = await c.create_item(user_text("after a"), previous_item_id=a_id)
        assert after_a["previous_item_id"] == a_id
        # Appending still goes after the last item: the conversation is now root, a, after a, b.
        assert (await c.create_item(user_text("end")))["previous_item_id"] == b["item"]["id"]
        after_root = await c.create_item(user_text("second"), previous_item_id=at_root["item"]["id"])
        assert after_root["previous_item_id"] == at_root["item"]["id"]
        error = await c.error("conversation.item.create", item=user_text("x"), previous_item_id="item_missing")
        assert (error["code"], error["param"]) == ("invalid_value", "previous_item_id")


# -- responses --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("by_id", [True, False], ids=["by_id", "current"])
async def test_cancel_mid_stream_ends_the_open_item_incomplete(gated: tuple[str, threading.Event],
                                                               by_id: bool) -> None:
    url, gate = gated
    first_sentence = Synthesizer(TTSSettings()).speech(sentences(LONG)[0])
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        assert (await c.error("response.cancel"))["code"] == "response_cancel_not_active"
        assert (await c.error("response.cancel", response_id="resp_missing"))["code"] == "response_cancel_not_active"
        await c.create_item(user_text("Tell me something."))

        await c.send("response.create", response={"metadata": {"sample_id": "long"}})
        events = await c.until("response.output_audio.delta")
        response_id = events[0]["response"]["id"]
        await c.send("response.cancel", **({"response_id": response_id} if by_id else {}))
        events += await c.barrier()  # the server has handled the cancel; the second sentence is still held
        gate.set()
        events += await c.until_done(response_id)

        assert [e for e in events if e["type"] == "error"] == []
        done = events[-1]["response"]
        assert (done["status"], done["status_details"]) == ("cancelled", {"type": "cancelled",
                                                                         "reason": "client_cancelled"})
        [item] = done["output"]
        assert item["status"] == "incomplete"
        assert only(events, "response.output_item.done")["item"]["status"] == "incomplete"
        assert only(events, "conversation.item.done")["item"]["status"] == "incomplete"
        sent = audio_of(events)
        assert 0 < len(sent) <= len(first_sentence) and first_sentence.startswith(sent)
        # The item keeps what the client was sent, no more: transcript deltas = done transcript = item transcript.
        transcript = transcript_of(events)
        assert only(events, "response.output_audio_transcript.done")["transcript"] == transcript
        assert item["content"][0]["transcript"] == transcript and sentences(LONG)[0].startswith(transcript)
        kept = await c.retrieve(item["id"])  # the partial item stays in the conversation
        assert kept["status"] == "incomplete" and base64.b64decode(kept["content"][0]["audio"]) == sent

        error = await c.error("response.cancel", response_id=response_id)
        assert error["code"] == "response_cancel_not_active"
        assert (await c.respond())[-1]["response"]["status"] == "completed"  # the session goes on


async def test_out_of_band_response_leaves_the_conversation_alone(url: str) -> None:
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        question = (await c.create_item(user_text("What's the weather?")))["item"]
        await c.send("response.create", response={"metadata": {"sample_id": "slow"}})
        default = (await c.until("response.created"))[-1]["response"]
        assert default["conversation_id"] is not None

        # While the default-conversation response is still active, an out-of-band one may run.
        await c.send("response.create", event_id="evt_oob", response={
            "conversation": "none", "output_modalities": ["text"], "metadata": {"sample_id": "oob"},
            "instructions": "Summarise the conversation.",
            "input": [{"type": "item_reference", "id": question["id"]},
                      {**user_text("Summarise that."), "id": "item_inline_oob"}]})
        events = await c.until("response.created")
        oob_id = events[-1]["response"]["id"]
        events += await c.until_done(oob_id)
        events += await c.until_done(default["id"])

        assert [e for e in events if e["type"] == "error"] == []
        oob = of_response(events, oob_id)
        assert oob[0]["response"]["conversation_id"] is None and oob[-1]["response"]["conversation_id"] is None
        assert oob[-1]["response"]["status"] == "completed"
        [output] = oob[-1]["response"]["output"]
        assert output["content"] == [{"type": "output_text", "text": "A summary of the conversation."}]
        about_oob = [e for e in events if e["type"].startswith("conversation.item.")
                     and output["id"] in (e.get("item_id"), (e.get("item") or {}).get("id"))]
        assert about_oob == []
        answer = of_response(events, default["id"])[-1]["response"]
        assert answer["status"] == "completed" and answer["conversation_id"] == default["conversation_id"]
        assert events.index(oob[-1]) < events.index(of_response(events, default["id"])[-1])  # they overlapped

        # The default conversation is unchanged: its last item is the default answer, and neither the
        # out-of-band output nor its inline input joined it.
        for item_id in (output["id"], "item_inline_oob"):
            assert (await c.error("conversation.item.retrieve", item_id=item_id))["code"] == "invalid_value"
        appended = await c.create_item(user_text("Thanks."))
        assert appended["previous_item_id"] == answer["output"][0]["id"]
        assert await c.retrieve(question["id"]) == question

        error = await c.error("response.create", response={
            "conversation": "none", "input": [{"type": "item_reference", "id": "item_missing"}]})
        assert (error["code"], error["param"]) == ("invalid_value", "response.input[0].id")
        # An inline item may not take the id of a conversation item (as with conversation.item.create): it would
        # replace that item's audio in the conversation.
        error = await c.error("response.create", response={"conversation": "none", "input": [
            {"id": question["id"], "type": "message", "role": "user",
             "content": [{"type": "input_audio", "audio": audio.b64(silence(200))}]}]})
        assert (error["code"], error["param"]) == ("invalid_value", "response.input[0].id")
        assert [e["type"] for e in await c.barrier()] == []  # no response.created after the refusals


async def test_max_output_tokens_ends_the_response_incomplete(url: str) -> None:
    first_sentence = Synthesizer(TTSSettings()).speech(sentences(LONG)[0])
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        await c.create_item(user_text("Tell me something."))
        turn = await c.respond(metadata={"sample_id": "long"}, max_output_tokens=10)
        done = turn[-1]["response"]
        assert (done["status"], done["status_details"]) == ("incomplete", {"type": "incomplete",
                                                                          "reason": "max_output_tokens"})
        assert done["max_output_tokens"] == 10
        [item] = done["output"]
        assert item["status"] == "incomplete"
        assert only(turn, "response.output_item.done")["item"]["status"] == "incomplete"
        sent = audio_of(turn)
        assert 0 < len(sent) < len(first_sentence) / 2 and first_sentence.startswith(sent)
        assert item["content"][0]["transcript"] == transcript_of(turn)
        assert done["usage"]["output_tokens"] <= 10 + 2  # within the limit, give or take rounding


async def test_parallel_function_calls_in_text_mode(url: str) -> None:
    async with session(url) as c:
        await c.update({**MANUAL_SESSION, "output_modalities": ["text"], "tools": TOOLS})
        await c.create_item(user_text("Weather in Paris and Rome, and the time in Paris?"))
        turn = await c.respond(metadata={"sample_id": "tools"})
        assert not [e for e in turn if "audio" in e["type"] or e["type"].startswith("response.output_text")]
        done = turn[-1]["response"]
        assert done["status"] == "completed" and done["output_modalities"] == ["text"]
        calls = done["output"]
        assert [(call["type"], call["status"]) for call in calls] == [("function_call", "completed")] * 3
        assert [(call["name"], json.loads(call["arguments"])) for call in calls] == \
            [(t["name"], t["arguments"]) for t in TOOL_CALLS]
        assert len({call["call_id"] for call in calls}) == 3
        for index, call in enumerate(calls):
            events = [e for e in turn if call["id"] in (e.get("item_id"), (e.get("item") or {}).get("id"))]
            kinds = [e["type"] for e in events if e["type"] != "response.function_call_arguments.delta"]
            assert kinds == ["response.output_item.added", "conversation.item.added",
                             "response.function_call_arguments.done", "conversation.item.done",
                             "response.output_item.done"]
            assert events[0]["output_index"] == index and events[0]["item"]["arguments"] == ""
            deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
            assert "".join(e["delta"] for e in deltas) == call["arguments"]
            arguments_done = only(events, "response.function_call_arguments.done")
            assert (arguments_done["call_id"], arguments_done["output_index"], arguments_done["name"],
                    arguments_done["arguments"]) == (call["call_id"], index, call["name"], call["arguments"])

        error = await c.error("conversation.item.create", item={
            "type": "function_call_output", "call_id": "call_unknown", "output": "{}"})
        assert (error["code"], error["param"]) == ("invalid_value", "item.call_id")
        for call in calls:
            await c.create_item({"type": "function_call_output", "call_id": call["call_id"],
                                 "output": json.dumps({"result": call["name"]})})
        assert await c.barrier() == []  # tool outputs alone start no response
        turn = await c.respond(metadata={"sample_id": "tools"})
        assert [e["type"] for e in turn].count("response.created") == 1
        assert only(turn, "response.output_text.done")["text"] == AFTER_TOOLS
        assert turn[-1]["response"]["output"][0]["content"] == [{"type": "output_text", "text": AFTER_TOOLS}]


# -- server VAD -------------------------------------------------------------------------------------------------

async def test_server_vad_turns_on_the_session_audio_clock(url: str, question: bytes) -> None:
    onset_ms, offset_ms = voiced_span_ms(question)
    lead_ms, tail_ms = 700, 600
    written = b""  # everything appended in the session: the clock VAD offsets count on
    async with session(url) as c:  # the default session: server VAD on
        vad = c.events[0]["session"]["audio"]["input"]["turn_detection"]
        assert vad["type"] == "server_vad"
        for _ in range(2):
            clock_ms = len(written) * 1000 // audio.BYTES_PER_SECOND
            turn_audio = silence(lead_ms) + question + silence(tail_ms)
            await c.stream(turn_audio)
            written += turn_audio
            events = await c.until("response.done")
            kinds = [e["type"] for e in events]
            assert kinds[:5] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                                 "input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]
            assert kinds[5] == "response.created" and events[-1]["response"]["status"] == "completed"
            started, stopped, committed, added = events[:4]
            assert started["audio_start_ms"] == pytest.approx(
                clock_ms + lead_ms + onset_ms - vad["prefix_padding_ms"], abs=30)
            assert stopped["audio_end_ms"] == pytest.approx(
                clock_ms + lead_ms + offset_ms + vad["silence_duration_ms"], abs=30)
            item_id = started["item_id"]  # allocated at speech_started
            assert stopped["item_id"] == committed["item_id"] == added["item"]["id"] == item_id
            assert (added["item"]["role"], added["item"]["content"][0]["type"]) == ("user", "input_audio")

            part = (await c.retrieve(item_id))["content"][0]
            assert base64.b64decode(part["audio"]) == written[span(started, stopped)]


async def test_vad_without_auto_response_then_off_then_on_again(url: str, question: bytes) -> None:
    onset_ms, _ = voiced_span_ms(question)
    lead_ms = 300
    turn_audio = silence(lead_ms) + question + silence(500)
    written = b""
    async with session(url) as c:
        created = c.events[0]["session"]["audio"]["input"]["turn_detection"]
        updated = await c.update(audio={"input": {"turn_detection": {"type": "server_vad", "create_response": False}}})
        assert updated["audio"]["input"]["turn_detection"] == {**created, "create_response": False}  # merged
        await c.stream(turn_audio)
        written += turn_audio
        events = await c.until("conversation.item.done")
        assert [e["type"] for e in events] == [
            "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
            "conversation.item.added", "conversation.item.done"]
        assert await c.barrier() == []  # no response

        assert (await c.update(audio={"input": {"turn_detection": None}}))["audio"]["input"]["turn_detection"] is None
        await c.stream(turn_audio)
        written += turn_audio
        assert await c.barrier() == []  # no VAD events at all
        manual = await c.commit(b"")
        assert base64.b64decode((await c.retrieve(manual))["content"][0]["audio"]).endswith(turn_audio)

        # Audio written while VAD was off still counts on the session clock.
        await c.update(audio={"input": {"turn_detection": created}})
        clock_ms = len(written) * 1000 // audio.BYTES_PER_SECOND
        await c.stream(turn_audio)
        written += turn_audio
        events = await c.until("response.done")
        started = only(events, "input_audio_buffer.speech_started")
        assert started["audio_start_ms"] == pytest.approx(
            clock_ms + lead_ms + onset_ms - created["prefix_padding_ms"], abs=30)
        stopped = only(events, "input_audio_buffer.speech_stopped")
        part = (await c.retrieve(started["item_id"]))["content"][0]
        assert base64.b64decode(part["audio"]) == written[span(started, stopped)]


@pytest.mark.parametrize("interrupt", [True, False], ids=["interrupt", "no_interrupt"])
async def test_barge_in_cancels_the_playing_response(url: str, question: bytes, interrupt: bool) -> None:
    async with session(url) as c:
        await c.update(audio={"input": {"turn_detection": {"type": "server_vad", "interrupt_response": interrupt}}})
        await c.create_item(user_text("Hello?"))
        loop = asyncio.get_running_loop()
        started_s = loop.time()
        await c.send("response.create", response={"metadata": {"sample_id": "stuck" if interrupt else "slow"}})
        playing = (await c.until("response.created"))[-1]["response"]["id"]
        await c.stream(silence(300) + question + silence(500))  # arrives well before the answer's first audio
        events = await c.until_done(playing)
        if interrupt:  # the barge-in took effect at once, not when the answer's first audio was due
            assert loop.time() - started_s < STUCK_DELAY_MS / 1000 / 2
        kinds = [e["type"] for e in events]
        assert kinds.index("input_audio_buffer.speech_started") < len(kinds) - 1
        done = events[-1]["response"]
        if not interrupt:
            assert done["status"] == "completed" and audio_of(of_response(events, playing)) != b""
            return
        assert (done["status"], done["status_details"]) == ("cancelled", {"type": "cancelled",
                                                                         "reason": "turn_detected"})
        assert done["output"][0]["status"] == "incomplete"
        # The user's turn gets its own response once speech stops.
        while not (answers := [e for e in events if e["type"] == "response.done" and e["response"]["id"] != playing]):
            events.append(await c.next())
        started = only(events, "input_audio_buffer.speech_started")
        committed = only(events, "input_audio_buffer.committed")
        assert committed["item_id"] == started["item_id"]
        created = only([e for e in events if e["type"] == "response.created"], "response.created")
        assert events.index(committed) < events.index(created) and created["response"]["id"] != playing
        assert answers[0]["response"]["status"] == "completed"


# -- session.update ---------------------------------------------------------------------------------------------

async def test_session_update_refuses_unknown_fields_and_merges(url: str) -> None:
    async with session(url) as c:
        created = c.events[0]["session"]
        for update, code, param in [
            ({"type": "realtime", "temperature": 0.8}, "unknown_parameter", "session.temperature"),
            ({"type": "realtime", "audio": {"input": {"foo": 1}}}, "unknown_parameter", "session.audio.input.foo"),
            ({"type": "realtime", "output_modalities": ["audio", "text"]}, "invalid_value",
             "session.output_modalities"),
            ({"instructions": "x"}, "missing_required_parameter", "session.type"),
        ]:
            error = await c.error("session.update", session=update)
            assert (error["code"], error["param"]) == (code, param)
        assert await c.update() == created  # the refused updates changed nothing

        merged = await c.update(instructions="", tools=TOOLS, audio={
            "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 700}},
            "output": {"speed": 1.2}})
        assert merged["instructions"] == "" and merged["tools"] == TOOLS
        assert merged["audio"]["output"] == {**created["audio"]["output"], "speed": 1.2}
        assert merged["audio"]["input"] == {**created["audio"]["input"], "turn_detection": {
            **created["audio"]["input"]["turn_detection"], "silence_duration_ms": 700}}

        cleared = await c.update(tools=[], audio={"input": {"turn_detection": None}})
        assert cleared["tools"] == [] and cleared["audio"]["input"]["turn_detection"] is None
        assert cleared["audio"]["output"]["speed"] == 1.2 and cleared["instructions"] == ""


async def test_voice_is_locked_once_the_assistant_has_spoken(url: str) -> None:
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        assert (await c.update(audio={"output": {"voice": "cedar"}}))["audio"]["output"]["voice"] == "cedar"
        await c.create_item(user_text("Hi"))
        assert audio_of(await c.respond()) != b""
        error = await c.error("session.update", session={"type": "realtime", "audio": {"output": {"voice": "alloy"}}})
        assert (error["code"], error["param"]) == ("cannot_update_voice", "session.audio.output.voice")
        assert (await c.update(audio={"output": {"voice": "cedar"}}))["audio"]["output"]["voice"] == "cedar"


# -- errors -----------------------------------------------------------------------------------------------------

async def test_errors_echo_the_event_id_and_the_session_survives(url: str, question: bytes) -> None:
    async with session(url) as c:
        await c.update(MANUAL_SESSION)
        await c.conn.send_raw("{not json")
        error = (await c.until("error"))[-1]["error"]
        assert error["code"] == "invalid_json" and error["event_id"] is None  # nothing to echo

        for type_, fields, code, param in [
            ("no.such.event", {}, "invalid_event", "type"),
            ("session.update", {"session": {"instructions": "x"}}, "missing_required_parameter", "session.type"),
            ("input_audio_buffer.append", {"audio": "not base64!"}, "invalid_value", "audio"),
        ]:
            error = await c.error(type_, **fields)
            assert (error["code"], error["param"]) == (code, param)

        short = question[: audio.BYTES_PER_SECOND * 99 // 1000]
        await c.send("input_audio_buffer.append", audio=audio.b64(short))
        error = await c.error("input_audio_buffer.commit")
        assert error["code"] == "input_audio_buffer_commit_empty" and "99.00ms" in error["message"]

        # One append may carry at most 15 MiB of audio; the frame itself (20 MiB of base64) is accepted.
        oversized = bytes(15 * 1024 * 1024 + 2)
        error = await c.error("input_audio_buffer.append", audio=audio.b64(oversized))
        assert (error["code"], error["param"]) == ("invalid_value", "audio")

        # None of the refused appends reached the buffer: it holds the 99 ms plus what comes next.
        more = question[len(short) : len(short) + audio.BYTES_PER_SECOND // 100]
        item = await c.commit(more)
        assert base64.b64decode((await c.retrieve(item))["content"][0]["audio"]) == short + more

        await c.send("response.create", response={"metadata": {"sample_id": "slow"}})
        active = (await c.until("response.created"))[-1]["response"]["id"]
        error = await c.error("response.create")
        assert error["code"] == "conversation_already_has_active_response" and active in error["message"]
        events = await c.until_done(active)
        assert "response.created" not in [e["type"] for e in events]  # none for the refused create
        assert (await c.respond())[-1]["response"]["status"] == "completed"


async def test_input_buffer_limit(question: bytes) -> None:
    async with running(ServerConfig(port=0, max_buffer_s=1.0)) as (_, url), session(url) as c:
        await c.update(MANUAL_SESSION)
        part = question[: audio.BYTES_PER_SECOND * 6 // 10]
        await c.send("input_audio_buffer.append", audio=audio.b64(part))
        error = await c.error("input_audio_buffer.append", audio=audio.b64(part))
        assert (error["code"], error["param"]) == ("input_audio_buffer_too_large", "audio")
        item = await c.commit(b"")
        assert base64.b64decode((await c.retrieve(item))["content"][0]["audio"]) == part


# -- connection limits ------------------------------------------------------------------------------------------

async def recv_event(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT_S):
        event = json.loads(await ws.recv())
    SERVER_EVENT.validate_python(event)
    return event


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(TIMEOUT_S):
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_frame_over_the_size_limit_closes_1009(url: str) -> None:
    # Not `async with`: the server closes while the client may still be writing, and closing the client again
    # afterwards trips over its already-lost transport (websockets 15 on Python 3.11).
    ws = await connect(url, compression=None, max_size=None)
    assert (await recv_event(ws))["type"] == "session.created"
    envelope = '{"type": "input_audio_buffer.append", "audio": "%s"}'
    frame = envelope % ("A" * (MAX_MESSAGE_BYTES + 1 - len(envelope % "")))
    assert len(frame) == MAX_MESSAGE_BYTES + 1
    with contextlib.suppress(ConnectionClosed):
        await ws.send(frame)
    assert (await closed_with(ws))[0] == 1009


async def test_sessions_beyond_the_limit_get_http_429() -> None:
    async with running(ServerConfig(port=0, max_sessions=2)) as (_, url):
        async with connect(url) as first, connect(url) as second:
            for ws in (first, second):
                assert (await recv_event(ws))["type"] == "session.created"
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            assert refused.value.response.status_code == 429


async def test_session_expiry_sends_session_expired_then_closes_1001() -> None:
    async with running(ServerConfig(port=0, max_session_s=0.5)) as (_, url), connect(url) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        started = asyncio.get_running_loop().time()
        error = await recv_event(ws)
        assert asyncio.get_running_loop().time() - started > 0.3
        assert error["type"] == "error"
        assert (error["error"]["type"], error["error"]["code"]) == ("invalid_request_error", "session_expired")
        assert await closed_with(ws) == (1001, error["error"]["message"])


@pytest.mark.parametrize("query", ["model=gpt-realtime&intent=transcription", "call_id=rtc_0123"])
async def test_unsupported_session_kinds_fail_with_close_4000(url: str, query: str) -> None:
    async with connect(f"{url}?{query}") as ws:
        error = await recv_event(ws)
        assert error["type"] == "error" and error["error"]["code"] == "invalid_intent"
        assert await closed_with(ws) == (4000, "invalid_request_error.invalid_intent")
