"""What issue 17 took out of the hot path must change nothing a client or a server sees: pre-encoded append
frames are the frames `json.dumps` wrote, orjson's parse fails (and falls back) exactly as `json` did, pybase64
decodes as `base64`, audio deltas decoded late are the same audio, and the reference server remembers what it
spoke without speaking anything differently."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from s2s_eval import audio, jsonwire
from s2s_eval.providers import Codec
from s2s_eval.providers._openai import BetaCodec
from s2s_eval.runners import client
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn
from s2s_eval.server.streaming import MALFORMED_FRAME, RememberedSpeech
from s2s_eval.speech.tts import Synthesizer, TTSSettings

PCM = bytes(range(256)) * 40  # 10240 bytes: two full 100 ms chunks and a short one


def _appends(pcm: bytes = PCM) -> list[dict[str, Any]]:
    machine = SessionMachine(SessionPlan({"type": "realtime"}, (UserTurn(pcm=pcm),)))
    machine.on_event({"type": "session.created"}, 0.0)
    events = machine.on_event({"type": "session.updated"}, 0.0)
    return [e for e in events if e["type"] == "input_audio_buffer.append"]


def test_pre_encoded_appends_are_the_frames_the_codec_would_have_written() -> None:
    appends = _appends()
    assert len(appends) == 3
    assert b"".join(base64.b64decode(e["audio"]) for e in appends) == PCM
    for event in appends:
        plain = {k: str(v) for k, v in event.items()}  # the same event with ordinary strings: no fast path
        assert Codec().encode(event) == [json.dumps(plain)] == Codec().encode(plain)
        assert BetaCodec().encode(event) == BetaCodec().encode(plain)
    odd = {"type": "input_audio_buffer.append", "event_id": 'evt "quoted"', "audio": appends[0]["audio"]}
    assert Codec().encode(odd) == [json.dumps(odd)]  # the event id is still escaped
    reordered = {"event_id": "e1", "type": "input_audio_buffer.append", "audio": appends[0]["audio"]}
    assert Codec().encode(reordered) == [json.dumps(reordered)]


def test_a_clip_is_encoded_once_for_every_session_that_sends_it() -> None:
    first, second = _appends(), _appends()
    assert all(a["audio"] is b["audio"] for a, b in zip(first, second, strict=True))
    assert [a["event_id"] for a in first] == [b["event_id"] for b in second]  # ids are each session's own


@pytest.mark.parametrize("frame", ["{", '{"type": "x", "delta": ', "", "nul\x00", '{"a": 1} trailing', "[1, 2"])
def test_a_malformed_frame_fails_with_the_standard_librarys_error(frame: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonwire.loads(frame)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(frame)
    assert str(ours.value) == str(theirs.value)


def test_what_json_accepts_beyond_strict_json_still_reads() -> None:
    for frame in ['{"v": NaN}', '{"v": -Infinity}', '{"v": "\\ud800"}', '{"v": 1.5}', '{"v": 18446744073709551615}']:
        assert repr(jsonwire.loads(frame)) == repr(json.loads(frame))
    assert jsonwire.loads('{"v": 123456789012345678901234567890}') == {"v": 1.2345678901234568e29}  # orjson's way
    assert json.loads(jsonwire.dumps({"v": 10**30, "t": "é"})) == {"v": 10**30, "t": "é"}


@pytest.mark.parametrize("text", ["QUJD", "QUJD====", "QUJDé", "QQ", "QUJD\n", "", "QUJ="])
def test_strict_base64_decodes_and_refuses_as_the_standard_library(text: str) -> None:
    def outcome(decode: Any) -> Any:
        try:
            return decode(text)
        except ValueError as exc:  # binascii.Error is a ValueError
            return type(exc).__name__, str(exc)

    assert outcome(jsonwire.b64decode_strict) == outcome(lambda t: base64.b64decode(t, validate=True))
    assert jsonwire.b64decode("QU JD") == base64.b64decode("QU JD")  # lenient: skips what is not base64


class _Deadline:
    def reschedule(self, when: float) -> None:
        pass


async def _frames(*frames: str) -> AsyncIterator[str]:
    for frame in frames:
        yield frame


@pytest.mark.parametrize(("frame", "what"), [(MALFORMED_FRAME, "not JSON"), ("[1]", "not a JSON object"),
                                             ("\udcff", "not JSON")])
async def test_a_malformed_server_event_is_one_line_naming_the_frame(frame: str, what: str) -> None:
    machine = SessionMachine(SessionPlan({"type": "realtime"}, (UserTurn(pcm=PCM),)))
    progress = client.Progress(_Deadline(), 10)  # type: ignore[arg-type]
    await client.receive(_frames('{"type": "session.created"}', frame), machine, Codec(),  # type: ignore[arg-type]
                          asyncio.Queue(), progress)
    assert machine.error is not None and machine.error.kind == "protocol"
    assert machine.error.message == f"malformed server event ({what}): {frame[:120]!r}"


def test_audio_deltas_decoded_late_are_the_audio_sent() -> None:
    machine = SessionMachine(SessionPlan({"type": "realtime"}, (UserTurn(pcm=PCM),)))
    machine.on_event({"type": "session.created"}, 0.0)
    machine.on_event({"type": "session.updated"}, 0.0)
    [create] = machine.on_event({"type": "input_audio_buffer.committed"}, 0.1)
    machine.sent(create, 0.2)
    machine.on_event({"type": "response.created", "response": {"id": "r1"}}, 0.3)
    for chunk in audio.chunks(PCM, 100):
        machine.on_event({"type": "response.output_audio.delta", "response_id": "r1", "item_id": "i",
                          "delta": base64.b64encode(chunk).decode()}, 0.5)
    observed = machine.responses[0]
    assert observed.audio_pcm == PCM and observed.ttfa_ms == pytest.approx(300)


def test_the_server_remembers_spoken_sentences_within_its_bound(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path))
    eight, nine = (Synthesizer(TTSSettings()).speech(t) for t in ("Eight.", "Nine."))
    speech = RememberedSpeech(Synthesizer(TTSSettings()), max_bytes=max(len(eight), len(nine)) + 1)
    first = speech.speech("Eight.")
    for text in ("Eight.", "Nine."):
        speech.path(text).unlink()  # from now on only memory can answer
    assert speech.cached("Eight.") and speech.speech("Eight.") is first
    assert speech.speech("Nine.") == nine  # synthesised again: the disk cache is gone
    assert not speech.cached("Eight.")  # pushed out of memory by the bound
    assert speech._kept_bytes <= speech.max_bytes
