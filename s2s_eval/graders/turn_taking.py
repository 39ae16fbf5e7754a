"""Turn-taking verdicts from what a full-duplex scenario showed (`runners/duplex.py` measures; this decides).

`correct` is the good behaviour of the scenario's category: pause → no premature takeover; interruption → the
model yielded; backchannel → no false yield; turn_end → an answer came. A scenario that did not happen as planned
(the answer ended before the cue point) is not graded (`correct` None). Whether an interruption's next answer
addressed the cue is a rule, recorded beside the verdict and not part of it: the model's transcript of its next
answer must contain one of the scenario's `expect_any` phrases (case-insensitive, whole words; None when the
scenario has none or there was no next answer). Metrics: the timing figures, for the summary's averages.
"""

from __future__ import annotations

import re
from typing import Any

from s2s_eval.datasets.sample import Sample
from s2s_eval.graders import Answer, Episode, GradeContext
from s2s_eval.graders.base import Grade
from s2s_eval.log import Dynamics, ResponseInfo


def addressed(sample: Sample, answer: Answer) -> bool | None:
    """Does the first answer after the cue contain one of the scenario's expected phrases?"""
    phrases = sample.metadata.get("expect_any") or []
    later = [r for r in answer.responses if r.turn >= 1]
    if not phrases or not later:
        return None
    # a live session's ResponseObservation, or a journaled ResponseInfo when re-grading
    text = (later[0].text if isinstance(later[0], ResponseInfo) else later[0].response_text).lower()
    return any(re.search(rf"(?<!\w){re.escape(p.lower())}(?!\w)", text) for p in phrases)


def verdict(sample: Sample, facts: Dynamics) -> bool | None:
    if facts.scenario == "pause":
        return None if facts.takeover is None else not facts.takeover
    if facts.scenario == "interruption":
        return facts.yielded
    if facts.scenario == "backchannel":
        return None if facts.false_yield is None else not facts.false_yield
    return facts.turn_end_latency_ms is not None


class TurnTakingGrader:
    def episode(self, sample: Sample) -> Episode | None:
        return None

    async def grade(self, sample: Sample, answer: Answer, context: GradeContext) -> Grade:
        if not isinstance(answer.dynamics, Dynamics):
            return Grade(None, None, "no full-duplex facts: this grader needs a turn_taking session")
        facts = answer.dynamics
        if facts.scenario == "interruption":
            facts = facts.model_copy(update={"addressed": addressed(sample, answer)})
        correct = verdict(sample, facts)
        metrics: dict[str, Any] = {"turn_end_latency_ms": facts.turn_end_latency_ms,
                                   "yield_latency_ms": facts.yield_latency_ms}
        details = {"addressed": facts.addressed} if facts.scenario == "interruption" else {}
        return Grade(correct, None if correct is None else float(correct), facts.verdict or "not measured",
                     metrics=metrics, details=details)


def graded(facts: Dynamics | None, grade: Any) -> Dynamics | None:
    """The record's facts with what grading decided about them (an interruption's `addressed`)."""
    if facts is None or grade is None or "addressed" not in grade.details:
        return facts
    return facts.model_copy(update={"addressed": grade.details["addressed"]})
