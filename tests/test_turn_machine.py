"""The turn state machine with plain dicts: no sockets, explicit times."""

from __future__ import annotations

import base64

from s2s_eval.runners.events import normalise
from s2s_eval.runners.session import TurnMachine, classify_error

PCM = b"\x01\x00" * 24_000  # 1 s of audio
UPDATE = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def started() -> TurnMachine:
    machine = TurnMachine(UPDATE, PCM, {"sample_id": "s1"})
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


def test_a_full_turn_times_every_milestone_from_response_create() -> None:
    machine = started()
    delta = base64.b64encode(b"\x02\x00" * 2400).decode()
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 10.010)
    machine.on_event({"type": "response.output_audio_transcript.delta", "delta": "It is "}, 10.250)
    machine.on_event({"type": "response.output_audio.delta", "delta": delta}, 10.300)
    machine.on_event({"type": "response.output_audio.delta", "delta": delta}, 10.310)
    machine.on_event({"type": "response.output_audio_transcript.delta", "delta": "four."}, 10.320)
    assert not machine.done
    machine.on_event({"type": "response.done", "response": {"id": "r1", "status": "completed",
                                                            "usage": {"total_tokens": 7}}}, 10.500)
    obs = machine.observation
    assert machine.done and machine.error is None
    assert (obs.ttft_ms, obs.ttfa_ms, obs.total_ms) == (250.0, 300.0, 500.0)
    assert obs.response_text == "It is four." and obs.response_id == "r1"
    assert len(obs.audio_pcm) == 2 * 4800 and obs.usage == {"total_tokens": 7}
    # The timeline keeps lifecycle events and only the first delta of each kind.
    assert [t for t, _ in obs.timeline].count("response.output_audio.delta") == 1


def test_the_final_transcript_wins_over_joined_deltas() -> None:
    machine = started()
    machine.on_event({"type": "response.output_audio_transcript.delta", "delta": "It is fo"}, 10.1)
    machine.on_event({"type": "response.output_audio_transcript.done", "transcript": "It is four."}, 10.2)
    machine.on_event({"type": "response.done", "response": {"status": "completed"}}, 10.3)
    assert machine.observation.response_text == "It is four."


def test_text_output_sets_ttft_but_not_ttfa() -> None:
    machine = started()
    machine.on_event({"type": "response.output_text.delta", "delta": "Four."}, 10.2)
    machine.on_event({"type": "response.done", "response": {"status": "completed"}}, 10.3)
    obs = machine.observation
    assert obs.ttft_ms == 200.0 and obs.ttfa_ms is None and obs.response_text == "Four."


def test_beta_event_names_are_normalised() -> None:
    machine = started()
    delta = base64.b64encode(b"\x00\x00" * 10).decode()
    machine.on_event(normalise({"type": "response.audio.delta", "delta": delta}), 10.4)
    machine.on_event(normalise({"type": "response.audio_transcript.delta", "delta": "Yes"}), 10.5)
    assert machine.observation.ttfa_ms == 400.0 and machine.observation.ttft_ms == 500.0
    assert normalise({"type": "session.created"}) == {"type": "session.created"}


def test_server_errors_end_the_turn_with_a_kind() -> None:
    machine = started()
    machine.on_event({"type": "error", "error": {"type": "invalid_request_error",
                                                 "code": "input_audio_buffer_commit_empty", "message": "too short"}}, 1)
    assert machine.done and machine.error is not None
    assert machine.error.kind == "invalid_request" and "input_audio_buffer_commit_empty" in machine.error.message


def test_a_failed_response_is_a_server_error() -> None:
    machine = started()
    machine.on_event({"type": "response.done", "response": {
        "status": "failed", "status_details": {"type": "failed", "error": {"type": "server_error",
                                                                        "code": "server_error"}}}}, 10.2)
    assert machine.error is not None and machine.error.kind == "server_error"


def test_abort_after_done_keeps_the_outcome() -> None:
    machine = started()
    machine.on_event({"type": "response.done", "response": {"status": "completed"}}, 10.2)
    machine.abort("disconnect", "socket closed later")
    assert machine.error is None


def test_events_without_a_type_are_a_protocol_error() -> None:
    machine = TurnMachine(UPDATE, PCM, {"sample_id": "s1"})
    machine.on_event({"no": "type"}, 0.0)
    assert machine.error is not None and machine.error.kind == "protocol"


def test_error_classification() -> None:
    assert classify_error({"type": "invalid_request_error", "code": "rate_limit_exceeded"}) == "rate_limited"
    assert classify_error({"type": "server_error"}) == "server_error"
    assert classify_error({"type": "invalid_request_error", "code": "invalid_api_key"}) == "auth"
    assert classify_error({"type": "invalid_request_error", "code": "session_expired"}) == "session_expired"
    assert classify_error({"type": "invalid_request_error", "code": "unknown_parameter"}) == "invalid_request"
