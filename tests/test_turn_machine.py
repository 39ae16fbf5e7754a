"""The session machine with plain dicts: no sockets, explicit times."""

from __future__ import annotations

import base64
import json

from s2s_eval import audio
from s2s_eval.protocol_beta import client_event_to_beta, server_event_to_ga
from s2s_eval.runners.session import FunctionCall, HistoryItem, SessionMachine, SessionPlan, UserTurn, classify_error

PCM = b"\x01\x00" * 24_000  # 1 s of audio
UPDATE = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def plan(**overrides) -> SessionPlan:  # type: ignore[no-untyped-def]
    return SessionPlan(**{"session_update": UPDATE, "turns": (UserTurn(pcm=PCM),), "metadata": {"sample_id": "s1"},
                          **overrides})


def started(machine: SessionMachine | None = None) -> SessionMachine:
    machine = machine or SessionMachine(plan())
    [update] = machine.on_event({"type": "session.created"}, 0.0)
    assert update["type"] == "session.update" and update["session"] == UPDATE
    sent = machine.on_event({"type": "session.updated"}, 0.1)
    appends = [e for e in sent if e["type"] == "input_audio_buffer.append"]
    assert len(appends) == 10 and b"".join(base64.b64decode(e["audio"]) for e in appends) == PCM
    assert sent[-1]["type"] == "input_audio_buffer.commit"
    assert machine.on_event({"type": "conversation.item.added"}, 0.2) == []  # not yet: wait for committed
    [create] = machine.on_event({"type": "input_audio_buffer.committed", "item_id": "i1"}, 0.3)
    assert create["type"] == "response.create" and create["response"]["metadata"] == {"sample_id": "s1"}
    machine.sent(create, 10.0)
    return machine


def respond(machine: SessionMachine, rid: str, t0: float, *, text: str = "Four.", calls=(), status="completed"):  # type: ignore[no-untyped-def]
    out = machine.on_event({"type": "response.created", "response": {"id": rid}}, t0 + 0.01)
    out += machine.on_event({"type": "response.output_audio_transcript.delta", "response_id": rid, "item_id": "a",
                             "delta": text}, t0 + 0.2)
    for call in calls:
        out += machine.on_event({"type": "response.output_item.done", "response_id": rid, "item": {
            "type": "function_call", "status": "completed", **call}}, t0 + 0.3)
    out += machine.on_event({"type": "response.done", "response": {"id": rid, "status": status,
                                                                   "usage": {"total_tokens": 5}}}, t0 + 0.5)
    return out


def test_a_full_turn_times_every_milestone_from_response_create() -> None:
    machine = started()
    delta = base64.b64encode(b"\x02\x00" * 2400).decode()
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 10.010)
    machine.on_event({"type": "response.output_audio_transcript.delta", "response_id": "r1", "item_id": "a",
                      "delta": "It is "}, 10.250)
    machine.on_event({"type": "response.output_audio.delta", "response_id": "r1", "delta": delta}, 10.300)
    machine.on_event({"type": "response.output_audio.delta", "response_id": "r1", "delta": delta}, 10.310)
    machine.on_event({"type": "response.output_audio_transcript.delta", "response_id": "r1", "item_id": "a",
                      "delta": "four."}, 10.320)
    assert not machine.done
    machine.on_event({"type": "response.done", "response": {"id": "r1", "status": "completed",
                                                            "usage": {"total_tokens": 7}}}, 10.500)
    obs = machine.final()
    assert machine.done and machine.error is None and obs is machine.first_of_last_turn()
    assert (obs.ttft_ms, obs.ttfa_ms, obs.total_ms) == (250.0, 300.0, 500.0)
    assert obs.response_text == "It is four." and obs.response_id == "r1"
    assert len(obs.audio_pcm) == 2 * 4800 and obs.usage == {"total_tokens": 7}
    assert [t for t, _ in obs.timeline].count("response.output_audio.delta") == 1  # first delta of a kind only


def test_transcripts_of_several_output_items_are_joined_and_final_wins() -> None:
    machine = started()
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 10.0)
    for item, delta in (("a", "Let me "), ("a", "ch"), ("b", "It is four.")):
        machine.on_event({"type": "response.output_audio_transcript.delta", "response_id": "r1", "item_id": item,
                          "delta": delta}, 10.1)
    machine.on_event({"type": "response.output_audio_transcript.done", "response_id": "r1", "item_id": "a",
                      "transcript": "Let me check. "}, 10.2)
    machine.on_event({"type": "response.done", "response": {"id": "r1", "status": "completed"}}, 10.3)
    assert machine.final().response_text == "Let me check. It is four."


def test_tool_calls_are_answered_and_the_follow_up_is_timed_from_its_own_request() -> None:
    seen: list[FunctionCall] = []

    def handler(call: FunctionCall) -> str:
        seen.append(call)
        return json.dumps({"temp_c": 21, "city": json.loads(call.arguments)["city"]})

    machine = started(SessionMachine(plan(on_function_call=handler)))
    calls = [{"name": "get_weather", "call_id": "c1", "arguments": '{"city": "Paris"}'},
             {"name": "get_weather", "call_id": "c2", "arguments": '{"city": "Rome"}'}]
    out = respond(machine, "r1", 10.0, text="Let me check.", calls=calls)
    outputs = [e["item"] for e in out if e["type"] == "conversation.item.create"]
    assert [(o["type"], o["call_id"]) for o in outputs] == [("function_call_output", "c1"),
                                                            ("function_call_output", "c2")]
    assert json.loads(outputs[1]["output"]) == {"temp_c": 21, "city": "Rome"}
    assert [e["type"] for e in out][-1] == "response.create" and len(seen) == 2
    machine.sent(out[-1], 11.0)
    respond(machine, "r2", 11.0, text="Sunny in both.")
    assert machine.done and machine.error is None
    first, final = machine.first_of_last_turn(), machine.final()
    assert (first.response_id, final.response_id) == ("r1", "r2")
    assert final.t_zero == 11.0 and final.response_text == "Sunny in both." and final.ttft_ms == 200.0


def test_a_failing_tool_answers_with_an_error_instead_of_crashing() -> None:
    def broken(call: FunctionCall) -> str:
        raise KeyError("city")

    machine = started(SessionMachine(plan(on_function_call=broken)))
    out = respond(machine, "r1", 10.0, calls=[{"name": "f", "call_id": "c1", "arguments": "{}"}])
    assert "KeyError" in json.loads(out[0]["item"]["output"])["error"]


def test_history_and_several_user_turns() -> None:
    history = (HistoryItem("system", "Be brief."), HistoryItem("user", "Hi."), HistoryItem("assistant", "Hello!"),
               HistoryItem("user", pcm=PCM))
    machine = SessionMachine(plan(history=history, turns=(UserTurn(text="What is 2+2?"), UserTurn(pcm=PCM))))
    machine.on_event({"type": "session.created"}, 0.0)
    out = machine.on_event({"type": "session.updated"}, 0.1)
    items = [e["item"] for e in out if e["type"] == "conversation.item.create"]
    assert [(i["role"], i["content"][0]["type"]) for i in items] == [
        ("system", "input_text"), ("user", "input_text"), ("assistant", "output_text"), ("user", "input_audio"),
        ("user", "input_text")]
    assert out[-1]["type"] == "response.create"  # the first turn is text: no audio upload
    machine.sent(out[-1], 1.0)
    nxt = respond(machine, "r1", 1.0)
    assert nxt[-1]["type"] == "input_audio_buffer.commit" and not machine.done  # the second, spoken turn
    [create] = machine.on_event({"type": "input_audio_buffer.committed"}, 2.0)
    machine.sent(create, 2.1)
    respond(machine, "r2", 2.1, text="Second.")
    assert machine.done and [r.turn for r in machine.responses] == [0, 1]
    assert machine.final().response_text == "Second."


def test_vad_turns_append_trailing_silence_and_time_from_the_last_voiced_chunk() -> None:
    speech = audio.silence(300) + b"\x00\x40" * 24_000 + audio.silence(200)  # "voiced" from 300 to 1300 ms
    # The runner gives the end of speech its detector found (tests/test_voice_activity.py tests the detector).
    turn = UserTurn(pcm=speech, voiced_end_ms=1300.0)
    machine = SessionMachine(plan(mode="vad", turns=(turn,), trailing_silence_ms=1000))
    machine.on_event({"type": "session.created"}, 0.0)
    appends = machine.on_event({"type": "session.updated"}, 0.1)
    assert all(e["type"] == "input_audio_buffer.append" for e in appends)  # no commit, no response.create
    assert len(appends) == 25  # 1.5 s of input + 1 s of trailing silence in 100 ms chunks
    assert appends[0]["event_id"] in machine.upload_starts
    for index, event in enumerate(appends):
        machine.sent(event, 5.0 + index * 0.1)
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 6.9)
    machine.on_event({"type": "response.output_audio.delta", "response_id": "r1", "delta": audio.b64(PCM)}, 7.0)
    machine.on_event({"type": "response.done", "response": {"id": "r1", "status": "completed"}}, 7.5)
    # The last voiced sample (at 1299 ms) travels in chunk 12, sent at 6.2 s: time zero.
    assert machine.final().ttfa_ms == 800.0 and machine.premature_responses == 0


def test_a_vad_response_before_the_speech_was_all_sent_is_not_the_measured_one() -> None:
    machine = SessionMachine(plan(mode="vad", turns=(UserTurn(pcm=b"\x00\x40" * 24_000, voiced_end_ms=1000.0),)))
    machine.on_event({"type": "session.created"}, 0.0)
    appends = machine.on_event({"type": "session.updated"}, 0.1)
    machine.sent(appends[0], 1.0)  # the first chunk of a second of speech: the turn is not over
    machine.on_event({"type": "response.created", "response": {"id": "early"}}, 1.1)
    machine.on_event({"type": "response.done", "response": {"id": "early", "status": "cancelled"}}, 1.2)
    assert machine.premature_responses == 1 and not machine.done


def test_beta_events_are_normalised_and_client_events_converted() -> None:
    machine = started()
    delta = base64.b64encode(b"\x00\x00" * 10).decode()
    machine.on_event(server_event_to_ga({"type": "response.created", "response": {"id": "r1"}}), 10.1)
    machine.on_event(server_event_to_ga({"type": "response.audio.delta", "response_id": "r1", "delta": delta}), 10.4)
    transcript = {"type": "response.audio_transcript.delta", "response_id": "r1", "delta": "Yes"}
    machine.on_event(server_event_to_ga(transcript), 10.5)
    assert machine.final().ttfa_ms == 400.0 and machine.final().ttft_ms == 500.0
    item = server_event_to_ga({"type": "conversation.item.created", "item": {"content": [{"type": "audio"}]}})
    assert item["type"] == "conversation.item.added" and item["item"]["content"][0]["type"] == "output_audio"
    beta = client_event_to_beta({"type": "session.update", "session": {
        "type": "realtime", "output_modalities": ["audio"], "instructions": "x",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                  "output": {"voice": "alloy"}}}})
    assert beta["session"] == {"instructions": "x", "modalities": ["text", "audio"], "voice": "alloy",
                               "input_audio_format": "pcm16", "turn_detection": None}


def test_server_errors_end_the_session_with_a_kind_and_a_class() -> None:
    machine = started()
    machine.on_event({"type": "error", "error": {"type": "invalid_request_error",
                                                 "code": "input_audio_buffer_commit_empty", "message": "short"}}, 1)
    assert machine.done and machine.error.kind == "invalid_request" and machine.error.error_class == "fatal"


def test_rate_limits_carry_the_retry_hint() -> None:
    machine = started()
    machine.on_event({"type": "rate_limits.updated", "rate_limits": [
        {"name": "requests", "remaining": 0, "reset_seconds": 2.5}]}, 10.0)
    machine.on_event({"type": "error", "error": {"type": "invalid_request_error", "code": "rate_limit_exceeded",
                                                 "message": "Rate limit reached. Please try again in 1.5s."}}, 10.1)
    assert (machine.error.kind, machine.error.error_class, machine.error.retry_after_s) == (
        "rate_limited", "rate_limited", 1.5)
    other = started()
    other.on_event({"type": "rate_limits.updated", "rate_limits": [
        {"name": "tokens", "remaining": 0, "reset_seconds": 2.5}]}, 10.0)
    other.on_event({"type": "error", "error": {"code": "rate_limit_exceeded", "message": "slow down"}}, 10.1)
    assert other.error.retry_after_s == 2.5  # no hint in the message: the exhausted limit's reset


def test_a_failed_response_is_a_transient_server_error() -> None:
    machine = started()
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 10.1)
    machine.on_event({"type": "response.done", "response": {
        "id": "r1", "status": "failed", "status_details": {"type": "failed", "error": {"type": "server_error",
                                                                        "code": "server_error"}}}}, 10.2)
    assert machine.error.kind == "server_error" and machine.error.error_class == "transient"


def test_abort_after_done_keeps_the_outcome() -> None:
    machine = started()
    respond(machine, "r1", 10.0)
    machine.abort("disconnect", "socket closed later")
    assert machine.error is None


def test_events_without_a_type_are_a_protocol_error() -> None:
    machine = SessionMachine(plan())
    machine.on_event({"no": "type"}, 0.0)
    assert machine.error.kind == "protocol" and machine.error.error_class == "transient"


def test_error_classification() -> None:
    assert classify_error({"type": "invalid_request_error", "code": "rate_limit_exceeded"}) == "rate_limited"
    assert classify_error({"type": "server_error"}) == "server_error"
    assert classify_error({"type": "invalid_request_error", "code": "invalid_api_key"}) == "auth"
    assert classify_error({"type": "invalid_request_error", "code": "session_expired"}) == "session_expired"
    assert classify_error({"type": "invalid_request_error", "code": "unknown_parameter"}) == "invalid_request"
