"""Full-duplex sessions: the caller's audio streams in real time for a whole scenario while the model's audio plays.

The client behaves like a phone: from `session.updated` to the end of the scenario it sends one 20 ms frame of
caller audio every 20 ms (silence included: the caller's line is never quiet on the wire), whatever the model does,
and it plays the model's audio on a playback clock. The model's own turn detection (server VAD, with
`create_response` and `interrupt_response`) decides when it answers and when it yields; the client decides nothing
but what a caller's device would: when playback stops.

What the wire shows, and so what is measured (recorded in every run's spec, `runner.duplex`):
- Audio deltas arrive faster than real time. The playback clock plays each response's audio from its first delta's
  arrival, back to back (a delta that arrives after the buffered audio ran out resumes playback on arrival); the
  model "is speaking" from there until its audio would have finished playing, or until playback stops.
- A model can yield only while it is still generating: the response then ends `cancelled` (`response.done`).
  Once generation has finished, the only signal left is the server's `input_audio_buffer.speech_started`, which its
  VAD also sends for a backchannel (and on which the real API cancels when `interrupt_response` is true).
- PLAYBACK_POLICY, therefore: while a response is generating, the model leads: playback stops when the response ends
  cancelled (yield "while_generating"), and goes on while it keeps generating, whatever the caller does. Once the
  response has finished generating, playback stops at the next `speech_started` (yield "during_playback"), as the
  `openai-agents` SDK does. Either way the client sends `conversation.item.truncate` with the audio it played.
  A false yield on a backchannel is then the server VAD's sensitivity: exactly what a caller would hear.

Times: every frame is stamped with the monotonic clock just before it is handed to the socket, every server frame
just as it arrives. A sample at stream position τ (ms of caller audio since the first frame) was captured at the send
time of the frame holding it minus what of that frame followed it: a microphone sends a frame once it is full. The
session clock's 0 is the capture start of the first frame.

Measured per scenario (`Dynamics` in the run log): turn-end latency (the caller's last voiced sample → the first
voiced sample of the model's answer as played; the answer is the first response created after that end), premature
takeover (pause: a response's playback started before the caller's last voiced sample), yield, its kind and latency
(interruption: the cue's first voiced sample → playback stop), false yield (backchannel: playback stopped, or a new
response was created, after the cue's onset).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from s2s_eval import audio
from s2s_eval.log import Dynamics
from s2s_eval.providers import Codec
from s2s_eval.runners import client
from s2s_eval.runners.session import Phase, ResponseObservation, SessionMachine, SessionPlan
from s2s_eval.runners.tasks import background
from s2s_eval.speech import voice_activity

FRAME_MS = 20
FRAME_BYTES = audio.BYTES_PER_SECOND * FRAME_MS // 1000
PLAYBACK_POLICY = "model-leads-while-generating, then-stop-at-speech-started"
Category = Literal["pause", "interruption", "backchannel", "turn_end"]


@dataclass(frozen=True)
class Utterance:
    """A clip the caller says and where its speech is (ms from the clip's start)."""

    pcm: bytes
    voiced_start_ms: float
    voiced_end_ms: float

    @classmethod
    def of(cls, pcm: bytes) -> Utterance:
        span = voice_activity.voiced_span(pcm)
        return cls(pcm, span.start_ms if span else 0.0, span.end_ms if span else 0.0)


@dataclass(frozen=True)
class DuplexScript:
    """One scenario as the runner plays it."""

    category: Category
    opening: Utterance  # the question, pauses included
    cue: Utterance | None = None  # interruption / backchannel
    cue_at_ms: int | None = None  # ... spoken once the answer has played this long
    max_pause_ms: float = 2000.0
    grace_ms: float = 2000.0  # quiet time after the last activity before the scenario ends
    max_scenario_s: float = 90.0
    answer_timeout_s: float = 60.0  # no response this long after the caller's end: the session failed


def duplex_facts(max_pause_ms: float, grace_ms: float) -> dict[str, Any]:
    """What the run's spec says about its full-duplex sessions (`runner.duplex`)."""
    return {"policy": PLAYBACK_POLICY, "max_pause_ms": max_pause_ms, "frame_ms": FRAME_MS, "grace_ms": grace_ms}


@dataclass
class Played:
    """One response's audio on the playback clock: (wall start, seconds) per delta, and how playback ended."""

    response_id: str
    item_id: str | None = None
    segments: list[tuple[float, float]] = field(default_factory=list)
    generated: bool = False  # response.done arrived
    status: str | None = None
    stopped_at: float | None = None
    stop_cause: Literal["cancelled", "speech_started"] | None = None

    @property
    def start(self) -> float | None:
        return self.segments[0][0] if self.segments else None

    @property
    def end(self) -> float | None:
        """When its audio stops playing: when it was stopped, else when the last delta finishes."""
        if self.stopped_at is not None:
            return self.stopped_at
        return self.segments[-1][0] + self.segments[-1][1] if self.segments else None

    def played_ms(self, t: float) -> float:
        """How much of its audio has played by `t` (nothing plays after a stop)."""
        if self.stopped_at is not None:
            t = min(t, self.stopped_at)
        return 1000 * sum(min(max(t - start, 0.0), seconds) for start, seconds in self.segments)

    def wall_at(self, offset_ms: float) -> float | None:
        """When the sample `offset_ms` into this response's audio plays (None: it never played)."""
        left = offset_ms / 1000
        for start, seconds in self.segments:
            if left <= seconds:
                at = start + left
                return at if self.stopped_at is None or at <= self.stopped_at else None
            left -= seconds
        return None


class _Outbox:
    """Control events waiting to be sent (`put_nowait` as the client's feed expects), with a wake-up for the
    sender, which otherwise sleeps until its next frame is due."""

    def __init__(self) -> None:
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.ready = asyncio.Event()

    def put_nowait(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.ready.set()


class DuplexMachine(SessionMachine):
    """One scenario over one streaming session; the caller's frames come from `tick`, see the module docstring."""

    def __init__(self, plan: SessionPlan, script: DuplexScript) -> None:
        super().__init__(plan)
        self.script = script
        self.streaming = False
        self.frame_times: list[float] = []  # send time of each caller frame, in order
        self.played: dict[str, Played] = {}
        self.speech_started: list[float] = []
        self.speech_stopped: list[float] = []
        self.truncates: list[tuple[float, float, dict[str, Any]]] = []  # (time, played ms by the clock, event)
        self.truncated: list[dict[str, Any]] = []  # the server's `conversation.item.truncated`
        self.cue_frame: int | None = None  # the frame the cue starts in
        self.cue_missed_ms: float | None = None  # the answer ended after this much playback, before the cue point
        self._tape = bytearray()
        self._clock_end = 0.0  # when everything queued for playback has played
        self._generating: str | None = None
        self._last_activity = 0.0
        self._frames_queued = 0
        self._created_at: dict[str, float] = {}  # response id -> when `response.created` arrived
        self.dynamics: Dynamics | None = None

    # -- the caller's stream ------------------------------------------------------------------------------------

    def tick(self, t: float) -> dict[str, Any] | None:
        """The caller frame due at `t` (None: the scenario is over, or failed)."""
        if self.done:
            return None
        if self.frame_times and t - self.frame_times[0] > self.script.max_scenario_s:
            self.abort("timeout", f"the scenario was still going after {self.script.max_scenario_s:g} s")
            return None
        end = self.caller_wall(self.script.opening.voiced_end_ms, ending=True)
        if end is not None and not self.played and t - end > self.script.answer_timeout_s:
            self.abort("timeout", f"no response {self.script.answer_timeout_s:g} s after the caller finished")
            return None
        self._maybe_cue(t)
        if self._finished(t):
            self.phase = Phase.DONE
            return None
        if not self.frame_times:
            self._tape.extend(self.script.opening.pcm)
        chunk = bytes(self._tape[:FRAME_BYTES])
        del self._tape[:FRAME_BYTES]
        if chunk and not self._tape:
            self._last_activity = max(self._last_activity, t)
        self._frames_queued += 1
        return {"type": "input_audio_buffer.append", "audio": audio.b64(chunk.ljust(FRAME_BYTES, b"\0"))}

    def frame_sent(self, t: float) -> None:
        self.frame_times.append(t)

    def caller_wall(self, stream_ms: float, *, ending: bool = False) -> float | None:
        """When the caller's sample at `stream_ms` was captured (None: its frame has not been sent yet). `ending`:
        the sample just before `stream_ms` (a voiced end), which may sit in the frame before."""
        index = (math.ceil(stream_ms / FRAME_MS) - 1) if ending else math.floor(stream_ms / FRAME_MS)
        index = max(index, 0)
        if index >= len(self.frame_times):
            return None
        return self.frame_times[index] - ((index + 1) * FRAME_MS - stream_ms) / 1000

    def _cue_stream_ms(self, offset_ms: float) -> float | None:
        return None if self.cue_frame is None else self.cue_frame * FRAME_MS + offset_ms

    def _answer(self) -> Played | None:
        """The response the scenario is about: the first one created after the caller's question ended."""
        end = self.caller_wall(self.script.opening.voiced_end_ms, ending=True)
        return next((self.played[r] for r, at in self._created_at.items() if end is not None and at > end), None)

    def _maybe_cue(self, t: float) -> None:
        if self.script.cue is None or self.cue_frame is not None or self.cue_missed_ms is not None:
            return
        answer = self._answer()
        if answer is None or answer.start is None:
            return
        played = answer.played_ms(t)
        if played >= (self.script.cue_at_ms or 0):
            # The caller finishes what is on the tape (the opening's silent tail) first; the cue starts on a frame
            # boundary after it, so its onset's stream position is cue_frame * FRAME_MS plus its voiced start.
            self._tape.extend(bytes(-len(self._tape) % FRAME_BYTES))
            self.cue_frame = self._frames_queued + len(self._tape) // FRAME_BYTES
            self._tape.extend(self.script.cue.pcm)
        elif answer.generated and answer.end is not None and t >= answer.end:
            self.cue_missed_ms = round(played, 1)

    def _finished(self, t: float) -> bool:
        if self._tape or not self.frame_times or self._generating is not None or t < self._clock_end:
            return False
        if self.script.cue is not None and self.cue_frame is None and self.cue_missed_ms is None:
            return False
        if not any(p.generated for p in self.played.values()):
            return False
        return t - max(self._last_activity, self._clock_end) >= self.script.grace_ms / 1000

    # -- server events ------------------------------------------------------------------------------------------

    def _configured(self) -> list[dict[str, Any]]:
        """The session is set up: the caller's line opens (the sender starts streaming)."""
        self.phase, self.streaming, self.turn = Phase.UPLOADING, True, 0
        return []

    def _on_session_event(self, kind: str, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        if kind == "input_audio_buffer.speech_started":
            self.speech_started.append(t)
            self._last_activity = t
            return self._on_speech_started(t)
        if kind == "input_audio_buffer.speech_stopped":
            self.speech_stopped.append(t)
            self._last_activity = t
        if kind == "conversation.item.truncated":
            self.truncated.append(event)
        if kind.startswith("response."):
            return self._on_response(kind, event, t)
        return []

    def _on_response(self, kind: str, event: dict[str, Any], t: float) -> list[dict[str, Any]]:
        response_id = event.get("response_id") or (event.get("response") or {}).get("id") or ""
        if kind == "response.created":
            cue_onset = self.caller_wall(self._cue_stream_ms(self.script.cue.voiced_start_ms)) \
                if self.script.cue is not None and self.cue_frame is not None else None
            after_cue = cue_onset is not None and t > cue_onset
            zero_ms = (self._cue_stream_ms(self.script.cue.voiced_end_ms) if after_cue and self.script.cue
                       else self.script.opening.voiced_end_ms)
            zero = self.caller_wall(zero_ms, ending=True) if zero_ms is not None else None
            obs = ResponseObservation(int(after_cue), zero if zero is not None and zero <= t else None,
                                      response_id=response_id)
            self.responses.append(obs)
            self.played[response_id] = Played(response_id)
            self._created_at[response_id] = t
            self._generating = response_id
            self._last_activity = t
            self._seen_deltas = set()
        obs = next((r for r in self.responses if r.response_id == response_id), None)
        played = self.played.get(response_id)
        if obs is None or played is None:
            return []
        before = len(obs.audio_pcm)
        self._observe(obs, kind, event, t)
        if kind == "response.output_audio.delta":
            played.item_id = played.item_id or event.get("item_id")
            seconds = audio.duration_s(bytes(obs.audio_pcm[before:]))
            if played.stopped_at is None and seconds:
                start = max(t, self._clock_end)
                played.segments.append((start, seconds))
                self._clock_end = start + seconds
        elif kind == "response.done":
            played.generated, played.status = True, obs.status
            if self._generating == response_id:
                self._generating = None
            self._last_activity = t
            if obs.status == "failed":
                return self._after_response(obs)
            if obs.status == "cancelled":
                return self._stop(played, t, "cancelled")
        return []

    def _on_speech_started(self, t: float) -> list[dict[str, Any]]:
        """Once generation has finished, the caller's speech stops playback (the policy)."""
        for played in self.played.values():
            if played.generated and played.stopped_at is None and played.end is not None and played.end > t \
                    and played.start is not None and played.start <= t:
                return self._stop(played, t, "speech_started")
        return []

    def _stop(self, played: Played, t: float, cause: Literal["cancelled", "speech_started"]) -> list[dict[str, Any]]:
        """Stop playback at `t` and tell the server how much of the item was heard."""
        if played.stopped_at is not None or played.end is None or played.end <= t or played.start is None \
                or played.start > t or played.item_id is None:
            return []
        heard_ms = played.played_ms(t)
        played.stopped_at, played.stop_cause = t, cause
        self._clock_end = t
        truncate = self._event("conversation.item.truncate", item_id=played.item_id, content_index=0,
                               audio_end_ms=int(heard_ms))
        self.truncates.append((t, heard_ms, truncate))
        return [truncate]

    # -- what it showed -------------------------------------------------------------------------------------------

    def first_of_last_turn(self) -> ResponseObservation | None:
        """The first response to what the caller said last. A response created before the caller finished (a
        takeover) has no time zero and is never it."""
        timed = [r for r in self.responses if r.t_zero is not None]
        return next(r for r in timed if r.turn == timed[-1].turn) if timed else None

    def summarise(self) -> Dynamics:
        """The scenario's timing facts and verdict (runs Silero VAD on the answers: call it off the event loop)."""
        script = self.script
        t0 = self.frame_times[0] - FRAME_MS / 1000 if self.frame_times else None

        def ms(t: float | None) -> float | None:
            return None if t is None or t0 is None else round((t - t0) * 1000, 1)

        end = self.caller_wall(script.opening.voiced_end_ms, ending=True)
        onset = cue_end = None
        if script.cue is not None and self.cue_frame is not None:
            onset = self.caller_wall(self._cue_stream_ms(script.cue.voiced_start_ms) or 0.0)
            cue_end = self.caller_wall(self._cue_stream_ms(script.cue.voiced_end_ms) or 0.0, ending=True)
        created = self._created_at
        starts = [p.start for p in self.played.values() if p.start is not None]
        answer = self._answer()
        facts: dict[str, Any] = {
            "scenario": script.category, "policy": PLAYBACK_POLICY, "max_pause_ms": script.max_pause_ms,
            "caller_end_ms": ms(end), "cue_onset_ms": ms(onset), "cue_end_ms": ms(cue_end),
            "model_start_ms": ms(min(starts)) if starts else None,
            "turn_end_latency_ms": self._turn_end_latency(answer, end),
        }
        verdict = ""
        if script.category == "pause":
            early = [s for s in starts if end is not None and s < end]
            facts["takeover"] = bool(early) if end is not None else None
            verdict = (f"took over {round((end - min(early)) * 1000)} ms before the question ended" if early and end
                       else "waited for the end of the question")
        elif script.category in ("interruption", "backchannel"):
            facts, verdict = self._cued(facts, answer, onset, created, ms)
        elif answer is None:
            verdict = "no answer after the question"
        if facts.get("turn_end_latency_ms") is not None and script.category in ("turn_end", "pause"):
            verdict += f"; answered {facts['turn_end_latency_ms']:.0f} ms after the question ended"
        if self.truncates:
            _, heard_ms, event = self.truncates[0]
            facts["truncate_audio_end_ms"], facts["played_ms"] = event["audio_end_ms"], round(heard_ms, 1)
        facts["verdict"] = verdict.strip("; ")
        facts["events"] = self._timeline(ms, end, onset, cue_end)
        self.dynamics = Dynamics.model_validate(facts)
        return self.dynamics

    def _turn_end_latency(self, answer: Played | None, end: float | None) -> float | None:
        if answer is None or end is None:
            return None
        obs = next(r for r in self.responses if r.response_id == answer.response_id)
        voice = obs.output_voice
        voiced_at = None if voice is None else answer.wall_at(voice.start_ms)
        return None if voiced_at is None else round((voiced_at - end) * 1000, 1)

    def _cued(self, facts: dict[str, Any], answer: Played | None, onset: float | None, created: dict[str, float],
              ms: Any) -> tuple[dict[str, Any], str]:
        interruption = self.script.category == "interruption"
        if answer is None:
            return facts, "no answer to cue into"
        if onset is None:
            return facts, (f"the answer ended after {self.cue_missed_ms or 0:.0f} ms of playback, before the cue "
                           f"point ({self.script.cue_at_ms} ms): not a trial")
        if answer.stopped_at is not None and answer.stopped_at < onset:  # not the cue's doing: it had no voice yet
            return facts, (f"the answer stopped {round((onset - answer.stopped_at) * 1000)} ms before the cue's voice "
                           "began: not a trial")
        stopped = answer.stopped_at is not None
        restarted = [r for r, at in created.items() if at > onset]
        if interruption:
            facts["yielded"] = stopped
            if stopped:
                assert answer.stopped_at is not None
                kind = "while_generating" if answer.stop_cause == "cancelled" else "during_playback"
                facts["yield_kind"] = kind
                facts["yield_latency_ms"] = round((answer.stopped_at - onset) * 1000, 1)
                return facts, (f"yielded {kind.replace('_', ' ')} {facts['yield_latency_ms']:.0f} ms after the "
                               "caller's onset")
            return facts, "kept talking over the interruption to the end of its answer"
        facts["false_yield"] = stopped or bool(restarted)
        if stopped:
            return facts, (f"stopped {round((answer.stopped_at - onset) * 1000)} ms after the backchannel "  # type: ignore[operator]
                           f"({'response cancelled' if answer.stop_cause == 'cancelled' else 'speech_started'})")
        if restarted:
            return facts, "started a new response after the backchannel"
        return facts, "kept talking through the backchannel"

    def _timeline(self, ms: Any, end: float | None, onset: float | None, cue_end: float | None) \
            -> list[tuple[str, float]]:
        events: list[tuple[str, float | None]] = [
            ("caller.speech_start", ms(self.caller_wall(self.script.opening.voiced_start_ms))),
            ("caller.speech_end", ms(end)), ("caller.cue_start", ms(onset)), ("caller.cue_end", ms(cue_end))]
        events += [("server.speech_started", ms(t)) for t in self.speech_started]
        events += [("server.speech_stopped", ms(t)) for t in self.speech_stopped]
        for response_id, at in self._created_at.items():
            played = self.played[response_id]
            events += [(f"{response_id}.created", ms(at)), (f"{response_id}.playback_start", ms(played.start)),
                       (f"{response_id}.playback_end", ms(played.end))]
            if played.stop_cause:
                events.append((f"{response_id}.stopped_on_{played.stop_cause}", ms(played.stopped_at)))
        events += [("client.truncate", ms(t)) for t, _, _ in self.truncates]
        return sorted(((name, t) for name, t in events if t is not None), key=lambda e: e[1])


async def run_duplex_session(transport: client.Transport, machine: DuplexMachine, *, timeout_s: float) -> None:
    """Drive `machine` over one streaming session until its scenario is over; failures end up in `machine.error`."""
    await client.run_session(transport, machine, timeout_s=timeout_s, exchange=_exchange)


async def _exchange(ws: Any, machine: DuplexMachine, codec: Codec, pace: client.Pace,
                    progress: client.Progress) -> None:
    outbox = _Outbox()
    async with background(_stream(ws, machine, codec, outbox, progress)):
        if client.feed(machine, codec.opened(), time.perf_counter(), outbox, progress):
            return
        await client.receive(ws, machine, codec, outbox, progress)


async def _stream(ws: Any, machine: DuplexMachine, codec: Codec, outbox: _Outbox, progress: client.Progress) -> None:
    """Send control events as they come and one caller frame every FRAME_MS on an absolute schedule."""
    due: float | None = None
    while not machine.done:
        while outbox.events:
            for frame in codec.encode(outbox.events.popleft()):
                await ws.send(frame)
        outbox.ready.clear()
        if not machine.streaming:  # configuring: send what the machine asks for; look again within a frame
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FRAME_MS / 1000):
                    await outbox.ready.wait()
            continue
        now = time.perf_counter()
        due = now if due is None else due
        if due > now:
            try:
                async with asyncio.timeout(due - now):
                    await outbox.ready.wait()
                continue  # a control event: send it, then wait out the rest of the frame
            except TimeoutError:
                pass
        event = machine.tick(time.perf_counter())
        if event is None:
            break
        frames = codec.encode(event)
        machine.frame_sent(time.perf_counter())  # stamped just before the write, as in client.py
        for frame in frames:
            await ws.send(frame)
        progress.made()
        due += FRAME_MS / 1000
    await ws.close()  # the receiver is waiting on the socket: closing ends its loop
