"""The provider layer: OpenAI reasoning effort, Grok's differences, keys, shutdowns, session-field checks, and a
report of runs from two providers. Real servers on loopback (the reference server in GA and Grok mode, in this
event loop so the frames each side sent can be recorded); frames checked with the SDK's and Grok's documented types.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import Field, TypeAdapter
from websockets.asyncio.server import ServerConnection

from s2s_eval.errors import UserError
from s2s_eval.providers import get_provider
from s2s_eval.providers._xai import GrokCodec, XAIOptions
from s2s_eval.reports.aggregate import groups, load_runs
from s2s_eval.reports.compare import compare
from s2s_eval.reports.html import render_report
from s2s_eval.runners.profile import load_profile
from s2s_eval.runners.run import RunOptions, effective_profile, execute
from s2s_eval.server import app
from s2s_eval.server.app import ServerConfig, running
from tests import grok_shapes
from tests.servers import serve_process, write_script

GA_CLIENT = TypeAdapter(Annotated[RealtimeClientEvent, Field(discriminator="type")])
GA_SERVER = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])
ANSWER = "The answer is valid."


@contextlib.asynccontextmanager
async def recorded_server(tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
                          ) -> AsyncIterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """A scripted reference server in this loop; yields its URL, the client events it got and the events it sent."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    on_frame, send = app.Connection.on_frame, ServerConnection.send

    async def record_frame(self: app.Connection, frame: Any, at: float) -> None:
        received.append(json.loads(frame))
        await on_frame(self, frame, at)

    async def record_send(self: ServerConnection, message: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(json.loads(message))
        await send(self, message, *args, **kwargs)

    monkeypatch.setattr(app.Connection, "on_frame", record_frame)
    monkeypatch.setattr(ServerConnection, "send", record_send)
    script = write_script(tmp_path / f"{protocol}.jsonl", [{"sample_id": "*", "responses": [{"text": ANSWER}]}])
    config = ServerConfig(port=0, engine="scripted", script=script, protocol=protocol)  # type: ignore[arg-type]
    async with running(config) as (_, url):
        yield url, received, sent


def run_options(model: str, url: str, out: Path, data_dir: Path, **overrides: Any) -> RunOptions:
    return RunOptions(**{"model": model, "eval": "big_bench_audio", "limit": 2, "url": url, "out": out,
                         "data_dir": data_dir, "progress": False, "input_modality": "text", **overrides})


# -- OpenAI: reasoning effort -----------------------------------------------------------------------------------


async def test_reasoning_effort_is_sent_as_the_sdk_types_it(tmp_path: Path, data_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --model gpt-realtime-2 --reasoning-effort high` sends session.reasoning.effort = high in a session.update
    the SDK's client types accept, and the reference server's replies pass the SDK's server types."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a loopback URL needs no key
    async with recorded_server(tmp_path, "ga", monkeypatch) as (url, received, sent):
        run_dir, summary = await execute(run_options("gpt-realtime-2", url, tmp_path / "run", data_dir,
                                                     reasoning_effort="high"))
    updates = [e for e in received if e["type"] == "session.update"]
    assert len(updates) == 2 and all(u["session"]["reasoning"] == {"effort": "high"} for u in updates)
    for event in received:
        GA_CLIENT.validate_python(event)
    for event in sent:
        GA_SERVER.validate_python(event)
    assert summary["counts"]["ok"] == 2
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["model"]["reasoning_effort"] == "high" and spec["provider"]["reasoning_effort"] == "high"
    assert spec["provider"]["shutdown"] is None


def test_the_profile_default_effort_and_what_is_refused_before_connecting() -> None:
    assert load_profile("gpt-realtime-2").reasoning_effort == "low"
    assert effective_profile(RunOptions(model="gpt-realtime-2.1", eval="x", reasoning_effort="xhigh")
                             ).reasoning_effort == "xhigh"
    with pytest.raises(UserError, match="'extreme' is not accepted by gpt-realtime-2 .*minimal, low, medium, high"):
        effective_profile(RunOptions(model="gpt-realtime-2", eval="x", reasoning_effort="extreme"))
    with pytest.raises(UserError, match="gpt-realtime .*not a reasoning model"):
        effective_profile(RunOptions(model="gpt-realtime", eval="x", reasoning_effort="high"))
    with pytest.raises(UserError, match="'low' is not accepted by grok-voice-think-fast-1.0 .*none, high"):
        effective_profile(RunOptions(model="grok-voice", eval="x", reasoning_effort="low"))


def custom_profile(home: Path, name: str, **fields: Any) -> None:
    (home / "runners").mkdir(parents=True, exist_ok=True)
    body = {"name": name, "provider": "openai", "model": "gpt-realtime-2", "auth_env": "OPENAI_API_KEY", **fields}
    (home / "runners" / f"{name}.yaml").write_text(json.dumps(body), encoding="utf-8")


def test_extra_session_fields_are_checked_with_the_sdk_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2S_HOME", str(tmp_path))
    custom_profile(tmp_path, "typo", session_fields={"max_output_token": 200})
    custom_profile(tmp_path, "nested", session_fields={"audio": {"output": {"sped": 1.2}}})
    custom_profile(tmp_path, "wrong-type", session_fields={"max_output_tokens": "plenty"})
    custom_profile(tmp_path, "good", session_fields={"max_output_tokens": 200, "parallel_tool_calls": False,
                                                     "audio": {"output": {"speed": 1.2}}})
    with pytest.raises(UserError, match=r"session\.max_output_token is not a session field \(did you mean "
                                        r"max_output_tokens\?\)"):
        effective_profile(RunOptions(model="typo", eval="x"))
    with pytest.raises(UserError, match=r"session\.audio\.output\.sped is not a session field .*speed"):
        effective_profile(RunOptions(model="nested", eval="x"))
    with pytest.raises(UserError, match=r"session\.max_output_tokens"):
        effective_profile(RunOptions(model="wrong-type", eval="x"))
    (tmp_path / "runners" / "grok-typo.yaml").write_text(json.dumps({
        "name": "grok-typo", "provider": "xai", "model": "grok-voice-think-fast-1.0",
        "session_fields": {"instruction": "hi"}}), encoding="utf-8")
    with pytest.raises(UserError, match=r"session\.instruction is not a session field xAI documents \(did you mean "
                                        r"instructions\?\)"):
        effective_profile(RunOptions(model="grok-typo", eval="x"))
    good = effective_profile(RunOptions(model="good", eval="x"))
    assert good.api.session_update(good, {"type": "realtime"})["parallel_tool_calls"] is False


# -- keys, shutdowns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "variable"), [("grok-voice", "XAI_API_KEY"),
                                                   ("gemini-3.1-flash-live", "GEMINI_API_KEY"),
                                                   ("gemini-2.5-flash-native-audio", "GEMINI_API_KEY")])
def test_a_profile_without_its_key_stops_in_one_line_naming_it(profile: str, variable: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("XAI_API_KEY", "GEMINI_API_KEY")}
    done = subprocess.run([sys.executable, "-m", "s2s_eval", "run", "--model", profile, "--eval", "big_bench_audio",
                           "--limit", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert lines[0].count(variable) >= 1 and profile in lines[0]
    assert not (tmp_path / "run").exists()


def test_gemini_sends_its_key_as_a_header_never_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    profile = load_profile("gemini-3.1-flash-live")
    url = profile.api.endpoint(profile, None)
    assert url.startswith("wss://generativelanguage.googleapis.com/ws/") and "g-secret" not in url
    assert profile.api.auth_headers(profile, url) == {"x-goog-api-key": "g-secret"}


async def test_a_model_with_an_announced_shutdown_warns_once_and_records_the_date(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    async with recorded_server(tmp_path, "ga", monkeypatch) as (url, _, _):
        run_dir, _ = await execute(run_options("gpt-realtime", url, tmp_path / "run", data_dir, limit=1))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: gpt-realtime has an announced shutdown on 2027-01-20; the recommended replacement "
                        "is gpt-realtime-2.1 (openai SDK 3.54 model docstring; replacement per Retell's migration "
                        "notice)"]
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["provider"]["shutdown"]["date"] == "2027-01-20"
    assert spec["provider"]["shutdown"]["replacement"] == "gpt-realtime-2.1"


# -- xAI Grok ---------------------------------------------------------------------------------------------------


def test_the_grok_codec_maps_each_documented_difference() -> None:
    codec = GrokCodec(XAIOptions())
    assert codec.decode(json.dumps({"type": "conversation.created", "event_id": "e1",
                                    "conversation": {"id": "c", "object": "realtime.conversation"}}))[0]["type"] \
        == "session.created"
    assert codec.decode(json.dumps({"type": "session.created", "event_id": "e2", "session": {}})) == []  # once
    assert codec.decode(json.dumps({"type": "ping", "event_id": "e3", "timestamp": 1})) == []
    assert codec.decode(json.dumps({"type": "response.audio.delta", "delta": ""}))[0]["type"] \
        == "response.output_audio.delta"
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    done = codec.decode(json.dumps({"type": "response.done", "event_id": "e4", "usage": {"total_tokens": 9},
                                    "response": {"id": "r", "output": [call]}}))
    assert [e["type"] for e in done] == ["response.output_item.done", "response.done"]
    assert done[0]["item"] == call and done[1]["response"]["usage"] == {"total_tokens": 9}
    [frame] = codec.encode({"type": "session.update", "session": {
        "type": "realtime", "output_modalities": ["audio"], "instructions": "hi", "reasoning": {"effort": "high"},
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                  "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "Ara"}}}})
    session = json.loads(frame)["session"]
    assert session == {"instructions": "hi", "reasoning": {"effort": "high"}, "voice": "Ara", "turn_detection": None,
                       "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                                 "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    [frame] = codec.encode({"type": "response.create", "event_id": "x", "response": {"metadata": {"sample_id": "a"}}})
    assert json.loads(frame) == {"type": "response.create", "event_id": "x"}
    options = {"provider_options": {"ready_events": ["session.created"]}}
    xai_codec = get_provider("xai").codec(load_profile("grok-voice").model_copy(update=options))
    assert isinstance(xai_codec, GrokCodec) and xai_codec.options.ready_events == ("session.created",)


async def test_a_grok_run_against_the_grok_shaped_server_has_no_validation_failures(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Conformance: every frame either side sent validates against Grok's documented shapes."""
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    async with recorded_server(tmp_path, "grok", monkeypatch) as (url, received, sent):
        run_dir, summary = await execute(run_options("grok-voice", url, tmp_path / "run", data_dir,
                                                     input_modality="audio", reasoning_effort="high"))
    failures = []
    for adapter, events in ((grok_shapes.CLIENT_EVENT, received), (grok_shapes.SERVER_EVENT, sent)):
        for event in events:
            try:
                adapter.validate_python(event)
            except ValueError as exc:
                failures.append(f"{event.get('type')}: {str(exc).splitlines()[:3]}")
    assert failures == []
    assert sent[0]["type"] == "conversation.created" and sent[1]["type"] == "ping"
    assert not any(e["type"] == "session.created" for e in sent)
    assert {e["type"] for e in received} >= {"session.update", "input_audio_buffer.append", "response.create"}
    assert summary["counts"]["ok"] == 2
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert all(r["response_text"] == ANSWER and r["latency"]["ttfa_ms"] for r in records)
    assert all(r["usage"]["total_tokens"] > 0 and r["cost_usd"] is None for r in records)  # not priced, never $0


# -- reports across providers and efforts ------------------------------------------------------------------------


async def test_one_report_shows_an_openai_and_a_grok_run_with_provider_and_effort(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    async with recorded_server(tmp_path / "a", "ga", monkeypatch) as (url, _, _):
        openai_low, _ = await execute(run_options("gpt-realtime-2", url, tmp_path / "low", data_dir))
        openai_high, _ = await execute(run_options("gpt-realtime-2", url, tmp_path / "high", data_dir,
                                                   reasoning_effort="high"))
    monkeypatch.undo()
    async with recorded_server(tmp_path / "b", "grok", monkeypatch) as (url, _, _):
        grok, _ = await execute(run_options("grok-voice", url, tmp_path / "grok", data_dir))
    runs = load_runs([openai_low, openai_high, grok])
    assert [r.label for r in runs] == ["gpt-realtime-2 (openai/gpt-realtime-2 · effort low)",
                                       "gpt-realtime-2 (openai/gpt-realtime-2 · effort high)",
                                       "grok-voice (xai/grok-voice-think-fast-1.0 · effort –)"]
    # one model at two efforts is two series (trends, sweeps, modality tables), not one model's history
    assert sorted({g.name for g in groups(runs)}) == ["gpt-realtime-2 · effort high", "gpt-realtime-2 · effort low",
                                                     "grok-voice"]
    page = render_report(runs)
    for label in ("openai/gpt-realtime-2 · effort low", "openai/gpt-realtime-2 · effort high",
                  "xai/grok-voice-think-fast-1.0 · effort –"):
        assert label in page
    assert 'id="provider-cost"' in page and "not priced" in page
    warnings = compare(openai_low, openai_high).warnings
    assert warnings[0] == "reasoning efforts differ: base low vs new high"


def test_the_command_line_sets_the_effort_and_refuses_a_wrong_one(tmp_path: Path, data_dir: Path) -> None:
    """`s2s-eval run --model gpt-realtime-2 --reasoning-effort high` as typed, against a `serve` process."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    script = write_script(tmp_path / "s.jsonl", [{"sample_id": "*", "responses": [{"text": ANSWER}]}])
    base = [sys.executable, "-m", "s2s_eval", "run", "--model", "gpt-realtime-2", "--eval", "big_bench_audio",
            "--limit", "1", "--input", "text", "--data-dir", str(data_dir)]
    with serve_process("--engine", "scripted", "--script", str(script)) as url:
        done = subprocess.run([*base, "--url", url, "--reasoning-effort", "high", "--out", str(tmp_path / "run")],
                              capture_output=True, text=True, env=env, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        refused = subprocess.run([*base, "--url", url, "--reasoning-effort", "extreme", "--out", str(tmp_path / "x")],
                                 capture_output=True, text=True, env=env, timeout=300, check=False)
    spec = json.loads((tmp_path / "run" / "spec.json").read_text())
    assert spec["model"]["reasoning_effort"] == "high"
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1 and "'extreme' is not accepted" in lines[0]
    assert not (tmp_path / "x").exists()


def test_a_provider_refuses_a_protocol_shape_it_does_not_speak() -> None:
    with pytest.raises(UserError, match="protocol 'beta' is not spoken by the xai provider"):
        effective_profile(RunOptions(model="grok-voice", eval="x", protocol="beta"))
