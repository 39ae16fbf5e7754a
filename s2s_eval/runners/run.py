"""One eval run end to end: select samples, prepare audio, run sessions concurrently with retries, grade, journal.

A fixed pool of session slots (the profile's concurrency) pulls samples in order, so memory does not grow with the
sample count. With `--workers N` the slots and samples are split over N processes (`scheduler.py`, `workers.py`),
each with its own event loop; the parent alone journals what they finish. Each sample is attempted until it
succeeds, fails fatally or runs out of attempts (`retry.py`), under an adaptive limit that backs off on rate limits,
and is journaled once, with every attempt's error kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from s2s_eval import audio, loops, paths, pricing, provenance
from s2s_eval.datasets import Sample, load_samples, select
from s2s_eval.datasets.perturb import Perturbation
from s2s_eval.datasets.spec import EvalSpec, load_eval
from s2s_eval.datasets.tts_input import InputAudio
from s2s_eval.errors import UserError
from s2s_eval.graders import Answer, Episode, Grade, GradeContext, Grader, get_grader, grader_version
from s2s_eval.graders.judge import NOT_CONFIGURED, Judge, load_judge
from s2s_eval.graders.latency import describe
from s2s_eval.graders.turn_taking import graded
from s2s_eval.log import (
    SPEC,
    Attempt,
    FunctionCallInfo,
    GradeInfo,
    Journal,
    Latency,
    ResponseInfo,
    RunSpec,
    SampleRecord,
    Trial,
    run_spec,
    sum_usage,
    write_items,
)
from s2s_eval.providers import Codec
from s2s_eval.runners.client import Pace, Transport, run_session
from s2s_eval.runners.duplex import DuplexMachine, DuplexScript, Utterance, duplex_facts, run_duplex_session
from s2s_eval.runners.errors import TurnError
from s2s_eval.runners.local_server import local_server
from s2s_eval.runners.looplag import LoopLagMonitor
from s2s_eval.runners.profile import LocalServerSettings, RunnerProfile, auth_headers, endpoint, load_profile
from s2s_eval.runners.retry import AdaptiveLimiter, RetryPolicy
from s2s_eval.runners.scheduler import STAGGER_S as STAGGER_S  # selftest's pacing reads it from here
from s2s_eval.runners.scheduler import Progress, SlotPlan, split
from s2s_eval.runners.session import (
    INPUT_CHUNK_MS,
    FunctionCall,
    HistoryItem,
    ResponseObservation,
    SessionMachine,
    SessionPlan,
    UserTurn,
)
from s2s_eval.runners.workers import Link, run_workers
from s2s_eval.speech import asr, voice_activity
from s2s_eval.timing import frozen_heap

TurnMode = Literal["manual", "vad"]


@dataclass(frozen=True)
class RunOptions:
    model: str
    eval: str
    limit: int | None = None
    ids: list[str] | None = None
    concurrency: int | None = None
    url: str | None = None
    out: Path | None = None
    resume: bool = False
    accept_changes: bool = False  # resume even where the invocation differs from the run (recorded in spec.json)
    data_dir: Path | None = None
    progress: bool = True
    save_audio: bool = True
    turn_mode: TurnMode = "manual"
    pace: Pace | None = None  # default: `effective_pace` (burst for manual turns, realtime for VAD and Gemini)
    protocol: Literal["ga", "beta"] | None = None
    reasoning_effort: str | None = None  # overrides the profile's (reasoning models only)
    voice: str | None = None
    output_modality: Literal["audio", "text"] | None = None
    input_modality: Literal["audio", "text"] = "audio"  # text: the question as an input_text item (no TTS)
    turn_timeout_s: float | None = None
    max_attempts: int = 6
    trials: int = 1  # independent tries per sample (--attempts K): the record says pass@k and pass@1
    seed: int = 0
    shard: tuple[int, int] | None = None  # (K, N), 1-based K
    perturb: Perturbation | None = None  # replaces the eval's perturbation (the `sweep` command sets one per level)
    workers: int = 1  # processes running the sessions (--workers); the parent alone journals. Results are the same.

    def effective_pace(self, profile: RunnerProfile) -> Pace:
        """The asked pace; by default a burst for manual turns, real time for VAD turns and for a protocol whose
        server does not acknowledge the end of a turn (Gemini's `activityEnd`): there a burst's time zero would
        fall while the server is still reading the audio, and TTFA would count that backlog."""
        if self.pace:
            return self.pace
        return "realtime" if self.turn_mode == "vad" or not profile.api.acknowledges_turn_end else "burst"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def default_data_dir() -> Path | None:
    """`$S2S_DATA_DIR` when set; otherwise None (the adapters then use the official sources)."""
    return Path(os.environ["S2S_DATA_DIR"]) if os.environ.get("S2S_DATA_DIR") else None


def host_facts() -> dict[str, Any]:
    """The machine, and the event loop this run measures on (`loops.py`; call from inside the loop)."""
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "event_loop": loops.current()}


def effective_profile(options: RunOptions) -> RunnerProfile:
    """The named profile with the run's command-line overrides applied, checked by its provider (an effort the
    model does not take, a mistyped session field) before anything connects."""
    profile = load_profile(options.model)
    overrides: dict[str, Any] = {"protocol": options.protocol, "voice": options.voice,
                                 "reasoning_effort": options.reasoning_effort,
                                 "turn_timeout_s": options.turn_timeout_s, "concurrency": options.concurrency,
                                 "output_modalities": [options.output_modality] if options.output_modality else None}
    profile = profile.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    profile.api.check_profile(profile)
    return profile


def session_update(profile: RunnerProfile, spec: EvalSpec, mode: TurnMode) -> dict[str, Any]:
    """The GA session: the eval's instructions, the profile's voice, turn detection for the turn mode, and what the
    provider adds from the profile (reasoning effort, extra session fields). Providers reshape it on the wire."""
    fmt = {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}
    output: dict[str, Any] = {"format": fmt}
    if profile.voice:
        output["voice"] = profile.voice
    detection = None if mode == "manual" else {"type": "server_vad", **profile.vad.model_dump(),
                                               "create_response": True, "interrupt_response": True}
    return profile.api.session_update(profile, {
        "type": "realtime", "output_modalities": list(profile.output_modalities), "instructions": spec.instructions,
        "audio": {"input": {"format": fmt, "turn_detection": detection}, "output": output}})


def shard(samples: list[Sample], k: int, n: int) -> list[Sample]:
    """Shard K of N (1-based): every N-th sample from the K-th, so shards are disjoint, cover all, and are even."""
    if not 1 <= k <= n:
        raise UserError(f"--shard {k}/{n}: K must be between 1 and N")
    return samples[k - 1 :: n]


def _run_dir(options: RunOptions) -> Path:
    if options.out:
        return Path(options.out)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-shard{options.shard[0]}of{options.shard[1]}" if options.shard else ""
    return paths.home() / "runs" / f"{stamp}-{options.model}-{options.eval}{suffix}"


def _check_resumable(journal: Journal, options: RunOptions) -> set[str]:
    """Journaled ids when resuming; refuse to overwrite a run that was not asked to be resumed."""
    done = journal.done_ids()
    if not options.resume:
        if done:
            raise UserError(f"{journal.run_dir} already holds a run; add --resume to continue it, "
                            "or choose another --out")
        return set()
    return done if (journal.run_dir / SPEC).exists() else set()


def _resumed_spec(journal: Journal, now: dict[str, Any], options: RunOptions) -> RunSpec:
    """The run's spec, when this invocation measures the same thing as the run; else one line naming each facet
    that differs. With --accept-changes the differences are recorded in the spec instead. Writes nothing itself."""
    old = run_spec(journal.run_dir)
    differences = old.identity().differences(RunSpec.model_validate(now).identity())
    said = [d.describe("in the run", "now") for d in differences]
    if said and not (options.accept_changes and all(d.facet.mixable for d in differences)):
        fixed = [d.facet.flag for d in differences if not d.facet.mixable]
        remedy = (f"a run holds one model on one eval ({', '.join(fixed)} cannot change): choose another --out"
                  if fixed else "add --accept-changes to mix them (recorded in spec.json)")
        raise UserError(f"{journal.run_dir} cannot be resumed as asked: {'; '.join(said)}. Resume with the run's "
                        f"settings, or {remedy}")
    if said:
        old.changes.append({"at": _now(), "differences": said})
    old.resumed_at.append(_now())
    return old


@contextlib.asynccontextmanager
async def _transport(profile: RunnerProfile, options: RunOptions, run_dir: Path) -> AsyncIterator[Transport]:
    api = profile.api

    def codec() -> Codec:
        return api.codec(profile)

    if profile.provider == "local" and not options.url:
        async with local_server(profile.server or LocalServerSettings(), run_dir / "server.log",
                                compression=profile.compression) as server:
            yield Transport(endpoint(profile, server.url), api.headers(profile), profile.protocol,
                            profile.compression, codec)
    else:
        url = endpoint(profile, options.url)
        yield Transport(url, {**api.headers(profile), **auth_headers(profile, url)}, profile.protocol,
                        profile.compression, codec)


class _StartPacer:
    """Spaces session starts to honour a requests-per-minute hint (one session is about one request)."""

    def __init__(self, requests_per_minute: float | None) -> None:
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        if self.interval_s:
            now = time.monotonic()
            start, self.next_at = max(now, self.next_at), max(now, self.next_at) + self.interval_s
            await asyncio.sleep(start - now)


class EndpointUnreachable(UserError):
    """No session of the run has connected, and one sample spent every attempt failing to: the endpoint is wrong
    or down. Retrying every other sample the same way would only take longer (minutes for a large run)."""


@dataclass
class _Context:
    """What every sample of a run shares."""

    profile: RunnerProfile
    spec: EvalSpec
    options: RunOptions
    transport: Transport
    synth: InputAudio
    run_dir: Path
    grader: Grader
    grading: GradeContext
    limiter: AdaptiveLimiter
    policy: RetryPolicy
    starts: _StartPacer
    price: pricing.Price | None
    update: dict[str, Any]
    connected: bool = False  # has any session got past connecting? (a later outage is then an ordinary failure)


@dataclass
class _Attempts:
    """One trial: the sessions it took (the last one's machine), each billed attempt, the grader's episode."""

    machine: SessionMachine
    errors: list[TurnError]
    billed: list[Attempt]
    episode: Episode | None = None

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage of every attempt, failed ones included: the provider billed them all."""
        return sum_usage(a.usage for a in self.billed)

    @property
    def cost_usd(self) -> float | None:
        costs = [a.cost_usd for a in self.billed]
        return None if not costs or None in costs else sum(c for c in costs if c is not None)


@dataclass(frozen=True)
class _Speech:
    """The audio a sample's session plays: the spoken question, and prior user turns when they are spoken."""

    question: bytes | None  # None: the question goes in as text (--input text)
    history: dict[str, bytes]  # text -> pcm
    voiced_end_ms: float | None = None  # the question's last voiced sample (VAD turns: time zero)
    script: DuplexScript | None = None  # full-duplex evals: the scenario as the caller plays it


def _responses_usage(machine: SessionMachine) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for response in machine.responses:
        pricing.add_usage(total, response.usage)
    return total


def _plan(sample: Sample, speech: _Speech, ctx: _Context, episode: Episode | None) -> SessionPlan:
    """The session of one attempt: prior turns, the spoken question, the sample's tools and the grader's episode."""
    update = ctx.update
    if sample.tools:
        update = {**update, "tools": [dict(t) for t in sample.tools], "tool_choice": "auto"}
    history = tuple(HistoryItem(m.role, pcm=speech.history[m.text]) if m.text in speech.history and m.role == "user"
                    else HistoryItem(m.role, text=m.text) for m in sample.history)
    handler = None
    if episode is not None:
        def handler(call: FunctionCall) -> str:
            return episode.on_function_call(call.name, call.call_id, call.arguments)
    turns = (UserTurn(pcm=speech.question, voiced_end_ms=speech.voiced_end_ms) if speech.question is not None
             else UserTurn(text=sample.prompt_text)),
    if speech.script is not None and speech.script.cue is not None:  # what the caller says (input_audio_s counts it)
        turns += (UserTurn(pcm=speech.script.cue.pcm),)
    return SessionPlan(session_update=update, turns=turns, history=history,
                       metadata={"sample_id": sample.sample_id}, mode=ctx.options.turn_mode, chunk_ms=INPUT_CHUNK_MS,
                       on_function_call=handler, max_tool_rounds=ctx.spec.max_tool_rounds)


async def _attempt(sample: Sample, speech: _Speech, ctx: _Context) -> _Attempts:
    """Run a sample's session until it succeeds, fails fatally, or runs out of attempts."""
    errors: list[TurnError] = []
    billed: list[Attempt] = []
    for attempt in range(1, ctx.policy.max_attempts + 1):
        await ctx.starts.wait()
        episode = ctx.grader.episode(sample)  # fresh per attempt: a retry replays the conversation from the start
        plan = _plan(sample, speech, ctx, episode)
        async with ctx.limiter.slot() as generation:
            if speech.script is not None:
                machine: SessionMachine = DuplexMachine(plan, speech.script)
                await run_duplex_session(ctx.transport, machine, timeout_s=ctx.profile.turn_timeout_s)
            else:
                machine = SessionMachine(plan)
                await run_session(ctx.transport, machine, timeout_s=ctx.profile.turn_timeout_s,
                                  pace=ctx.options.effective_pace(ctx.profile))
        usage = _responses_usage(machine)  # failed attempts are billed for what they generated, too
        cost = (None if ctx.price is None else
                sum(pricing.cost_usd(r.usage, ctx.price) for r in machine.responses if r.usage))
        billed.append(Attempt(error=machine.error.as_dict() if machine.error else None, usage=usage, cost_usd=cost))
        if machine.error is None or machine.error.kind != "connect":
            ctx.connected = True
        if machine.error is None:
            ctx.limiter.succeeded()
            break
        errors.append(machine.error)
        if machine.error.error_class == "rate_limited":
            ctx.limiter.rate_limited(machine.error.retry_after_s, generation)
        if not ctx.policy.should_retry(machine.error, attempt):
            break
        await asyncio.sleep(ctx.policy.backoff_s(sample.sample_id, attempt, machine.error))
    if machine.error is not None and machine.error.kind == "connect" and not ctx.connected:
        raise EndpointUnreachable(
            f"{machine.error.message}; all {len(errors)} attempts of {sample.sample_id} failed to connect and no "
            "session of this run has connected: stopping. Check the URL and the network, then run again with "
            "--resume (samples not finished were not journaled)")
    return _Attempts(machine, errors, billed, episode)


def _turn_total_ms(first: ResponseObservation, final: ResponseObservation) -> float | None:
    """From the turn's time zero to the end of its last response (after any tool calls)."""
    if first.t_zero is None or final.t_zero is None or final.total_ms is None:
        return None
    return round((final.t_zero - first.t_zero) * 1000 + final.total_ms, 3)


async def _grade(sample: Sample, result: _Attempts, ctx: _Context) -> Grade | None:
    """The grade of a finished attempt; None when the session failed (a failure is not a wrong answer)."""
    machine = result.machine
    if machine.error is not None:
        return None
    final = machine.final()
    answer = Answer(final.response_text if final else "", list(machine.responses), result.episode,
                    dynamics=machine.dynamics if isinstance(machine, DuplexMachine) else None)
    return await ctx.grader.grade(sample, answer, ctx.grading)


def _responses(machine: SessionMachine) -> list[ResponseInfo]:
    return [ResponseInfo(turn=r.turn, response_id=r.response_id, status=r.status, ttfa_ms=r.ttfa_ms,
                         ttft_ms=r.ttft_ms, total_ms=r.total_ms, text=r.response_text,
                         function_calls=[FunctionCallInfo(**c.__dict__) for c in r.function_calls])
            for r in machine.responses]


def grade_info(grade: Grade | None, grader: str) -> GradeInfo | None:
    """A grader's verdict as journaled: with the grader's name and version, so re-grades can be told apart."""
    if grade is None:
        return None
    return GradeInfo(**grade.as_dict(), grader=grader, grader_version=grader_version(grader))


def build_record(sample: Sample, profile: RunnerProfile, result: _Attempts, grade: GradeInfo | None,
                 output_audio: str | None) -> SampleRecord:
    """The journal line of one finished sample (see the run directory contract)."""
    machine = result.machine
    error = machine.error
    first, final = machine.first_of_last_turn(), machine.final()
    latency = Latency()
    if first is not None and final is not None:
        latency = Latency(ttfa_ms=first.ttfa_ms, ttft_ms=first.ttft_ms, total_ms=_turn_total_ms(first, final),
                          output_leading_silence_ms=first.output_leading_silence_ms,
                          ttfa_voiced_ms=first.ttfa_voiced_ms,
                          voice_detector=first.output_voice.detector if first.output_voice else None,
                          server_sent_ms=(None if first.server_sent_at is None or first.t_zero is None
                                          else round((first.server_sent_at - first.t_zero) * 1000, 3)))
    cost = result.cost_usd
    return SampleRecord(
        sample_id=sample.sample_id, eval=sample.eval, model=profile.name, category=sample.category,
        status="ok" if error is None else "error",
        error=error.as_dict() if error else None,
        correct=grade.correct if grade else None,
        score=grade.score if grade else None,
        grade=grade,
        target=sample.target,
        response_text=final.response_text if final else "",
        latency=latency,
        usage=result.usage,
        cost_usd=None if cost is None else round(cost, 8),
        attempts=len(result.billed),
        attempt_errors=[e.as_dict() for e in result.errors],
        responses=_responses(machine),
        premature_responses=machine.premature_responses,
        input_audio_s=round(sum(audio.duration_s(t.pcm or b"") for t in machine.plan.turns)
                            + sum(audio.duration_s(h.pcm or b"") for h in machine.plan.history), 3),
        output_audio_s=round(sum(audio.duration_s(bytes(r.audio_pcm)) for r in machine.responses), 3),
        output_audio=output_audio,
        timeline=first.timeline if first else [],
        finished_at=_now(),
        dynamics=graded(machine.dynamics, grade) if isinstance(machine, DuplexMachine) else None,
    )


def spoken_history(sample: Sample, spec: EvalSpec) -> list[str]:
    """The prior turns of a sample that are replayed as speech."""
    return [m.text for m in sample.history if m.role == "user"] if spec.history_user == "audio" else []


def texts_to_speak(samples: list[Sample], spec: EvalSpec, input_modality: str = "audio") -> list[str]:
    """Every text a run synthesises: each question and its spoken prior turns; nothing for text input."""
    if input_modality == "text":
        return []
    return list(dict.fromkeys(t for s in samples
                              for t in (s.prompt_text, *spoken_history(s, spec), *_scenario_texts(s))))


def _scenario_texts(sample: Sample) -> tuple[str, ...]:
    scenario = sample.scenario
    return () if scenario is None else (*scenario.parts, *((scenario.cue,) if scenario.cue else ()))


async def _speech(sample: Sample, ctx: _Context) -> _Speech:
    if ctx.options.input_modality == "text":  # text→speech / text→text: the same items, typed instead of spoken
        return _Speech(None, {})
    if sample.scenario is not None:
        return await asyncio.to_thread(_duplex_speech, sample, ctx)
    question = await asyncio.to_thread(ctx.synth.speech, sample, sample.prompt_text)
    history = {text: await asyncio.to_thread(ctx.synth.speech, sample, text)
               for text in spoken_history(sample, ctx.spec)}
    voiced_end_ms = None
    if ctx.options.turn_mode == "vad":  # the detector runs here, off the loop, not in the session machine
        span = await asyncio.to_thread(voice_activity.voiced_span, question)
        voiced_end_ms = span.end_ms if span else 0.0
    return _Speech(question, history, voiced_end_ms)


def _duplex_speech(sample: Sample, ctx: _Context) -> _Speech:
    """A scenario's audio: its parts with the pauses between them, and its cue (voiced spans found once, here)."""
    scenario, duplex = sample.scenario, ctx.spec.duplex
    assert scenario is not None and duplex is not None
    gap = audio.silence(scenario.pause_ms)
    opening = gap.join(ctx.synth.speech(sample, part) for part in scenario.parts)
    cue = Utterance.of(ctx.synth.speech(sample, scenario.cue)) if scenario.cue else None
    script = DuplexScript(sample.category, Utterance.of(opening), cue, scenario.cue_at_ms,  # type: ignore[arg-type]
                          max_pause_ms=duplex.max_pause_ms, grace_ms=duplex.grace_ms,
                          max_scenario_s=duplex.max_scenario_s, answer_timeout_s=ctx.profile.turn_timeout_s)
    return _Speech(opening, {}, script.opening.voiced_end_ms, script)


def _trial(result: _Attempts, grade: GradeInfo | None) -> Trial:
    final = result.machine.final()
    error = result.machine.error
    return Trial(status="ok" if error is None else "error", correct=grade.correct if grade else None,
                 score=grade.score if grade else None,
                 reason=grade.reason if grade else (error.kind if error else None),
                 response_text=final.response_text if final else "", grade=grade, attempts=result.billed,
                 responses=_responses(result.machine))


async def _run_sample(sample: Sample, ctx: _Context) -> SampleRecord:
    speech = await _speech(sample, ctx)
    trials: list[tuple[_Attempts, GradeInfo | None]] = []
    for _ in range(ctx.options.trials):
        result = await _attempt(sample, speech, ctx)
        if isinstance(result.machine, DuplexMachine) and result.machine.error is None:
            await asyncio.to_thread(result.machine.summarise)  # Silero VAD on the answers: off the loop
        trials.append((result, grade_info(await _grade(sample, result, ctx), ctx.spec.grader)))
    shown = next((i for i, (_, g) in enumerate(trials) if g is not None and g.correct), 0)
    result, grade = trials[shown]
    output_audio = None
    spoken = b"".join(bytes(r.audio_pcm) for r in result.machine.responses)
    if ctx.options.save_audio and spoken and result.machine.error is None:
        output_audio = f"audio/{sample.sample_id}.wav"
        await asyncio.to_thread(audio.write_wav, ctx.run_dir / output_audio, spoken)
    first = result.machine.first_of_last_turn()
    if first is not None:  # Silero VAD on the answer: off the loop (the observation keeps the result)
        await asyncio.to_thread(lambda: first.output_voice)
    record = build_record(sample, ctx.profile, result, grade, output_audio)
    facts: dict[str, Any] = {"modality": {"input": ctx.options.input_modality,
                                          "output": "+".join(ctx.profile.output_modalities)}}
    if ctx.options.input_modality == "audio":
        facts.update(ctx.synth.record(sample))  # voice, tts, perturbation and the clip of the spoken question
    if result.machine.error is None:  # does the model's transcript say what its audio says?
        consistency = await asr.measure_consistency(ctx.grading.transcriber, spoken or None, record.response_text)
        facts["asr"] = consistency.as_dict()
    record = SampleRecord.model_validate({**record.as_dict(), **facts})
    if ctx.options.trials == 1:
        return record
    return record.with_trials([_trial(result, grade) for result, grade in trials], shown)


def _internal_error_record(sample: Sample, ctx: _Context, exc: Exception) -> SampleRecord:
    machine = SessionMachine(SessionPlan(session_update={}, turns=()))
    machine.abort("internal", f"{type(exc).__name__}: {exc}")
    return build_record(sample, ctx.profile, _Attempts(machine, [], []), None, None)


async def _run_samples(samples: list[Sample], ctx: _Context, slots: SlotPlan,
                       deliver: Callable[[SampleRecord], None], started_at: float | None = None) -> None:
    """Run the samples in this process, `slots.count` sessions at a time; `deliver` each finished record.

    `started_at`: the run's start on the monotonic clock (workers share one), from which paced slots are laid out."""
    pending: Iterator[Sample] = iter(samples)
    started_at = time.monotonic() if started_at is None else started_at

    async def slot(index: int) -> None:
        if ctx.options.effective_pace(ctx.profile) == "realtime":
            await asyncio.sleep(max(0.0, started_at + slots.start_delay_s(index) - time.monotonic()))
        for sample in pending:  # slots share one iterator: each sample is taken exactly once
            try:
                record = await _run_sample(sample, ctx)
            except EndpointUnreachable:
                raise  # ends the run; the sample stays unjournaled, so --resume runs it
            except Exception as exc:  # a bug must cost one sample, never the run (CancelledError still ends it)
                record = _internal_error_record(sample, ctx, exc)
            deliver(record)

    try:
        async with asyncio.TaskGroup() as group:
            for index in range(min(slots.count, len(samples))):
                group.create_task(slot(index))
    except ExceptionGroup as group:
        unreachable = group.subgroup(EndpointUnreachable)
        if unreachable is None:
            raise
        raise unreachable.exceptions[0] from None  # one line for the user, not a group of tracebacks


def _context(profile: RunnerProfile, spec: EvalSpec, options: RunOptions, transport: Transport, synth: InputAudio,
             run_dir: Path, grading: GradeContext, limiter: AdaptiveLimiter, share: float = 1.0) -> _Context:
    """What the samples of one process share; `share`: this process's part of the run's request rate."""
    rpm = profile.requests_per_minute * share if profile.requests_per_minute else None
    return _Context(profile, spec, options, transport, synth, run_dir, get_grader(spec.grader), grading, limiter,
                    RetryPolicy(max_attempts=options.max_attempts, seed=options.seed), _StartPacer(rpm),
                    profile.price(), session_update(profile, spec, options.turn_mode))


@dataclass(frozen=True)
class _WorkerJob:
    """Everything a worker process needs to run its samples, prepared by the parent (pickled into the worker)."""

    profile: RunnerProfile
    spec: EvalSpec
    options: RunOptions
    synth: InputAudio  # prepared: verification's choice of voice travels with it
    samples: list[Sample]
    slots: SlotPlan
    run_dir: Path
    url: str
    headers: dict[str, str] = field(repr=False)  # may hold the API key: never logged


async def _worker_sessions(job: _WorkerJob, link: Link) -> dict[str, Any]:
    """The body of one worker process: its samples on its own loop; each record goes to the parent to journal."""
    profile = job.profile
    transport = Transport(job.url, job.headers, profile.protocol, profile.compression,
                          lambda: profile.api.codec(profile))
    transcriber, judge = asr.load_transcriber(), load_judge()  # its own clients, from the same environment
    monitor, limiter = LoopLagMonitor(), AdaptiveLimiter(job.slots.count)
    try:
        ctx = _context(profile, job.spec, job.options, transport, job.synth, job.run_dir,
                       GradeContext(judge, transcriber), limiter, job.slots.count / job.slots.total)
        await asyncio.to_thread(voice_activity.detector)  # loads the model now, as the parent did, not mid-session
        started_at = await link.ready()
        with frozen_heap():
            async with monitor.running():
                await _run_samples(job.samples, ctx, job.slots, lambda record: link.send((record, limiter.limit)),
                                   started_at)
    finally:
        for backend in (judge, transcriber):
            if backend is not None:
                await backend.aclose()
    return {"samples": len(job.samples), "concurrency": limiter.max_limit, "lowest": limiter.lowest,
            "loop_lag_ms": monitor.lag_ms}


async def _run_in_workers(jobs: list[_WorkerJob], progress: Progress) -> dict[str, Any]:
    """Run the jobs in worker processes, journaling records as they arrive; what each worker measured."""
    limits = [job.slots.count for job in jobs]

    def arrived(index: int, message: tuple[SampleRecord, int]) -> None:
        record, limits[index] = message
        progress.add(record, sum(limits))

    reports = await run_workers(jobs, _worker_sessions, arrived)
    return {"loop_lag_ms": _loop_lag([lag for report in reports for lag in report["loop_lag_ms"]]),
            "concurrency": {"configured": sum(r["concurrency"] for r in reports),
                            "lowest": sum(r["lowest"] for r in reports)},
            "workers": {"count": len(jobs), "by_worker": [
                {"samples": r["samples"], "concurrency": r["concurrency"], "lowest": r["lowest"],
                 "loop_lag_ms": _loop_lag(r["loop_lag_ms"])} for r in reports]}}


def _loop_lag(lag_ms: list[float]) -> dict[str, Any]:
    """Loop lag as `LoopLagMonitor.summary` reports it, of lags measured in worker processes."""
    return {"interval_ms": LoopLagMonitor().interval_s * 1000, **describe(lag_ms)}


def _spec(journal: Journal, profile: RunnerProfile, spec: EvalSpec, source: dict[str, Any], synth: InputAudio,
          options: RunOptions, n_selected: int, judge: Judge | None,
          transcriber: asr.Transcriber | None) -> dict[str, Any]:
    local = profile.provider == "local" and not options.url
    shutdown = profile.shutdown()
    return {
        "run_id": journal.run_dir.name, "started_at": _now(),
        "harness": provenance.harness(),
        "model": profile.public(),
        "provider": {"name": profile.provider, "transport": profile.api.transport,
                     "reasoning_effort": profile.reasoning_effort,
                     "shutdown": None if shutdown is None else {"date": shutdown.date,
                                                                "replacement": shutdown.replacement,
                                                                "source": shutdown.source}},
        "endpoint": "embedded server (loopback)" if local else endpoint(profile, options.url),
        "eval": spec.public(), "grader": {"name": spec.grader, "version": grader_version(spec.grader)},
        "dataset": source, "tts": synth.describe(),
        "perturbation": synth.perturbation_facts(), "tts_verification": synth.verification_summary,
        "judge": judge.describe() if judge else {"configured": False, "reason": NOT_CONFIGURED},
        "asr": transcriber.describe() if transcriber else {"configured": False, "reason": asr.NOT_CONFIGURED},
        "runner": {"concurrency": profile.concurrency, "turn_mode": options.turn_mode,
                   "input_modality": options.input_modality, "output_modalities": profile.output_modalities,
                   "pace": options.effective_pace(profile), "input_chunk_ms": INPUT_CHUNK_MS,
                   "protocol": profile.protocol,
                   "compression": profile.compression, "turn_timeout_s": profile.turn_timeout_s,
                   "max_attempts": options.max_attempts, "trials": options.trials, "seed": options.seed,
                   "limit": options.limit,
                   "ids": options.ids, "shard": f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
                   "workers": options.workers,  # not part of the run's identity: it changes how fast, not what
                   "n_selected": n_selected,
                   # finds voiced samples: the answers' (ttfa_voiced_ms) and, in VAD turns, the question's end
                   "voice_detector": voice_activity.detector(),
                   **({"duplex": duplex_facts(spec.duplex.max_pause_ms, spec.duplex.grace_ms)} if spec.duplex else {})},
        "host": host_facts(),
    }


async def execute(options: RunOptions) -> tuple[Path, dict[str, Any]]:
    """Run an eval; return the run directory and its summary."""
    profile = effective_profile(options)
    spec = load_eval(options.eval)
    if spec.duplex is not None:  # the caller streams speech for the model's own turn detection: VAD, spoken
        if options.input_modality == "text":
            raise UserError(f"{spec.name} streams the caller's speech: it cannot take --input text")
        options = replace(options, turn_mode="vad")
    if options.perturb is not None:
        spec = spec.model_copy(update={"perturb": options.perturb})
    if options.input_modality == "text" and options.turn_mode == "vad":
        raise UserError("--input text needs --turn-mode manual: there is no speech for the server to detect")
    if profile.provider != "local" or options.url:
        auth_headers(profile, endpoint(profile, options.url))  # a missing key stops the run before any work
    profile.api.codec(profile)  # so does a provider whose client is not built yet
    shutdown = profile.shutdown()
    if shutdown is not None:
        print(shutdown.warning(profile.model), file=sys.stderr)
    samples, source = load_samples(spec, options.data_dir or default_data_dir())
    selected = select(samples, options.ids, options.limit)
    if options.shard:
        selected = shard(selected, *options.shard)
    journal = Journal(_run_dir(options))
    done = _check_resumable(journal, options)
    todo = [s for s in selected if s.sample_id not in done]

    transcriber = asr.load_transcriber()  # None unless S2S_ASR_* is set: ASR consistency is then "not measured"
    judge = load_judge()  # None unless S2S_JUDGE_* is set: judged evals then record "not judged" with the reason
    try:
        synth = InputAudio(spec, keep_dir=journal.run_dir if options.save_audio else None)
        # A resume that would mix conditions is refused before anything is written to the run directory.
        resumed = _resumed_spec(journal, _spec(journal, profile, spec, source, synth, options, len(selected), judge,
                                               transcriber), options) if done else None
        # With a transcriber, clips are verified by transcribing them back; failing samples are left out.
        prepared = await synth.prepare(todo if options.input_modality == "audio" else [],
                                       lambda s: texts_to_speak([s], spec), transcriber, progress=options.progress)
    except BaseException:
        for backend in (judge, transcriber):
            if backend is not None:
                await backend.aclose()
        raise
    selected = [s for s in selected if s.sample_id not in prepared.excluded]
    todo = [s for s in todo if s.sample_id not in prepared.excluded]
    written = (resumed.as_dict() if resumed is not None else
                 _spec(journal, profile, spec, source, synth, options, len(selected), judge, transcriber))
    journal.write_spec(written)
    write_items(journal.run_dir, selected)  # what re-grading reads: the run directory alone
    journal.open()
    monitor = LoopLagMonitor()
    limiter = AdaptiveLimiter(profile.concurrency)
    progress = Progress(journal, len(todo), f"{profile.name} × {spec.name}", options.progress)
    plans = split(profile.concurrency, len(todo), options.workers)
    measured: dict[str, Any] = {}
    try:
        with frozen_heap():
            async with monitor.running(), _transport(profile, options, journal.run_dir) as transport:
                if len(plans) == 1:
                    ctx = _context(profile, spec, options, transport, synth, journal.run_dir,
                                   GradeContext(judge, transcriber), limiter)
                    await _run_samples(todo, ctx, plans[0], lambda record: progress.add(record, limiter.limit))
                else:
                    jobs = [_WorkerJob(profile, spec, options, synth, shard(todo, k + 1, len(plans)), plan,
                                       journal.run_dir, transport.url, transport.headers)
                            for k, plan in enumerate(plans)]
                    measured = await _run_in_workers(jobs, progress)
    finally:
        progress.close()
        if judge is not None:
            await judge.aclose()
        if transcriber is not None:
            await transcriber.aclose()
        journal.close()
        finished = journal.done_ids()
        measurement: dict[str, Any] = {"loop_lag_ms": monitor.summary(),
                                       "concurrency": {"configured": limiter.max_limit, "lowest": limiter.lowest}}
        if len(plans) > 1:  # the sessions ran in workers: their loops are the ones that matter; the parent journaled
            measured = measured or {"loop_lag_ms": _loop_lag([]), "concurrency": measurement["concurrency"],
                                    "workers": {"count": len(plans), "by_worker": []}}  # stopped before reporting
            measurement = {**measured, "journal_loop_lag_ms": measurement["loop_lag_ms"]}
        if written.get("measurement"):  # a resumed run: keep what each earlier part measured
            previous = written["measurement"]
            measurement["earlier_parts"] = [*previous.pop("earlier_parts", []), previous]
        journal.write_spec({**written, "measurement": measurement})
        summary = journal.write_summary({
            "run_id": journal.run_dir.name, "model": profile.name, "eval": spec.name,
            "complete": all(s.sample_id in finished for s in selected), "updated_at": _now(),
            "measurement": measurement})
    return journal.run_dir, summary

