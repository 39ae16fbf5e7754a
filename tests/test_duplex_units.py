"""The full-duplex session machine (`runners/duplex.py`) with plain dicts on fake time: a caller frame every 20 ms,
server events fed between frames. Every server event fed and every client event the machine emits is validated
against the `openai` SDK's GA event unions, so the fixtures are real wire shapes.

The caller's clips are built with known voiced spans (`Utterance(pcm, start, end)`), so no detector runs on them.
Where a verdict needs the answer's first voiced sample, `energy_voice` swaps the detector for the energy rule
(`audio.voiced_span_ms`: 10 ms frames above -40 dBFS), which finds a loud tone after digital silence to the frame;
one test runs the real detector (Silero) on espeak-ng speech.
"""

from __future__ import annotations

import itertools
import shutil
from typing import Annotated, Any

import numpy as np
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import Field, TypeAdapter

from s2s_eval import audio
from s2s_eval.datasets.sample import Sample
from s2s_eval.graders.turn_taking import verdict
from s2s_eval.runners.duplex import FRAME_BYTES, FRAME_MS, DuplexMachine, DuplexScript, Played, Utterance
from s2s_eval.runners.session import SessionPlan, UserTurn
from s2s_eval.speech import voice_activity

SERVER_EVENT = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])
CLIENT_EVENT = TypeAdapter(Annotated[RealtimeClientEvent, Field(discriminator="type")])
FORMAT = {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
       "create_response": True, "interrupt_response": True}
UPDATE = {"type": "realtime", "output_modalities": ["audio"], "instructions": "You are on a phone call.",
          "audio": {"input": {"format": FORMAT, "turn_detection": VAD}, "output": {"format": FORMAT}}}
START = 10.0  # the first caller frame's send time
FRAME_S = FRAME_MS / 1000
SAMPLE = Sample("s1", "turn_taking", "turn_end", "", "")  # the verdict reads only the facts
_ids = (f"event_{n}" for n in itertools.count(1))


# -- audio -----------------------------------------------------------------------------------------------------------

def tone(ms: int, hz: float = 220.0, amplitude: float = 0.3) -> bytes:
    """A loud tone (about -13 dBFS): voiced by the energy rule."""
    t = np.arange(audio.SAMPLE_RATE * ms // 1000) / audio.SAMPLE_RATE
    return audio.to_pcm16(amplitude * np.sin(2 * np.pi * hz * t))


def noise(ms: int, seed: int) -> bytes:
    """Distinct non-zero bytes, to find a clip's bytes in the stream."""
    return np.random.default_rng(seed).integers(1, 255, audio.BYTES_PER_SECOND * ms // 1000, dtype=np.uint8).tobytes()


def utterance(voiced_ms: int, *, lead_ms: int = 0, tail_ms: int = 0, seed: int | None = None) -> Utterance:
    body = tone(voiced_ms) if seed is None else noise(voiced_ms, seed)
    return Utterance(audio.silence(lead_ms) + body + audio.silence(tail_ms), float(lead_ms), float(lead_ms + voiced_ms))


def answer_audio(ms: int, lead_ms: int = 200) -> bytes:
    """A model answer: `lead_ms` of silence, then a tone."""
    return audio.silence(lead_ms) + tone(ms - lead_ms)


@pytest.fixture
def energy_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answers' voiced span by the energy rule instead of Silero (a tone is not speech to Silero)."""
    def energy(pcm: bytes) -> voice_activity.VoicedSpan | None:
        span = audio.voiced_span_ms(pcm)
        return None if span is None else voice_activity.VoicedSpan(float(span[0]), float(span[1]), "energy stub")
    monkeypatch.setattr(voice_activity, "voiced_span", energy)


# -- server events (GA wire shapes) ----------------------------------------------------------------------------------

def created(rid: str) -> dict[str, Any]:
    return {"type": "response.created", "event_id": next(_ids),
            "response": {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}}


def delta(rid: str, pcm: bytes) -> dict[str, Any]:
    return {"type": "response.output_audio.delta", "event_id": next(_ids), "response_id": rid,
            "item_id": f"item_{rid}", "output_index": 0, "content_index": 0, "delta": audio.b64(pcm)}


def done(rid: str, status: str = "completed") -> dict[str, Any]:
    response: dict[str, Any] = {"id": rid, "object": "realtime.response", "status": status}
    if status == "cancelled":
        response["status_details"] = {"type": "cancelled", "reason": "turn_detected"}
    return {"type": "response.done", "event_id": next(_ids), "response": response}


def speech_started(audio_start_ms: int = 0) -> dict[str, Any]:
    return {"type": "input_audio_buffer.speech_started", "event_id": next(_ids), "item_id": "item_caller",
            "audio_start_ms": audio_start_ms}


def streamed(rid: str, pcm: bytes, first_at: float, *, chunk_ms: int = 100, every_s: float = 0.025,
             status: str | None = "completed", done_at: float | None = None) -> list[tuple[float, dict[str, Any]]]:
    """A response's audio in `chunk_ms` deltas every `every_s` from `first_at` (4x real time by default), then
    `response.done` right after the last delta (or at `done_at`); status None: still generating."""
    chunks = audio.chunks(pcm, chunk_ms)
    events = [(first_at + i * every_s, delta(rid, c)) for i, c in enumerate(chunks)]
    if status is not None:
        events.append((done_at if done_at is not None else first_at + len(chunks) * every_s, done(rid, status)))
    return events


# -- one call on fake time -------------------------------------------------------------------------------------------

class Call:
    """A scenario on fake time: frame n is due at START + n * 20 ms (plus `late[n]` s); events come between."""

    def __init__(self, script: DuplexScript, late: dict[int, float] | None = None) -> None:
        self.machine = DuplexMachine(SessionPlan(session_update=UPDATE, turns=(UserTurn(pcm=script.opening.pcm),),
                                                 mode="vad"), script)
        self.late = late or {}
        self.frames: list[bytes] = []
        self.frame_at: list[float] = []
        self.sent: list[dict[str, Any]] = []  # every control event the machine returned
        [update] = self.feed({"type": "session.created", "event_id": next(_ids), "session": UPDATE}, START - 0.2)
        assert update["type"] == "session.update" and update["session"] == UPDATE
        assert self.feed({"type": "session.updated", "event_id": next(_ids), "session": UPDATE}, START - 0.1) == []

    def due(self) -> float:
        n = len(self.frames)
        return START + n * FRAME_S + self.late.get(n, 0.0)

    def feed(self, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        SERVER_EVENT.validate_python(event)
        out = self.machine.on_event(event, t)
        for sent in out:
            CLIENT_EVENT.validate_python(sent)
        self.sent += out
        return out

    def frames_until(self, t: float) -> None:
        """Send every frame due before `t` (a frame due at `t` goes after an event at `t`)."""
        while not self.machine.done and self.due() < t - 1e-9:
            if not self.frame():
                break

    def frame(self) -> bool:
        t = self.due()
        event = self.machine.tick(t)
        if event is None:
            return False
        CLIENT_EVENT.validate_python(event)
        assert event["type"] == "input_audio_buffer.append"
        self.machine.frame_sent(t)
        self.frames.append(audio.b64decode(event["audio"]))
        self.frame_at.append(t)
        return True

    def play(self, events: list[tuple[float, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Feed `events` in time order, with the caller's frames between them; what the machine sent back."""
        out: list[dict[str, Any]] = []
        for t, event in sorted(events, key=lambda e: e[0]):
            self.frames_until(t)
            out += self.feed(event, t)
        return out

    def finish(self, limit_s: float = 200.0) -> None:
        while not self.machine.done and self.due() < START + limit_s:
            self.frame()

    def stream(self) -> bytes:
        return b"".join(self.frames)

    @property
    def truncates(self) -> list[dict[str, Any]]:
        return [e for e in self.sent if e["type"] == "conversation.item.truncate"]


def script(category: str = "turn_end", opening: Utterance | None = None, **fields: Any) -> DuplexScript:
    return DuplexScript(category, opening or utterance(1000, tail_ms=500), **fields)  # type: ignore[arg-type]


def at_ms(t: float) -> float:
    """A wall time on the session clock (0 = the capture start of the first frame)."""
    return round((t - (START - FRAME_S)) * 1000, 1)


# -- the caller's frames ---------------------------------------------------------------------------------------------

def test_every_tick_is_one_20ms_append_the_opening_first_then_silence() -> None:
    opening = utterance(1010, seed=1)  # 50.5 frames: the last one is padded
    call = Call(script(opening=opening))
    call.frames_until(START + 80 * FRAME_S)
    assert len(call.frames) == 80 and {len(f) for f in call.frames} == {FRAME_BYTES} and FRAME_BYTES == 960
    assert call.frame_at == pytest.approx([START + n * FRAME_S for n in range(80)])
    stream = call.stream()
    assert stream[: len(opening.pcm)] == opening.pcm
    assert stream[len(opening.pcm):] == bytes(len(stream) - len(opening.pcm))


def test_the_cue_is_queued_at_the_frame_where_the_answer_has_played_cue_at_ms() -> None:
    cue = utterance(700, lead_ms=100, seed=2)
    call = Call(script("interruption", cue=cue, cue_at_ms=500))
    # the question's voiced end is captured at 10.98; the answer plays from 11.31, so 500 ms have played at 11.81
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(3000), 11.31, status=None)])
    call.frames_until(13.0)  # the cue (800 ms) is all sent by 12.62
    answer = call.machine.played["r1"]
    index = call.machine.cue_frame
    assert index is not None
    assert answer.played_ms(call.frame_at[index]) >= 500 > answer.played_ms(call.frame_at[index - 1])
    assert call.frame_at[index] == pytest.approx(11.82)
    stream = call.stream()
    assert stream[index * FRAME_BYTES: index * FRAME_BYTES + len(cue.pcm)] == cue.pcm
    assert stream[len(call.machine.script.opening.pcm): index * FRAME_BYTES] == bytes(
        index * FRAME_BYTES - len(call.machine.script.opening.pcm))


def test_the_cue_starts_where_cue_frame_says_even_while_the_opening_is_still_being_sent() -> None:
    """An opening with a long silent tail: the answer (created after the voiced end) reaches its cue point while
    the tail is still on the caller's tape. The cue is still spoken whole, and at the stream position the machine
    measures its onset from (cue_frame * 20 ms), not somewhere else."""
    opening = utterance(500, tail_ms=1990, seed=3)  # 2490 ms: not a whole number of frames
    cue = utterance(400, seed=4)
    call = Call(script("interruption", opening=opening, cue=cue, cue_at_ms=100))
    call.play([(10.6, created("r1")), *streamed("r1", answer_audio(3000), 10.65, status=None)])
    call.frames_until(14.0)
    index = call.machine.cue_frame
    assert index is not None
    stream = call.stream()
    assert stream[: len(opening.pcm)] == opening.pcm  # the opening is never cut short by the cue
    assert index == -(-len(opening.pcm) // FRAME_BYTES)  # the cue starts on the first frame after it
    assert stream[index * FRAME_BYTES: index * FRAME_BYTES + len(cue.pcm)] == cue.pcm


# -- capture times of stream positions -------------------------------------------------------------------------------

def test_caller_wall_is_the_send_time_of_the_frame_holding_the_sample_minus_what_followed_it() -> None:
    call = Call(script(), late={3: 0.015})  # frame 3 leaves 15 ms late: 10.075 instead of 10.06
    call.frames_until(START + 4.5 * FRAME_S)
    assert call.frame_at == pytest.approx([10.0, 10.02, 10.04, 10.075, 10.08])
    wall = call.machine.caller_wall
    assert wall(0) == pytest.approx(9.98)  # the session clock's zero
    assert wall(10) == pytest.approx(9.99)
    assert wall(40) == pytest.approx(10.02)  # an onset on a boundary: the start of frame 2
    assert wall(40, ending=True) == pytest.approx(10.02)  # an end on a boundary: the last sample of frame 1
    assert wall(60) == pytest.approx(10.055)  # the first sample of the late frame 3 ...
    assert wall(60, ending=True) == pytest.approx(10.04)  # ... and the end just before it, in frame 2
    assert wall(65) == pytest.approx(10.06)
    assert wall(65, ending=True) == pytest.approx(10.06)
    assert wall(80, ending=True) == pytest.approx(10.075)
    assert wall(99, ending=True) == pytest.approx(10.079)
    assert wall(100) is None  # frame 5 has not been sent
    assert wall(100, ending=True) == pytest.approx(10.08)


# -- the playback clock ----------------------------------------------------------------------------------------------

def test_deltas_faster_than_real_time_play_back_to_back_and_an_underrun_resumes_on_arrival() -> None:
    call = Call(script())
    call.play([(11.2, created("r1")), (11.30, delta("r1", tone(400))), (11.31, delta("r1", tone(400))),
               (11.32, delta("r1", tone(200))),  # 1 s queued by 11.32: plays until 12.30
               (12.50, delta("r1", tone(300))),  # after the underrun: from its arrival
               (12.60, delta("r1", tone(100))), (12.61, done("r1"))])
    played = call.machine.played["r1"]
    assert [s for s, _ in played.segments] == pytest.approx([11.30, 11.70, 12.10, 12.50, 12.80])
    assert [d for _, d in played.segments] == pytest.approx([0.4, 0.4, 0.2, 0.3, 0.1])
    assert (played.start, played.end) == pytest.approx((11.30, 12.90))
    assert played.played_ms(11.0) == 0 and played.played_ms(11.5) == pytest.approx(200)
    assert played.played_ms(12.4) == pytest.approx(1000)  # the underrun: nothing plays
    assert played.played_ms(12.55) == pytest.approx(1050) and played.played_ms(20.0) == pytest.approx(1400)
    assert played.wall_at(0) == pytest.approx(11.30) and played.wall_at(450) == pytest.approx(11.75)
    assert played.wall_at(1000) == pytest.approx(12.30)  # the last sample before the underrun
    assert played.wall_at(1001) == pytest.approx(12.501) and played.wall_at(1400) == pytest.approx(12.90)
    assert played.wall_at(1401) is None


def test_a_second_response_queues_after_the_first() -> None:
    call = Call(script())
    call.play([(11.2, created("r1")), *streamed("r1", tone(1000), 11.3),  # plays 11.30 .. 12.30
               (11.7, created("r2")), *streamed("r2", tone(500), 11.8)])
    first, second = call.machine.played["r1"], call.machine.played["r2"]
    assert (first.start, first.end) == pytest.approx((11.3, 12.3))
    assert (second.start, second.end) == pytest.approx((12.3, 12.8))


def test_a_stopped_response_plays_no_more() -> None:
    played = Played("r1", "item_r1", segments=[(1.0, 2.0)], generated=True, stopped_at=1.5, stop_cause="cancelled")
    assert played.end == 1.5
    assert played.played_ms(1.25) == pytest.approx(250)
    assert played.played_ms(2.5) == pytest.approx(500)  # nothing plays after the stop
    assert played.wall_at(400) == pytest.approx(1.4) and played.wall_at(600) is None


# -- the playback policy ---------------------------------------------------------------------------------------------

def cancelled_while_generating(category: str = "interruption", **fields: Any) -> Call:
    """The answer plays from 11.31 and reaches 1000 ms at 12.31: the cue starts in the frame sent at 12.32, captured
    from 12.30, so its onset (100 ms in) is captured at 12.40. The server cancels at 12.75."""
    call = Call(script(category, cue=utterance(600, lead_ms=100), cue_at_ms=1000, **fields))
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(6000), 11.31, every_s=0.09, status=None),
               (12.75, done("r1", "cancelled"))])
    return call


def test_a_response_cancelled_while_generating_stops_playback_at_its_done_and_is_truncated_to_what_played() -> None:
    call = cancelled_while_generating()
    answer = call.machine.played["r1"]
    assert (answer.stopped_at, answer.stop_cause) == (12.75, "cancelled")
    [truncate] = call.truncates
    assert truncate["item_id"] == "item_r1" and truncate["content_index"] == 0
    assert isinstance(truncate["audio_end_ms"], int)
    # played without an underrun since 11.31 (deltas of 100 ms every 90 ms): 1440 ms by the clock
    assert abs(truncate["audio_end_ms"] - (12.75 - 11.31) * 1000) <= FRAME_MS
    call.finish()
    facts = call.machine.summarise()
    assert facts.yielded is True and facts.yield_kind == "while_generating"
    assert facts.yield_latency_ms == pytest.approx((12.75 - 12.40) * 1000, abs=0.2)
    assert facts.truncate_audio_end_ms == truncate["audio_end_ms"]
    assert abs(facts.played_ms - truncate["audio_end_ms"]) < 1


def test_speech_started_after_generation_stops_playback_during_playback() -> None:
    call = Call(script("interruption", cue=utterance(600, lead_ms=100), cue_at_ms=1000))
    out = call.play([(11.2, created("r1")), *streamed("r1", answer_audio(4000), 11.31),  # generated by 12.31
                     (12.62, speech_started(2200))])
    [truncate] = out
    answer = call.machine.played["r1"]
    assert (answer.stopped_at, answer.stop_cause) == (12.62, "speech_started")
    assert abs(truncate["audio_end_ms"] - 1310) <= FRAME_MS
    assert call.feed(speech_started(2900), 12.9) == []  # stopped already: nothing more to truncate
    call.finish()
    facts = call.machine.summarise()
    assert facts.yielded is True and facts.yield_kind == "during_playback"
    assert facts.yield_latency_ms == pytest.approx(220, abs=0.2)  # onset captured at 12.40
    assert verdict(SAMPLE, facts) is True


def test_speech_started_while_generating_does_not_stop_playback() -> None:
    call = Call(script("interruption", cue=utterance(600, lead_ms=100), cue_at_ms=1000))
    out = call.play([(11.2, created("r1")), *streamed("r1", answer_audio(4000), 11.31, every_s=0.09, status=None),
                     (12.62, speech_started(2200))])
    assert out == [] and call.machine.played["r1"].stopped_at is None
    call.play([(15.0, done("r1"))])
    call.finish()
    facts = call.machine.summarise()
    assert facts.yielded is False and facts.yield_kind is None and facts.truncate_audio_end_ms is None
    assert "kept talking" in facts.verdict and verdict(SAMPLE, facts) is False


def test_speech_started_after_playback_ended_does_nothing() -> None:
    call = Call(script())
    call.play([(11.2, created("r1")), *streamed("r1", tone(1000), 11.3)])  # plays until 12.3
    assert call.play([(12.5, speech_started(2500))]) == []
    assert call.machine.played["r1"].stopped_at is None and call.truncates == []


def test_the_truncate_carries_the_audio_played_by_the_clock_not_the_time_since_playback_started() -> None:
    """Issue 16's acceptance point: audio_end_ms within one frame of the playback clock, across an underrun."""
    call = Call(script())
    call.play([(11.2, created("r1")), (11.30, delta("r1", tone(100))),  # plays 11.30 .. 11.40, then nothing
               (11.80, delta("r1", tone(300))), (11.90, done("r1", "cancelled"))])  # plays again from 11.80
    [truncate] = call.truncates
    assert call.machine.played["r1"].played_ms(11.90) == pytest.approx(200)
    assert abs(truncate["audio_end_ms"] - 200) <= FRAME_MS  # not 600 ms: 11.90 - 11.30


def test_responses_after_the_cue_are_the_callers_next_turn_timed_from_the_cues_end() -> None:
    call = cancelled_while_generating()  # the cue (voiced 100 .. 700 ms) starts in frame 116 (stream 2320 ms)
    call.play([(13.4, created("r2")), *streamed("r2", answer_audio(1000), 13.5)])
    first, second = call.machine.responses
    assert (first.turn, second.turn) == (0, 1)
    assert first.t_zero == pytest.approx(10.98)  # the question's last voiced sample
    assert second.t_zero == pytest.approx(9.98 + (2320 + 700) / 1000)  # the cue's last voiced sample
    assert second.ttfa_ms == pytest.approx((13.5 - second.t_zero) * 1000, abs=0.01)


@pytest.mark.usefixtures("energy_voice")
def test_no_turn_end_latency_when_the_answers_voice_never_played() -> None:
    call = Call(script("interruption", cue=utterance(600, lead_ms=100), cue_at_ms=100))
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(4000, lead_ms=1000), 11.31, every_s=0.09,
                                                status=None), (11.9, done("r1", "cancelled"))])
    call.finish()
    facts = call.machine.summarise()
    assert facts.yielded is True and facts.turn_end_latency_ms is None  # stopped 590 ms in, the voice is at 1000


def test_a_response_cancelled_after_its_audio_played_is_not_truncated() -> None:
    call = Call(script())
    call.play([(11.2, created("r1")), *streamed("r1", tone(500), 11.3, status=None), (12.0, done("r1", "cancelled"))])
    assert call.truncates == [] and call.machine.played["r1"].stopped_at is None


def test_a_cancel_just_before_the_cue_point_leaves_the_cue_unsaid() -> None:
    """Playback stopped (cancelled) 5 ms short of cue_at_ms: the answer never reached the cue point, so the caller
    must not speak the cue into silence and the scenario is not a trial."""
    call = Call(script("interruption", cue=utterance(600, lead_ms=100), cue_at_ms=1000))
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(4000), 11.31, every_s=0.09, status=None),
               (12.305, done("r1", "cancelled"))])  # 995 ms played, between two frames
    call.finish()
    assert call.machine.cue_frame is None and call.machine.cue_missed_ms == pytest.approx(995, abs=1)
    facts = call.machine.summarise()
    assert facts.yielded is None and "not a trial" in facts.verdict
    assert verdict(SAMPLE, facts) is None


# -- what summarise says, per category -------------------------------------------------------------------------------

def pause_opening() -> Utterance:
    """Two parts with a 1200 ms pause: voiced 0 .. 2000 ms."""
    pcm = tone(400) + audio.silence(1200) + tone(400) + audio.silence(500)
    return Utterance(pcm, 0.0, 2000.0)


@pytest.mark.usefixtures("energy_voice")
def test_pause_with_a_takeover() -> None:
    call = Call(script("pause", opening=pause_opening(), max_pause_ms=2000))
    call.play([(10.6, created("r1")), *streamed("r1", answer_audio(1000), 10.7),  # into the pause
               (11.2, speech_started(1600)), (12.5, created("r2")), *streamed("r2", answer_audio(1000), 12.6)])
    call.finish()
    facts = call.machine.summarise()
    assert facts.scenario == "pause" and facts.takeover is True and facts.caller_end_ms == pytest.approx(2000)
    assert facts.model_start_ms == pytest.approx(at_ms(10.7))
    assert facts.verdict.startswith("took over 1280 ms before the question ended")
    assert facts.turn_end_latency_ms == pytest.approx((12.8 - 11.98) * 1000, abs=10)  # r2: 200 ms of silence first
    assert verdict(SAMPLE, facts) is False


@pytest.mark.usefixtures("energy_voice")
def test_pause_waited_for() -> None:
    call = Call(script("pause", opening=pause_opening(), max_pause_ms=2000))
    call.play([(12.5, created("r1")), *streamed("r1", answer_audio(1000), 12.6)])
    call.finish()
    facts = call.machine.summarise()
    assert facts.takeover is False and facts.verdict.startswith("waited for the end of the question")
    assert facts.turn_end_latency_ms == pytest.approx(820, abs=10)
    assert f"answered {facts.turn_end_latency_ms:.0f} ms after" in facts.verdict
    assert verdict(SAMPLE, facts) is True


@pytest.mark.usefixtures("energy_voice")
def test_interruption_whose_answer_ended_before_the_cue_point_is_not_a_trial() -> None:
    call = Call(script("interruption", cue=utterance(600), cue_at_ms=3000))
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(1500), 11.31)])
    call.finish()
    assert call.machine.cue_frame is None and call.machine.cue_missed_ms == pytest.approx(1500, abs=FRAME_MS)
    facts = call.machine.summarise()
    assert facts.cue_onset_ms is None and facts.yielded is None
    assert "before the cue point (3000 ms): not a trial" in facts.verdict
    assert verdict(SAMPLE, facts) is None


def backchannel(events: list[tuple[float, dict[str, Any]]], status: str | None = "completed") -> Call:
    """A backchannel: the answer (4 s) plays from 11.31, the cue's onset is captured at 12.40 (cue at 1000 ms)."""
    call = Call(script("backchannel", cue=utterance(400, lead_ms=100), cue_at_ms=1000))
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(4000), 11.31, status=status), *events])
    call.finish()
    return call


@pytest.mark.usefixtures("energy_voice")
def test_backchannel_kept_talking() -> None:
    stopped = {"type": "input_audio_buffer.speech_stopped", "event_id": next(_ids), "item_id": "item_caller",
               "audio_end_ms": 2900}
    call = backchannel([(12.6, stopped)])  # the server's VAD heard it, but the answer had finished generating
    facts = call.machine.summarise()
    assert facts.cue_onset_ms == pytest.approx(at_ms(12.40)) and facts.false_yield is False
    assert facts.verdict == "kept talking through the backchannel"
    assert verdict(SAMPLE, facts) is True


@pytest.mark.usefixtures("energy_voice")
def test_backchannel_false_yield_by_a_stop() -> None:
    facts = backchannel([(12.55, speech_started(2300))]).machine.summarise()
    assert facts.false_yield is True and facts.verdict == "stopped 150 ms after the backchannel (speech_started)"
    assert verdict(SAMPLE, facts) is False


@pytest.mark.usefixtures("energy_voice")
def test_backchannel_false_yield_by_a_cancel_while_generating() -> None:
    call = Call(script("backchannel", cue=utterance(400, lead_ms=100), cue_at_ms=1000))
    call.play([(11.2, created("r1")), *streamed("r1", answer_audio(6000), 11.31, every_s=0.09, status=None),
               (12.7, done("r1", "cancelled"))])
    call.finish()
    facts = call.machine.summarise()
    assert facts.false_yield is True and facts.verdict == "stopped 300 ms after the backchannel (response cancelled)"
    assert verdict(SAMPLE, facts) is False


@pytest.mark.usefixtures("energy_voice")
def test_backchannel_false_yield_by_a_new_response() -> None:
    call = backchannel([(13.2, created("r2")), *streamed("r2", answer_audio(800), 13.3)])
    facts = call.machine.summarise()
    assert call.machine.played["r1"].stopped_at is None
    assert facts.false_yield is True and facts.verdict == "started a new response after the backchannel"
    assert verdict(SAMPLE, facts) is False


@pytest.mark.usefixtures("energy_voice")
def test_turn_end_latency_is_from_the_callers_last_voiced_sample_to_the_answers_first_voiced_sample_played() -> None:
    call = Call(script())
    # underrun: 100 ms arrives at 11.5, the rest at 11.8 — the voice (from 200 ms into the answer) plays at 11.9
    pcm = answer_audio(1000)
    call.play([(11.45, created("r1")), (11.5, delta("r1", pcm[:4800])), (11.8, delta("r1", pcm[4800:])),
               (11.85, done("r1"))])
    call.finish()
    facts = call.machine.summarise()
    assert facts.caller_end_ms == pytest.approx(1000) and facts.model_start_ms == pytest.approx(at_ms(11.5))
    assert facts.turn_end_latency_ms == pytest.approx((11.9 - 10.98) * 1000, abs=10)
    assert facts.verdict == f"answered {facts.turn_end_latency_ms:.0f} ms after the question ended"
    assert verdict(SAMPLE, facts) is True
    names = [name for name, _ in facts.events]
    assert names[:2] == ["caller.speech_start", "caller.speech_end"] and "r1.playback_start" in names
    assert [t for _, t in facts.events] == sorted(t for _, t in facts.events)


@pytest.mark.usefixtures("energy_voice")
def test_turn_end_without_an_answer_after_the_question() -> None:
    call = Call(script())
    call.play([(10.5, created("r1")), *streamed("r1", answer_audio(400), 10.55)])  # before the question ended
    call.finish()
    facts = call.machine.summarise()
    assert facts.turn_end_latency_ms is None and facts.verdict == "no answer after the question"
    assert verdict(SAMPLE, facts) is False


@pytest.fixture(scope="module")
def spoken() -> bytes:
    """espeak-ng speech cut to start at its first non-silent sample."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from s2s_eval.speech.tts import EspeakEngine, TTSSettings
    pcm = EspeakEngine().synthesize("The tallest mountain in Africa is Kilimanjaro.", TTSSettings())
    first = int(np.flatnonzero(np.abs(audio.from_pcm16(pcm)) > 1e-3)[0])
    return pcm[2 * first:]


def test_turn_end_latency_with_the_real_detector_on_speech(spoken: bytes) -> None:
    assert voice_activity.detector().startswith("silero")  # the detector the runner uses here
    call = Call(script())
    call.play([(11.2, created("r1")), *streamed("r1", audio.silence(200) + spoken, 11.3)])
    call.finish()
    facts = call.machine.summarise()
    assert facts.turn_end_latency_ms == pytest.approx((11.5 - 10.98) * 1000, abs=20)


# -- the end of a scenario -------------------------------------------------------------------------------------------

def test_the_scenario_ends_after_the_tape_generation_playback_and_grace_time() -> None:
    call = Call(script(opening=utterance(1000, tail_ms=3000), grace_ms=1000))  # the tape runs until 14.0
    call.play([(11.6, created("r1")), *streamed("r1", tone(1000), 11.7, status=None)])  # plays until 12.7
    call.frames_until(16.0)
    assert not call.machine.done  # still generating
    call.play([(16.0, done("r1"))])
    call.finish()
    assert call.machine.done and call.machine.error is None
    assert call.frame_at[-1] == pytest.approx(16.98)  # the tick at 17.0, 1 s after the done, ends it


@pytest.mark.parametrize(("tail_ms", "last_frame"), [(3000, 14.96), (0, 13.68)])
def test_the_scenario_waits_for_the_tape_and_for_playback(tail_ms: int, last_frame: float) -> None:
    call = Call(script(opening=utterance(1000, tail_ms=tail_ms), grace_ms=1000))
    call.play([(11.6, created("r1")), *streamed("r1", tone(1000), 11.7, every_s=0.01)])  # ends 11.81, plays to 12.7
    call.finish()
    assert call.machine.done and call.machine.error is None
    # 3000: the tape's last frame was queued at 13.98 (4 s of audio), so the tick at 14.98 ends the scenario;
    # 0: playback ended last, at 12.7, so the tick at 13.7 does
    assert call.frame_at[-1] == pytest.approx(last_frame)


def test_a_scenario_still_going_after_max_scenario_s_times_out() -> None:
    call = Call(script(max_scenario_s=5.0))
    call.play([(11.6, created("r1")), *streamed("r1", tone(500), 11.7, status=None)])  # never done
    call.finish()
    assert call.machine.error is not None and call.machine.error.kind == "timeout"
    assert "5 s" in call.machine.error.message
    assert call.frame_at[-1] == pytest.approx(START + 5.0, abs=FRAME_S)


def test_no_response_answer_timeout_s_after_the_callers_end_times_out() -> None:
    call = Call(script(answer_timeout_s=2.0))
    call.finish()
    assert call.machine.error is not None and call.machine.error.kind == "timeout"
    assert "no response 2 s after the caller finished" in call.machine.error.message
    assert call.frame_at[-1] == pytest.approx(10.98 + 2.0, abs=FRAME_S)


def test_a_timeout_tick_sends_nothing_more() -> None:
    call = Call(script(answer_timeout_s=1.0))
    call.finish()
    assert call.machine.done and call.machine.tick(call.due()) is None
