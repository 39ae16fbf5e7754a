"""The Gemini Live client provider: the codec on plain dicts, then whole runs against `serve --protocol gemini`.

Runs compare the Gemini protocol with the OpenAI one on the same script (grades, tool calls, multi-turn history)
and check every frame the runner sends against google-genai's `LiveClientMessage` (extended only by
`setup.realtimeInputConfig`, which the SDK's 3.6.1 type lacks; see `test_server_gemini.py`), in a full turn, a
tool round and each fault kind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2s_eval import audio
from s2s_eval.log import read_records
from s2s_eval.providers._gemini_codec import GeminiCodec, close_kind, ga_usage
from s2s_eval.providers._gemini_setup import setup_message
from s2s_eval.reports.aggregate import load_runs
from s2s_eval.reports.html import render_report
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.server.app import ServerConfig, running
from s2s_eval.server.faults import FAULT_KINDS, FaultConfig
from s2s_eval.server.gemini_app import DEFAULT_PATH, GeminiConnection
from tests.conftest import ROOT, TIMING_SCALE
from tests.servers import serve_process, write_script
from tests.test_server_gemini import LiveClientMessage, validate

ANSWER = "The answer is valid."
TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather in a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
MANUAL = {"type": "realtime", "output_modalities": ["audio"], "instructions": "Answer briefly.",
          "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "Puck"}},
          "tools": TOOLS, "tool_choice": "auto"}
VAD = {**MANUAL, "audio": {**MANUAL["audio"], "input": {"turn_detection": {
    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
    "create_response": True, "interrupt_response": True}}}}


def frames(codec: GeminiCodec, *events: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(f) for e in events for f in codec.encode(e)]


def tone(ms: int) -> str:
    t = np.arange(audio.SAMPLE_RATE * ms // 1000) / audio.SAMPLE_RATE
    return audio.b64(audio.to_pcm16(0.3 * np.sin(2 * np.pi * 440 * t)))


def server(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()  # Google's server sends JSON in binary frames


# -- codec, client side ----------------------------------------------------------------------------------------


def test_the_ga_session_becomes_a_setup_google_documents() -> None:
    setup = setup_message(MANUAL, "gemini-live-2.5-flash")["setup"]
    assert setup == {
        "model": "models/gemini-live-2.5-flash",
        "generationConfig": {"responseModalities": ["AUDIO"],
                             "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}}},
        "systemInstruction": {"parts": [{"text": "Answer briefly."}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "The weather in a city.",
                                             "parametersJsonSchema": TOOLS[0]["parameters"]}]}],
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
        "inputAudioTranscription": {}, "outputAudioTranscription": {}}
    vad = setup_message(VAD, "models/m")["setup"]
    assert vad["model"] == "models/m"
    assert vad["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": False, "prefixPaddingMs": 300,
                                                                         "silenceDurationMs": 500}}
    text = setup_message({**MANUAL, "output_modalities": ["text"]}, "m")["setup"]
    assert text["generationConfig"] == {"responseModalities": ["TEXT"]} and "outputAudioTranscription" not in text
    validate(LiveClientMessage, json.dumps({"setup": setup}), failures := [])
    assert failures == []


def test_a_manual_turn_is_history_then_activity_start_audio_at_16_khz_and_activity_end() -> None:
    codec = GeminiCodec("m")
    assert codec.opened()[0]["type"] == "session.created"
    setup = frames(codec, {"type": "session.update", "session": MANUAL})
    history = [{"type": "conversation.item.create", "item": {"type": "message", "role": role, "content": [
        {"type": kind, "text": text}]}} for role, kind, text in (("system", "input_text", "Be kind."),
                                                                  ("user", "input_text", "Hi."),
                                                                  ("assistant", "output_text", "Hello!"))]
    assert frames(codec, *history) == []  # held until the turn starts
    appends = [{"type": "input_audio_buffer.append", "audio": tone(100)} for _ in range(5)]
    sent = frames(codec, *appends)
    assert codec.replies() == []
    tail = frames(codec, {"type": "input_audio_buffer.commit"})
    assert [e["type"] for e in codec.replies()] == ["input_audio_buffer.committed"]
    end = frames(codec, {"type": "response.create", "response": {"metadata": {"sample_id": "q1"}}})
    assert "setup" in setup[0]
    assert sent[0] == {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "System: Be kind."}]},
                                                   {"role": "user", "parts": [{"text": "Hi."}]},
                                                   {"role": "model", "parts": [{"text": "Hello!"}]}],
                                         "turnComplete": False}}
    assert sent[1] == {"realtimeInput": {"activityStart": {}}}
    chunks = [f["realtimeInput"]["audio"] for f in sent[2:] + tail]
    assert {c["mimeType"] for c in chunks} == {"audio/pcm;rate=16000"}
    samples = sum(len(base64.b64decode(c["data"])) // 2 for c in chunks)
    assert samples == 16000 * 500 // 1000  # every input sample arrives, resampled, once the tail is flushed
    assert end == [{"realtimeInput": {"activityEnd": {}}}]
    assert codec.session_headers({"sample_id": "q1"}) == {"X-S2S-Sample-Id": "q1"}
    failures: list[str] = []
    for frame in setup + sent + tail + end:
        validate(LiveClientMessage, json.dumps(frame), failures)
    assert failures == []


def test_a_text_turn_and_vad_audio() -> None:
    codec = GeminiCodec("m")
    frames(codec, {"type": "session.update", "session": VAD})
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Two plus two?"}]}
    assert frames(codec, {"type": "conversation.item.create", "item": item}, {"type": "response.create"}) == [
        {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "Two plus two?"}]}], "turnComplete": True}}]
    vad = frames(codec, {"type": "input_audio_buffer.append", "audio": tone(100)})
    assert list(vad[0]["realtimeInput"]) == ["audio"]  # no activity messages: the server's detection ends turns


# -- codec, server side ----------------------------------------------------------------------------------------


def test_a_model_turn_becomes_ga_response_events_with_usage_by_modality() -> None:
    codec = GeminiCodec("m")
    assert [e["type"] for e in codec.decode(server({"setupComplete": {}}))] == ["session.updated"]
    pcm = audio.b64(b"\x01\x00" * 2400)
    events = codec.decode(server({"serverContent": {"modelTurn": {"parts": [
        {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": pcm}}]}}}))
    events += codec.decode(server({"serverContent": {"outputTranscription": {"text": "Four."}}}))
    events += codec.decode(server({"serverContent": {"generationComplete": True}}))
    usage = {"promptTokenCount": 70, "responseTokenCount": 30, "totalTokenCount": 100,
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 20}, {"modality": "AUDIO", "tokenCount": 50}],
             "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}]}
    events += codec.decode(server({"serverContent": {"turnComplete": True}, "usageMetadata": usage}))
    assert [e["type"] for e in events] == ["response.created", "response.output_audio.delta",
                                           "response.output_audio_transcript.delta",
                                           "response.output_audio_transcript.done", "response.done"]
    response_id = events[0]["response"]["id"]
    assert all(e.get("response_id", response_id) == response_id for e in events)
    assert events[1]["delta"] == pcm and events[3]["transcript"] == "Four."
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["usage"] == {
        "total_tokens": 100, "input_tokens": 70, "output_tokens": 30,
        "input_token_details": {"text_tokens": 20, "audio_tokens": 50, "cached_tokens": 0},
        "output_token_details": {"audio_tokens": 30}}


def test_an_interrupted_turn_is_cancelled_as_ga_says_turn_detected() -> None:
    codec = GeminiCodec("m")
    codec.decode(server({"serverContent": {"outputTranscription": {"text": "I was"}}}))
    codec.decode(server({"serverContent": {"interrupted": True}}))
    done = codec.decode(server({"serverContent": {"turnComplete": True}}))[-1]["response"]
    assert (done["status"], done["status_details"]["reason"], done["usage"]) == ("cancelled", "turn_detected", None)


def test_a_tool_call_is_a_function_call_item_and_its_output_a_tool_response() -> None:
    codec = GeminiCodec("m")
    events = codec.decode(server({"toolCall": {"functionCalls": [
        {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}]}}))
    assert [e["type"] for e in events] == ["response.created", "response.output_item.done", "response.done"]
    item = events[1]["item"]
    assert (item["type"], item["call_id"], item["name"], json.loads(item["arguments"])) == (
        "function_call", "call_1", "get_weather", {"city": "Paris"})
    assert codec.decode(server({"serverContent": {"turnComplete": True}})) == []  # the model goes on after answers
    output = {"type": "function_call_output", "call_id": "call_1", "output": json.dumps({"sky": "sunny"})}
    sent = frames(codec, {"type": "conversation.item.create", "item": output}, {"type": "response.create"})
    assert sent == [{"toolResponse": {"functionResponses": [
        {"id": "call_1", "name": "get_weather", "response": {"output": {"sky": "sunny"}}}]}}]
    validate(LiveClientMessage, json.dumps(sent[0]), failures := [])
    assert failures == []


@pytest.mark.parametrize(("code", "reason", "went_away", "kind"), [
    (1011, "You exceeded your current quota, please check your plan and billing details.", False, "rate_limited"),
    (1011, "Internal error occurred.", False, "server_error"),
    (1007, "Request contains an invalid argument.", False, "invalid_request"),
    (1007, "API key not valid. Please pass a valid API key.", False, "auth"),
    (1008, "models/x is not found for API version v1beta, or is not supported for bidiGenerateContent", False,
     "invalid_request"),
    (1008, "Method doesn't allow unregistered callers (callers without established identity).", False, "auth"),
    (1008, "Session time limit (10 s) exceeded.", False, "session_expired"),
    (1008, "", True, "session_expired"),
])
def test_close_codes_are_failure_kinds(code: int, reason: str, went_away: bool, kind: str) -> None:
    classified = close_kind(code, reason, went_away)
    assert classified is not None and classified[0] == kind and str(code) in classified[1]
    assert close_kind(1000, "", False) is None


def test_usage_counts_thinking_as_text_output_and_cached_input() -> None:
    usage = ga_usage({"promptTokenCount": 10, "responseTokenCount": 5, "thoughtsTokenCount": 3,
                      "cachedContentTokenCount": 4, "totalTokenCount": 18})
    assert (usage["output_tokens"], usage["output_token_details"], usage["input_token_details"]["cached_tokens"]) == (
        8, {"text_tokens": 3}, 4)


def test_a_malformed_frame_is_a_protocol_error() -> None:
    with pytest.raises(ValueError):
        GeminiCodec("m").decode(b"[1, 2]")


# -- whole runs against the reference server --------------------------------------------------------------------


def gemini_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0] + DEFAULT_PATH if "/v1/realtime" in url else url


@contextlib.contextmanager
def both_servers(folder: Path, script: list[dict[str, Any]], *args: str):  # type: ignore[no-untyped-def]
    """The same script served over the OpenAI protocol and over Gemini Live, each in its own process."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_script(folder / "script.jsonl", script)
    common = ("--engine", "scripted", "--script", str(path), *args)
    with serve_process(*common, log=folder / "ga.log") as ga, \
            serve_process(*common, "--protocol", "gemini", log=folder / "gemini.log") as gemini:
        yield ga, gemini_url(gemini)


def grades(run_dir: Path) -> dict[str, tuple[Any, ...]]:
    return {r["sample_id"]: (r["status"], r["correct"], r["grade"]["reason"] if r["grade"] else None,
                             r["response_text"]) for r in read_records(run_dir)}


WRONG = {"valid": "invalid", "invalid": "valid", "Yes": "No", "No": "Yes"}


def big_bench_script(data_dir: Path, limit: int) -> list[dict[str, Any]]:
    """Right answers for even positions, wrong for odd ones."""
    from s2s_eval.datasets import load_samples, select  # noqa: PLC0415
    from s2s_eval.datasets.spec import load_eval  # noqa: PLC0415

    samples = select(load_samples(load_eval("big_bench_audio"), data_dir)[0], None, limit)
    lines = []
    for index, sample in enumerate(samples):
        target = sample.target
        answer = target if index % 2 == 0 else WRONG.get(target, str(int(target) + 1) if target.isdigit() else "no")
        lines.append({"sample_id": sample.sample_id, "responses": [{"text": f"The answer is {answer}."}]})
    return lines


async def test_big_bench_audio_grades_and_first_audio_match_the_openai_protocol(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """20 spoken questions over both protocols against one script and a 300 ms first-audio delay: the same grades
    sample by sample, and a Gemini median TTFA error within 2 ms (scaled by S2S_TIMING_SCALE). Gemini's manual
    turns upload at real time by default (no turn-end acknowledgement), so this test takes about a minute."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    delay_ms = 300
    with both_servers(tmp_path / "servers", big_bench_script(data_dir, 20),
                      "--first-audio-delay-ms", str(delay_ms)) as (ga, gemini):
        openai_run, _ = await execute(RunOptions(model="openai-compatible", eval="big_bench_audio", limit=20, url=ga,
                                                 out=tmp_path / "openai", data_dir=data_dir, progress=False))
        gemini_run, _ = await execute(RunOptions(model="gemini-compatible", eval="big_bench_audio", limit=20,
                                                 url=gemini, out=tmp_path / "gemini", data_dir=data_dir,
                                                 progress=False))
    assert grades(gemini_run) == grades(openai_run)
    assert {c for _, c, _, _ in grades(gemini_run).values()} == {True, False}
    errors = {run.name: sorted(r["latency"]["ttfa_ms"] - delay_ms for r in read_records(run))
              for run in (openai_run, gemini_run)}
    print("TTFA error, ms:", {k: (round(statistics.median(v), 3), [round(e, 1) for e in v]) for k, v in errors.items()})
    # A correctness bound, not the performance figure (about 2 ms on a quiet host; see the note on issue 14): the
    # clock must not start before the audio has left, which sending it all at once got wrong by 12-18 ms.
    bound_ms = max(10 * TIMING_SCALE, statistics.median(errors["openai"]))
    assert min(errors["gemini"]) >= 0 and statistics.median(errors["gemini"]) < bound_ms, errors
    gemini_records = list(read_records(gemini_run))
    assert all(r["usage"]["input_token_details"]["audio_tokens"] > 0 for r in gemini_records)
    assert json.loads((gemini_run / "spec.json").read_text())["runner"]["pace"] == "realtime"

    runs = load_runs([openai_run, gemini_run])
    assert [r.label for r in runs] == ["openai-compatible (openai-compatible/gpt-realtime · effort –)",
                                       "gemini-compatible (gemini-compatible/gemini-live-2.5-flash · effort –)"]
    page = render_report(runs)
    assert all(r.label.split(" (")[1].rstrip(")") in page for r in runs)


# -- conformance: every frame the runner sends, against the SDK's types -------------------------------------------


@contextlib.asynccontextmanager
async def validating_server(folder: Path, script: list[dict[str, Any]], **config: Any
                            ) -> AsyncIterator[tuple[str, list[dict[str, Any]], list[str]]]:
    """The Gemini reference server in this loop; yields its URL, every client message and the validation failures."""
    folder.mkdir(parents=True, exist_ok=True)
    received: list[dict[str, Any]] = []
    failures: list[str] = []
    on_frame = GeminiConnection.on_frame

    async def validating_on_frame(self: GeminiConnection, frame: str | bytes, at: float) -> None:
        validate(LiveClientMessage, frame, failures)
        received.append(json.loads(frame))
        await on_frame(self, frame, at)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GeminiConnection, "on_frame", validating_on_frame)
        path = write_script(folder / "script.jsonl", script)
        async with running(ServerConfig(port=0, engine="scripted", script=path, protocol="gemini", **config)) as (
                _, url):
            yield gemini_url(url), received, failures


def first_keys(messages: list[dict[str, Any]]) -> list[str]:
    """Each client message as its field (and realtimeInput's sub-field), repeats collapsed."""
    out: list[str] = []
    for message in messages:
        (name, body), = message.items()
        kind = f"{name}.{next(iter(body))}" if name == "realtimeInput" else name
        if not out or out[-1] != kind:
            out.append(kind)
    return out


async def test_a_full_turn_sends_only_messages_the_sdk_types_accept(data_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    async with validating_server(tmp_path, [{"sample_id": "*", "responses": [{"text": ANSWER}]}]) as (
            url, received, failures):
        run_dir, _ = await execute(RunOptions(model="gemini-compatible", eval="big_bench_audio", limit=1, url=url,
                                              out=tmp_path / "run", data_dir=data_dir, progress=False, pace="burst"))
    record = next(iter(read_records(run_dir)))
    assert failures == [] and record["status"] == "ok" and record["response_text"] == ANSWER
    assert first_keys(received) == ["setup", "realtimeInput.activityStart", "realtimeInput.audio",
                                    "realtimeInput.activityEnd"]


async def test_a_vad_turn_streams_audio_without_activity_messages(data_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Server detection on: audio and trailing silence in real time, no activityStart/End; the server's VAD ends
    the turn, so the first audio comes at least the silence duration after the last voiced sample (time zero)."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    async with validating_server(tmp_path, [{"sample_id": "*", "responses": [{"text": ANSWER}]}]) as (
            url, received, failures):
        run_dir, _ = await execute(RunOptions(model="gemini-compatible", eval="big_bench_audio", limit=1, url=url,
                                              out=tmp_path / "run", data_dir=data_dir, progress=False,
                                              turn_mode="vad"))
    record = next(iter(read_records(run_dir)))
    assert failures == [] and record["status"] == "ok" and record["response_text"] == ANSWER
    assert first_keys(received) == ["setup", "realtimeInput.audio"]
    assert received[0]["setup"]["realtimeInputConfig"]["automaticActivityDetection"]["disabled"] is False
    assert record["latency"]["ttfa_ms"] >= 500  # the profile's silence_duration_ms


@pytest.mark.parametrize("fault", FAULT_KINDS)
async def test_each_fault_kind_is_classified_and_every_frame_conforms(fault: str, data_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    expected = {"rate_limit": ("rate_limited", "rate_limited"), "server_error": ("server_error", "transient"),
                "invalid_request": ("invalid_request", "fatal"), "disconnect": ("disconnect", "transient"),
                "malformed": ("protocol", "transient"), "stall": ("timeout", "transient")}
    async with validating_server(tmp_path, [{"sample_id": "*", "responses": [{"text": ANSWER}]}],
                                 faults=FaultConfig(kinds=(fault,), rate=1.0)) as (url, received, failures):
        run_dir, _ = await execute(RunOptions(model="gemini-compatible", eval="big_bench_audio", limit=1, url=url,
                                              out=tmp_path / "run", data_dir=data_dir, progress=False, pace="burst",
                                              max_attempts=1, turn_timeout_s=2 * TIMING_SCALE))
    record = next(iter(read_records(run_dir)))
    assert failures == [] and received, fault
    assert (record["status"], record["error"]["kind"], record["error"]["class"]) == ("error", *expected[fault])
    if fault in ("rate_limit", "server_error", "invalid_request"):
        assert record["error"]["message"].startswith("Gemini closed the session (10")


async def test_go_away_then_the_session_limit_is_session_expired(data_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    slow = [{"sample_id": "*", "responses": [{"text": ANSWER, "first_audio_delay_ms": 5000}]}]
    async with validating_server(tmp_path, slow, max_session_s=1.0) as (url, received, failures):
        run_dir, _ = await execute(RunOptions(model="gemini-compatible", eval="big_bench_audio", limit=1, url=url,
                                              out=tmp_path / "run", data_dir=data_dir, progress=False, pace="burst",
                                              max_attempts=1))
    record = next(iter(read_records(run_dir)))
    assert failures == []
    assert (record["error"]["kind"], record["error"]["class"]) == ("session_expired", "transient"), record["error"]


# -- tools and history ------------------------------------------------------------------------------------------


async def test_complexfuncbench_tool_calls_are_answered_and_graded_as_over_openai(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s2s_eval.datasets import load_samples  # noqa: PLC0415
    from s2s_eval.datasets.complexfuncbench import FIXTURE_DIR, golden_script  # noqa: PLC0415
    from s2s_eval.datasets.spec import load_eval  # noqa: PLC0415
    from tests.test_complexfuncbench import JUDGE_ENV  # noqa: PLC0415

    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path / "cache"))
    for name in (*JUDGE_ENV, "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    samples, _ = load_samples(load_eval("complexfuncbench"), FIXTURE_DIR)
    script = [golden_script(s) for s in samples]
    runs = {}
    with both_servers(tmp_path / "servers", script) as (ga, _):
        runs["openai"], _ = await execute(RunOptions(model="openai-compatible", eval="complexfuncbench", url=ga,
                                                     out=tmp_path / "openai", data_dir=FIXTURE_DIR, progress=False,
                                                     max_attempts=1))
    async with validating_server(tmp_path / "gemini", script) as (url, received, failures):
        runs["gemini"], _ = await execute(RunOptions(model="gemini-compatible", eval="complexfuncbench", url=url,
                                                     out=tmp_path / "gemini", data_dir=FIXTURE_DIR, progress=False,
                                                     max_attempts=1, pace="burst"))
    assert failures == [] and any("toolResponse" in m for m in received)

    def calls(run: Path) -> dict[str, list[tuple[str, str]]]:
        return {r["sample_id"]: [(c["name"], c["arguments"]) for resp in r["responses"]
                                 for c in resp["function_calls"]] for r in read_records(run)}

    assert grades(runs["gemini"]) == grades(runs["openai"])
    made = calls(runs["gemini"])
    assert {k: [n for n, _ in v] for k, v in made.items()} == {
        k: [n for n, _ in v] for k, v in calls(runs["openai"]).items()}
    assert all(made.values()) and {r["status"] for r in read_records(runs["gemini"])} == {"ok"}
    assert all(json.loads(a) == json.loads(b) for k in made for (_, a), (_, b) in
               zip(made[k], calls(runs["openai"])[k], strict=True))


async def test_multichallenge_replays_history_and_grades_as_over_openai(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.openai_fake import FakeOpenAI  # noqa: PLC0415
    from tests.test_multichallenge import (  # noqa: PLC0415
        ANSWERS,
        EXPECTED,
        JUDGE_ENV,
        ROWS,
        judge_replies,
        use_judge,
        write_data,
    )

    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path / "cache"))
    for name in (*JUDGE_ENV, "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    data = write_data(tmp_path / "data", ROWS)
    script = [{"sample_id": sid, "responses": [{"text": text}]} for sid, (text, _) in ANSWERS.items()]
    runs = {}
    async with FakeOpenAI(chat=judge_replies({text: reply for text, reply in ANSWERS.values()})) as judge:
        use_judge(monkeypatch, judge)
        with both_servers(tmp_path / "servers", script) as (ga, _):
            runs["openai"], _ = await execute(RunOptions(model="openai-compatible", eval="multichallenge", url=ga,
                                                         out=tmp_path / "openai", data_dir=data, progress=False,
                                                         max_attempts=1))
        async with validating_server(tmp_path / "gemini", script) as (url, received, failures):
            runs["gemini"], _ = await execute(RunOptions(model="gemini-compatible", eval="multichallenge", url=url,
                                                         out=tmp_path / "gemini", data_dir=data, progress=False,
                                                         max_attempts=1, pace="burst"))
    assert failures == []
    history = [m["clientContent"] for m in received if "clientContent" in m]
    assert history and all(c["turnComplete"] is False for c in history)  # prior turns only add context
    roles = {t["role"] for c in history for t in c["turns"]}
    assert roles == {"user", "model"}
    assert any("inlineData" in p for c in history for t in c["turns"] for p in t["parts"])  # spoken user turns
    assert grades(runs["gemini"]) == grades(runs["openai"])
    assert {k: v[1] for k, v in grades(runs["gemini"]).items() if k in EXPECTED} == EXPECTED


# -- keys ----------------------------------------------------------------------------------------------------------


def test_a_gemini_model_without_its_key_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "s2s_eval", "run", "--model", "gemini-2.5-flash-native-audio",
                             "--eval", "big_bench_audio", "--limit", "1", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "GEMINI_API_KEY" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
