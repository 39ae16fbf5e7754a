"""The turn_taking eval's data and verdicts: the built-in scenario file, one clear line per malformed scenario, the
grader's verdict per category and its `addressed` rule."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.sample import Sample
from s2s_eval.datasets.spec import EvalSpec, load_eval
from s2s_eval.datasets.turn_taking import CATEGORIES
from s2s_eval.errors import DataError
from s2s_eval.graders import Answer, GradeContext
from s2s_eval.graders.turn_taking import TurnTakingGrader, addressed, graded, verdict
from s2s_eval.log import Dynamics
from s2s_eval.runners.duplex import PLAYBACK_POLICY
from s2s_eval.runners.session import ResponseObservation

BUILTIN = Path(__file__).resolve().parents[1] / "evals" / "scenarios" / "turn_taking.yaml"


@pytest.fixture(scope="module")
def spec() -> EvalSpec:
    return load_eval("turn_taking")


# -- the built-in scenarios -------------------------------------------------------------------------------------

def test_the_built_in_scenarios_load_round_robin(spec: EvalSpec) -> None:
    samples, source = load_samples(spec, None)
    assert len(samples) == 80 and Counter(s.category for s in samples) == dict.fromkeys(CATEGORIES, 20)
    assert [s.category for s in samples] == [CATEGORIES[i % 4] for i in range(80)]
    assert len({s.sample_id for s in samples}) == 80
    assert [s.category for s in select(samples, None, 4)] == list(CATEGORIES)  # --limit 4: one of each
    assert source["path"] == str(BUILTIN) and source["scenarios"] == 80
    assert source["sha256"] == hashlib.sha256(BUILTIN.read_bytes()).hexdigest()
    assert spec.duplex is not None
    for sample in samples:
        scenario = sample.scenario
        assert scenario is not None and sample.target == "" and sample.prompt_text == " ".join(scenario.parts)
        cued = sample.category in ("interruption", "backchannel")
        assert (scenario.cue is not None and scenario.cue_at_ms is not None) == cued, sample.sample_id
        assert bool(sample.metadata.get("expect_any")) == (sample.category == "interruption"), sample.sample_id
        if sample.category == "pause":
            assert len(scenario.parts) >= 2 and 0 < scenario.pause_ms <= spec.duplex.max_pause_ms
        else:
            assert scenario.pause_ms == 0


# -- malformed scenario files: one line naming the scenario and the field ----------------------------------------

GOOD: list[dict[str, Any]] = [
    {"id": "p1", "category": "pause", "say": ["What is the tallest", "mountain in Africa?"], "pause_ms": 1200},
    {"id": "i1", "category": "interruption", "say": "Tell me about Rome.", "cue": "Wait. What is two and two?",
     "cue_at_ms": 2000, "expect_any": ["four", "4"]},
    {"id": "b1", "category": "backchannel", "say": "Tell me about Paris.", "cue": "Mm-hmm.", "cue_at_ms": 2500},
    {"id": "t1", "category": "turn_end", "say": "What is the capital of Peru?"},
]


def load_file(spec: EvalSpec, tmp_path: Path, content: Any, *, raw: str | None = None) -> list[Sample]:
    path = tmp_path / "scenarios.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(content), encoding="utf-8")
    return load_samples(spec.model_copy(update={"source": {"scenarios": str(path)}}), None)[0]


def with_row(index: int, **changes: Any) -> dict[str, list[dict[str, Any]]]:
    rows = [dict(r) for r in GOOD]
    rows[index].update(changes)
    rows[index] = {k: v for k, v in rows[index].items() if v is not None}
    return {"scenarios": rows}


def test_a_well_formed_file_of_ones_own_loads(spec: EvalSpec, tmp_path: Path) -> None:
    samples = load_file(spec, tmp_path, {"scenarios": GOOD})
    assert [s.sample_id for s in samples] == ["p1", "i1", "b1", "t1"]
    assert samples[0].scenario is not None and samples[0].scenario.parts == ("What is the tallest",
                                                                             "mountain in Africa?")
    assert samples[1].metadata == {"expect_any": ["four", "4"]}


@pytest.mark.parametrize(("content", "words"), [
    (with_row(1, cue=None), ["scenario 2 (i1)", "`cue`"]),
    (with_row(1, cue_at_ms=None), ["scenario 2 (i1)", "`cue_at_ms`"]),
    (with_row(2, cue=None), ["scenario 3 (b1)", "`cue`"]),
    (with_row(0, pause_ms=None), ["scenario 1 (p1)", "`pause_ms`"]),
    (with_row(0, say="What is the tallest mountain in Africa?"), ["scenario 1 (p1)", "`say`"]),
    (with_row(3, colour="blue"), ["scenario 4 (t1)", "colour", "Extra inputs"]),
    (with_row(3, cue="Mm-hmm."), ["scenario 4 (t1)", "`cue`"]),
    (with_row(1, cue_at_ms=-5), ["scenario 2 (i1)", "cue_at_ms"]),
    (with_row(3, category="monologue"), ["scenario 4 (t1)", "category"]),
    (with_row(3, id="t 1"), ["scenario 4 (t 1)", "id"]),
    (with_row(3, id=None), ["scenario 4", "id", "Field required"]),
    (with_row(3, say="  "), ["scenario 4 (t1)", "`say`"]),
    (with_row(2, id="i1"), ["'i1'", "id", "twice"]),
    (with_row(0, pause_ms=2500), ["scenario p1", "pause_ms 2500", "max_pause_ms"]),
    ({"scenarios": {"p1": GOOD[0]}}, ["`scenarios:` list"]),
    ({"scenarios": []}, ["`scenarios:` list"]),
    (GOOD, ["`scenarios:` list"]),
    ({"scenarios": [GOOD[0], "just a string"]}, ["scenario 2", "valid dictionary"]),
])
def test_a_malformed_scenario_is_one_line_naming_it_and_its_field(spec: EvalSpec, tmp_path: Path, content: Any,
                                                                 words: list[str]) -> None:
    with pytest.raises(DataError) as caught:
        load_file(spec, tmp_path, content)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_rule_across_fields_reads_as_a_sentence_naming_them(spec: EvalSpec, tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_file(spec, tmp_path, with_row(1, cue=None))
    assert str(caught.value) == (f"{tmp_path / 'scenarios.yaml'}: scenario 2 (i1): an interruption scenario needs "
                                 "`cue` and `cue_at_ms`")


def test_an_unreadable_or_broken_file_is_one_line(spec: EvalSpec, tmp_path: Path) -> None:
    missing = spec.model_copy(update={"source": {"scenarios": str(tmp_path / "nowhere.yaml")}})
    with pytest.raises(DataError, match=r"^cannot read the scenario file .*nowhere\.yaml: ") as caught:
        load_samples(missing, None)
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="not valid YAML") as caught:
        load_file(spec, tmp_path, None, raw="scenarios:\n  - id: [unclosed\n")
    assert "\n" not in str(caught.value)


# -- the grader ---------------------------------------------------------------------------------------------------

def facts(scenario: str, **fields: Any) -> Dynamics:
    return Dynamics(scenario=scenario, policy=PLAYBACK_POLICY, verdict="what happened", **fields)  # type: ignore[arg-type]


def sample(category: str, expect_any: list[str] | None = None) -> Sample:
    return Sample("x1", "turn_taking", category, "Tell me about Rome.", "",
                  metadata={"expect_any": expect_any} if expect_any else {})


@pytest.mark.parametrize(("dynamics", "correct"), [
    (facts("pause", takeover=False), True),
    (facts("pause", takeover=True), False),
    (facts("pause"), None),  # the question's end was never sent: not measured
    (facts("interruption", yielded=True, yield_kind="during_playback", yield_latency_ms=300.0), True),
    (facts("interruption", yielded=False), False),
    (facts("interruption"), None),  # the answer ended before the cue point: not a trial
    (facts("backchannel", false_yield=False), True),
    (facts("backchannel", false_yield=True), False),
    (facts("backchannel"), None),
    (facts("turn_end", turn_end_latency_ms=640.0), True),
    (facts("turn_end"), False),  # no answer: a failure, not "not graded"
])
def test_the_verdict_is_the_categorys_good_behaviour(dynamics: Dynamics, correct: bool | None) -> None:
    assert verdict(sample(dynamics.scenario), dynamics) is correct
    grade = asyncio.run(TurnTakingGrader().grade(sample(dynamics.scenario), Answer("", dynamics=dynamics),
                                                 GradeContext()))
    assert grade.correct is correct and grade.score == (None if correct is None else float(correct))
    assert grade.reason == "what happened"


def answers(*texts: tuple[int, str]) -> Answer:
    """Responses as (turn, transcript): turn 1 is created after the cue's onset."""
    responses = []
    for turn, text in texts:
        obs = ResponseObservation(turn, None, response_id=f"r{len(responses)}")
        obs.transcripts["item"] = text
        responses.append(obs)
    return Answer(texts[-1][1] if texts else "", responses=responses)


@pytest.mark.parametrize(("expect_any", "later", "result"), [
    (["pacific"], "The Pacific Ocean is the largest.", True),
    (["pacific"], "THE PACIFIC.", True),
    (["Pacific"], "it is the pacific", True),
    (["pacific"], "Pacifically speaking, the Atlantic.", False),  # whole words only
    (["pacific"], "The Atlantic, not the transpacific route.", False),
    (["60", "sixty"], "There are 600 seconds in ten minutes.", False),
    (["60", "sixty"], "Sixty minutes.", True),
    (["60", "sixty"], "It is 60.", True),
    (["thirty two", "thirty-two"], "Thirty-two degrees Fahrenheit.", True),
    (["thirty two"], "thirty twofold", False),
    (["au"], "Gold's symbol is Au.", True),
    (["au"], "The symbol is aurum.", False),
    (["c++"], "It is written in C++, mostly.", True),  # punctuation in a phrase is literal
    (["eight"], "", False),  # a later answer with nothing said
])
def test_addressed_is_a_whole_word_case_insensitive_match_in_the_first_later_answer(
        expect_any: list[str], later: str, result: bool) -> None:
    assert addressed(sample("interruption", expect_any), answers((0, "Rome was founded..."), (1, later))) is result


def test_addressed_reads_only_the_first_answer_after_the_cue() -> None:
    two_later = answers((0, "Rome was founded..."), (1, "Sorry, go on?"), (1, "The Pacific."))
    assert addressed(sample("interruption", ["pacific"]), two_later) is False
    before_cue = answers((0, "The Pacific is large, and Rome..."))  # the phrase only before the cue: not addressed
    assert addressed(sample("interruption", ["pacific"]), before_cue) is None


def test_addressed_is_none_without_phrases_or_a_later_answer() -> None:
    later = answers((0, "Rome was founded..."), (1, "The Pacific."))
    assert addressed(sample("interruption"), later) is None
    assert addressed(sample("interruption", ["pacific"]), answers((0, "Rome was founded..."))) is None
    assert addressed(sample("interruption", ["pacific"]), answers()) is None


def test_the_grader_records_addressed_beside_the_verdict_for_interruptions_only() -> None:
    grader, context = TurnTakingGrader(), GradeContext()
    yielded = facts("interruption", yielded=True, yield_latency_ms=250.0)
    later = answers((0, "Rome was founded..."), (1, "Two and two is four."))
    grade = asyncio.run(grader.grade(sample("interruption", ["four", "4"]),
                                     Answer(later.text, later.responses, dynamics=yielded), context))
    assert grade.correct is True and grade.details == {"addressed": True} and yielded.addressed is None
    assert graded(yielded, grade).addressed is True  # the record takes it from the grade; the facts stay as measured
    assert grade.metrics == {"turn_end_latency_ms": None, "yield_latency_ms": 250.0}
    missed = facts("interruption", yielded=True)
    grade = asyncio.run(grader.grade(sample("interruption", ["four"]),
                                     Answer("", answers((0, "x"), (1, "Five.")).responses, dynamics=missed), context))
    assert grade.correct is True and grade.details == {"addressed": False}  # a rule beside the verdict, not in it
    grade = asyncio.run(grader.grade(sample("backchannel"), Answer("", later.responses,
                                                                   dynamics=facts("backchannel", false_yield=False)),
                                     context))
    assert grade.details == {}
    grade = asyncio.run(grader.grade(sample("turn_end"), Answer("Lima."), context))
    assert grade.correct is None and "no full-duplex facts" in grade.reason
