"""ComplexFuncBench grading: the model's function calls are matched step by step against the golden trajectory
while the session runs, then the finished attempt is graded as the upstream evaluator (ComplexEval) would.

**While the session runs** (`CallEpisode.on_function_call`, once per call, in the order the model made them):

1. The targets are the golden calls not yet matched, up to one step beyond the furthest step in which a call has
   been matched (upstream adds the next step's calls whenever a step of the model's matched any call, keeping the
   unmatched ones); steps whose remaining calls are all optional are passed over by themselves. Optional golden
   calls are the free lookups (`FREE_FUNCTIONS`) and `Search_Hotels` by hotel name.
2. The call's arguments must be a JSON object (`decode_error` otherwise). A call that matches a target by rules gets
   that call's golden observation (stage `rule`); a free lookup that matches any golden lookup of the trajectory gets
   its observation (stage `free_lookup`, upstream's free-function table). Otherwise the call is format-checked and
   a malformed call gets the format error. A well-formed call is compared with its most similar target; if the
   value check fails (wrong function, an exact parameter missing or different) it gets the generic failure
   observation. If the value check passes, only the LLM equivalence stage can decide, and the judge is async while
   this handler is not: the call gets the target's golden observation provisionally (`pending_judge`), and
   `grade` asks the judge. A rejected call then counts as the value error upstream would have recorded; the rest of
   the episode is graded on what the model was actually sent. Without a judge, a sample whose verdict depends on a
   pending call is not graded (`correct` None, with the reason).
3. Observations longer than `MAX_OBSERVATION_CHARS` are cut, with a marker the model can read; the call's record
   says so (`observation.truncated`). Realtime models keep about 32k tokens; upstream's text models got them whole.

**When the attempt is graded** (`grade`), the calls are grouped by the response that made them (upstream's steps)
and upstream's stopping rules are applied in order: a step that starts after every golden call was matched ends
the episode with `func_hallucination`; a step with a call whose arguments are not JSON ends it with
`decode_error`; a step with neither a match nor a format error ends it with the value errors of its calls
(`func_error`, `param_missing`, `value_error`, `param_hallucination`). Calls after that end count for nothing,
as upstream never sees them. Otherwise the final spoken answer ends the episode: `success` when every required
golden call was matched and the last step had no failed call, else that step's error or `stop_early`. A final
response that still calls functions (the runner stops answering after the eval's `max_tool_rounds`) is
`no_final_answer`.

Metrics: `success`; `call_accuracy` = golden calls matched before the end / all golden calls (optional ones
included, as upstream counts; a repeated lookup counts once); `answer_completeness` and `answer_correctness` (0-2)
from the judge when the episode reached the final answer (`complexfuncbench_answer`).

Deviations from upstream's code, all where it contradicts its own rules: every free lookup stays optional to the
end (upstream's end-of-run cleanup forgets `Location_to_Lat_Long`); free lookups compare as JSON, not by their
serialised key order; JSON types are strict (see `complexfuncbench_match`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from s2s_eval.graders.base import Grade
from s2s_eval.graders.complexfuncbench_answer import AnswerScores, score_answer
from s2s_eval.graders.complexfuncbench_match import (
    FREE_FUNCTIONS,
    JUDGE_PROMPT_VERSION,
    equivalence_prompt,
    format_error,
    is_optional,
    mismatch,
    parse_arguments,
    rule_match,
    similarity,
    value_check,
)
from s2s_eval.graders.judge import NOT_CONFIGURED, Judge, Verdict

if TYPE_CHECKING:
    from s2s_eval.datasets.sample import Sample
    from s2s_eval.graders import Answer, GradeContext

__all__ = ["GENERIC_FAILURE", "MAX_OBSERVATION_CHARS", "CallEpisode", "ComplexFuncBenchGrader", "Outcome", "replay"]

MAX_OBSERVATION_CHARS = 16_000  # about 4k tokens: a few steps' observations fit a 32k-token Realtime context
GENERIC_FAILURE = {"api_status": True,
                   "content": "There is a problem with your API call. Please double-check it for possible problems."}


@dataclass
class GoldenCall:
    position: int  # 0-based over the whole trajectory
    step: int
    call: dict[str, Any]
    observation: Any
    optional: bool
    matched_by: int | None = None  # the index of the model's call that matched it (in-loop, provisionally)


@dataclass
class CallRecord:
    """One call the model made, as the episode handled it."""

    index: int
    call_id: str
    name: str  # as the model called it (a session function name)
    function: str  # the original function name
    arguments: Any  # the parsed object, or the raw string when it is not one
    golden_left: bool  # some golden call was still a target when this call came
    outcome: str  # matched | pending_judge | format_error | decode_error | no_match
    stage: str | None = None  # rule | free_lookup (matched); llm_judge once the judge accepted a pending call
    golden: int | None = None  # position of the golden call it matched or was compared with
    repeat: bool = False  # a free lookup whose golden call had been matched already
    error: dict[str, str] | None = None  # {"kind", "message"}
    observation: dict[str, Any] = field(default_factory=dict)  # kind, chars, sent_chars, truncated
    sent: str = ""

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["sent"]
        return data


def _observation(value: Any) -> tuple[str, dict[str, Any]]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= MAX_OBSERVATION_CHARS:
        return text, {"chars": len(text), "sent_chars": len(text), "truncated": False}
    cut = text[:MAX_OBSERVATION_CHARS]
    marker = f" ... [observation truncated: the first {MAX_OBSERVATION_CHARS} of {len(text)} characters]"
    return cut + marker, {"chars": len(text), "sent_chars": MAX_OBSERVATION_CHARS, "truncated": True}


class CallEpisode:
    """One attempt's matching state; see the module docstring. Not thread-safe; one per session."""

    def __init__(self, sample: Sample) -> None:
        meta = sample.metadata
        self.request: str = meta["request"]
        self.functions = {f["name"]: f for f in meta["functions"]}
        self.names: dict[str, str] = meta["tool_names"]
        steps = meta["conversations"][1:-1]
        self.golden: list[GoldenCall] = []
        for step, (calls, observations) in enumerate(zip(steps[::2], steps[1::2], strict=True)):
            for call, obs in zip(calls["function_call"], observations["content"], strict=True):
                self.golden.append(GoldenCall(len(self.golden), step, call, obs, is_optional(call)))
        self.n_steps = len(steps) // 2
        self.reach = 0  # the last step whose calls are targets
        self.records: list[CallRecord] = []
        self._advance()

    # -- state --

    def targets(self) -> list[GoldenCall]:
        return [g for g in self.golden if g.step <= self.reach and g.matched_by is None]

    def _advance(self) -> None:
        while self.reach < self.n_steps - 1 and all(g.optional for g in self.targets()):
            self.reach += 1

    def _match(self, golden: GoldenCall, index: int) -> None:
        golden.matched_by = index
        if golden.step <= self.reach:
            self.reach = min(max(self.reach, golden.step + 1), self.n_steps - 1)
        self._advance()

    # -- the handler --

    def on_function_call(self, name: str, call_id: str, arguments: str) -> str:
        """The output for one call: a golden observation, a format error, or the generic failure observation."""
        function = self.names.get(name, name)
        parsed, problem = parse_arguments(arguments)
        record = CallRecord(len(self.records), call_id, name, function, parsed if parsed is not None else arguments,
                            golden_left=bool(self.targets()), outcome="no_match")
        self.records.append(record)
        if parsed is None:
            record.outcome, record.error = "decode_error", {"kind": "decode_error", "message": problem or ""}
            return self._answer(record, "decode_error", {"error": f"Invalid function call: {problem}."})
        call = {"name": function, "arguments": parsed}
        target = next((g for g in self.targets() if rule_match(call, g.call)), None)
        if target is not None:
            return self._matched(record, target, "rule")
        lookup = self._free_lookup(call)
        if lookup is not None:
            return self._matched(record, lookup, "free_lookup")
        problem = format_error(function, parsed, self.functions)
        if problem is not None:
            record.outcome, record.error = "format_error", {"kind": "format_error", "message": problem}
            return self._answer(record, "format_error", {"error": problem})
        candidates = self.targets()
        if not candidates:
            return self._answer(record, "failure", GENERIC_FAILURE)
        pair = max(candidates, key=lambda g: similarity(call, g.call))  # the first of equals: max keeps it
        record.golden = pair.position
        failed = value_check(call, pair.call)
        if failed is not None:
            record.error = {"kind": failed[0], "message": failed[1]}
            return self._answer(record, "failure", GENERIC_FAILURE)
        record.outcome = "pending_judge"
        self._match(pair, record.index)
        return self._answer(record, "golden_provisional", pair.observation)

    def _free_lookup(self, call: dict[str, Any]) -> GoldenCall | None:
        if call["name"] not in FREE_FUNCTIONS:
            return None
        same = [g for g in self.golden if g.call["name"] in FREE_FUNCTIONS and rule_match(call, g.call)]
        return next((g for g in same if g.matched_by is None), same[0] if same else None)

    def _matched(self, record: CallRecord, golden: GoldenCall, stage: str) -> str:
        record.outcome, record.stage, record.golden = "matched", stage, golden.position
        if golden.matched_by is None:
            self._match(golden, record.index)
        else:
            record.repeat = True
        return self._answer(record, "golden", golden.observation)

    def _answer(self, record: CallRecord, kind: str, value: Any) -> str:
        text, facts = _observation(value)
        record.observation, record.sent = {"kind": kind, **facts}, text
        return text

    # -- what the judge sees --

    def dialogue_before(self, index: int) -> list[dict[str, Any]]:
        """The conversation up to call `index`, as the model saw it: the request, earlier calls and their outputs."""
        dialogue: list[dict[str, Any]] = [{"role": "user", "content": self.request}]
        for record in self.records[:index]:
            dialogue.append({"role": "assistant", "function_call": [{"name": record.function,
                                                                      "arguments": record.arguments}]})
            dialogue.append({"role": "observation", "content": [record.sent]})
        return dialogue


# --- grading -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as upstream would see it."""

    # success, stop_early, no_final_answer, func_hallucination, decode_error, or a failed call's kind: func_error,
    # param_missing, value_error, param_hallucination
    kind: str
    message: str
    ended_at: int | None  # the first call of the step that ended the episode early; None if the answer ended it
    matched: tuple[int, ...]  # golden positions matched before the end

    @property
    def success(self) -> bool:
        return self.kind == "success"


def _label(record: CallRecord) -> str:
    return f"call {record.index + 1} ({record.function})"


def replay(episode: CallEpisode, batches: list[list[int]], accepted: dict[int, bool],
           final_text: str | None) -> Outcome:
    """Apply upstream's stopping rules to the calls grouped by response (`batches` of record indices).

    `accepted` gives the judge's decision for each call still `pending_judge`; `final_text` is the transcript of
    the final answer, or None when the last response called functions instead of answering.
    """
    matched: list[int] = []
    last_errors: list[tuple[CallRecord, dict[str, str]]] = []
    for batch in batches:
        records = [episode.records[i] for i in batch]
        first = records[0]
        if not first.golden_left:
            return Outcome("func_hallucination", f"{_label(first)} came after every golden call was made",
                           first.index, tuple(matched))
        broken = next((r for r in records if r.outcome == "decode_error"), None)
        if broken is not None:
            message = f"{_label(broken)}: {(broken.error or {}).get('message')}"
            return Outcome("decode_error", message, first.index, tuple(matched))
        successes, errors, formats = [], [], []
        for r in records:
            if r.outcome == "matched" or (r.outcome == "pending_judge" and accepted.get(r.index)):
                successes.append(r)
            elif r.outcome == "pending_judge":
                kind, message = mismatch({"name": r.function, "arguments": r.arguments},
                                         episode.golden[r.golden or 0].call)
                errors.append((r, {"kind": kind, "message": f"not equivalent to the golden call: {message}"}))
            elif r.outcome == "format_error":
                formats.append(r)
            elif r.error is not None:
                errors.append((r, r.error))
        if not successes and not formats:
            record, error = errors[0] if errors else (first, {"kind": "value_error", "message": "no golden call"})
            return Outcome(error["kind"], f"{_label(record)}: {error['message']}", first.index, tuple(matched))
        matched += [r.golden for r in successes if r.golden is not None and not r.repeat]
        last_errors = errors
    if final_text is None:
        return Outcome("no_final_answer", "the last response still called functions (the runner stops answering "
                       "them after the eval's max_tool_rounds)", None, tuple(matched))
    missing = [g for g in episode.golden if not g.optional and g.position not in matched]
    if last_errors:
        record, error = last_errors[0]
        return Outcome(error["kind"], f"{_label(record)}: {error['message']}", None, tuple(matched))
    if missing:
        names = ", ".join(g.call["name"] for g in missing)
        said = "answered" if final_text.strip() else "answered (an empty transcript)"
        return Outcome("stop_early", f"{said} with {len(missing)} required golden call(s) not made: {names}",
                       None, tuple(matched))
    return Outcome("success", "every golden call was matched, then the model answered", None, tuple(matched))


def _batches(episode: CallEpisode, responses: list[Any]) -> list[list[int]]:
    """The record indices of the calls of each response that made calls, in order."""
    batches, index = [], 0
    for response in responses:
        batch = []
        for call in response.function_calls:
            if index < len(episode.records) and episode.records[index].call_id == call.call_id:
                batch.append(index)
                index += 1
        if batch:
            batches.append(batch)
    return batches


async def _verdicts(judge: Judge | None, episode: CallEpisode) -> dict[int, Verdict]:
    pending = [r for r in episode.records if r.outcome == "pending_judge"]
    if judge is None or not pending:
        return {}

    async def ask(record: CallRecord) -> Verdict:
        golden = episode.golden[record.golden or 0].call
        messages = equivalence_prompt(episode.functions.get(record.function), episode.dialogue_before(record.index),
                                      {"name": record.function, "arguments": record.arguments}, golden)
        return await judge.verdict(messages, expected="YES")

    async with asyncio.TaskGroup() as group:
        tasks = {r.index: group.create_task(ask(r)) for r in pending}
    return {index: task.result() for index, task in tasks.items()}


@dataclass(frozen=True)
class ComplexFuncBenchGrader:
    """The eval's grader (registered as "complexfuncbench"); see the module docstring."""

    def episode(self, sample: Sample) -> CallEpisode:
        return CallEpisode(sample)

    async def grade(self, sample: Sample, answer: Answer, context: GradeContext) -> Grade:
        episode = answer.episode
        if not isinstance(episode, CallEpisode):
            return Grade(correct=None, score=None, reason="not graded: the attempt kept no function-call episode")
        batches = _batches(episode, answer.responses)
        answered = bool(answer.responses) and not answer.responses[-1].function_calls
        final_text = answer.text if answered else None
        verdicts = await _verdicts(context.judge, episode)
        decided = {i: v.passed for i, v in verdicts.items() if v.passed is not None}
        for record in episode.records:
            if record.outcome == "pending_judge" and record.index in decided:
                record.stage = "llm_judge"
                record.outcome = "matched" if decided[record.index] else "no_match"
                if not decided[record.index]:
                    kind, message = mismatch({"name": record.function, "arguments": record.arguments},
                                             episode.golden[record.golden or 0].call)
                    record.error = {"kind": kind, "message": f"the judge found it not equivalent: {message}"}
        undecided = [r for r in episode.records if r.outcome == "pending_judge" and r.index not in decided]
        optimistic = replay(episode, batches, {r.index: True for r in undecided}, final_text)
        pessimistic = replay(episode, batches, {r.index: False for r in undecided}, final_text)
        total = len(episode.golden)
        details: dict[str, Any] = {
            "golden": {"steps": episode.n_steps, "calls": total, "optional": sum(g.optional for g in episode.golden)},
            "calls": [r.public() for r in episode.records],
            "observations_truncated": sum(bool(r.observation.get("truncated")) for r in episode.records),
            "max_observation_chars": MAX_OBSERVATION_CHARS,
        }
        if verdicts or undecided:
            reason = NOT_CONFIGURED if context.judge is None else "not judged: no verdict"
            details["equivalence_judge"] = {
                "prompt_version": JUDGE_PROMPT_VERSION,
                "verdicts": {str(i + 1): v.as_dict() for i, v in verdicts.items()},
                "undecided_calls": {str(r.index + 1): (verdicts[r.index].error if r.index in verdicts else reason)
                                    for r in undecided}}
        if optimistic.success == pessimistic.success:
            outcome: Outcome | None = optimistic if optimistic.success else pessimistic
        else:
            outcome = None
        accuracy = (len(optimistic.matched) / total if len(optimistic.matched) == len(pessimistic.matched) and total
                    else None)
        scores, scores_reason = await self._answer_scores(sample, answer, context, optimistic, pessimistic)
        metrics: dict[str, float | None] = {"success": None if outcome is None else float(outcome.success),
                                            "call_accuracy": accuracy,
                                            "answer_completeness": None, "answer_correctness": None}
        if scores is not None:
            metrics.update(scores.metrics())
            details["answer_scores"] = scores.as_dict()
        else:
            details["answer_scores"] = {"not_measured": scores_reason}
        if outcome is None:
            calls = ", ".join(f"call {r.index + 1} ({r.function})" for r in undecided)
            why = NOT_CONFIGURED if context.judge is None else "no valid verdict from the judge"
            details["outcome"] = {"if_accepted": asdict(optimistic), "if_rejected": asdict(pessimistic)}
            return Grade(correct=None, score=None, metrics=metrics, details=details,
                         reason=f"not judged: the verdict depends on the LLM equivalence of {calls} ({why})")
        details["outcome"] = asdict(outcome)
        return Grade(correct=outcome.success, score=float(outcome.success), reason=outcome.kind, metrics=metrics,
                     details=details)

    @staticmethod
    async def _answer_scores(sample: Sample, answer: Answer, context: GradeContext, optimistic: Outcome,
                             pessimistic: Outcome) -> tuple[AnswerScores | None, str]:
        """Completeness and correctness of the final answer, when the episode reached it (as upstream's did)."""
        if optimistic.ended_at is not None and pessimistic.ended_at is not None:
            return None, (f"not measured: the episode ended at call {pessimistic.ended_at + 1} "
                          f"({pessimistic.kind}) before a final answer, as upstream's does")
        if optimistic.kind == "no_final_answer":
            return None, "not measured: no final answer (the last response still called functions)"
        return await score_answer(context.judge, sample.metadata["conversations"], answer.text), ""
