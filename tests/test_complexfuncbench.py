"""ComplexFuncBench in audio: the adapter, the call comparison, the step-by-step episode graded as upstream would
(one case per behaviour on the project's invented fixtures), the LLM stages against a loopback judge, and whole runs
through the real runner against `s2s-eval serve --engine scripted` making the golden calls."""

from __future__ import annotations

import copy
import inspect
import json
import time
from pathlib import Path
from typing import Any

import pytest

from s2s_eval.datasets import complexfuncbench, load_samples
from s2s_eval.datasets.complexfuncbench import FIXTURE_DIR, golden_script, realtime_name, to_sample
from s2s_eval.datasets.sample import Sample
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import DataError, UserError
from s2s_eval.graders import Answer, GradeContext, get_grader
from s2s_eval.graders.base import Grade
from s2s_eval.graders.complexfuncbench import GENERIC_FAILURE, MAX_OBSERVATION_CHARS, CallEpisode
from s2s_eval.graders.complexfuncbench_match import (
    format_error,
    json_equal,
    mismatch,
    parse_arguments,
    rule_match,
    value_check,
)
from s2s_eval.graders.judge import NOT_CONFIGURED, Judge, JudgeConfig
from s2s_eval.log import read_records
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.runners.session import FunctionCall, ResponseObservation
from s2s_eval.server.engines import load_script
from tests.openai_fake import FakeOpenAI, Reply, score, verdict
from tests.servers import serve_process, write_script

FIXTURE = FIXTURE_DIR / "complexfuncbench" / "ComplexFuncBench.jsonl"
CATEGORIES = ["Hotels", "Flights", "Car-Rental", "Attraction", "Cross"]
LOOKUPS = ["Search_Car_Location", "Search_Flight_Location", "Search_Hotel_Destination", "Search_Attraction_Location"]
JUDGE_ENV = ("S2S_JUDGE_BASE_URL", "S2S_JUDGE_MODEL", "S2S_JUDGE_API_KEY_ENV", "S2S_JUDGE_MAX_RETRIES",
             "S2S_JUDGE_TIMEOUT_S", "S2S_JUDGE_CONCURRENCY", "S2S_JUDGE_RESPONSE_FORMAT")


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load_eval("complexfuncbench")


@pytest.fixture(scope="module")
def samples(spec) -> dict[str, Sample]:  # type: ignore[no-untyped-def]
    loaded, _ = load_samples(spec, FIXTURE_DIR)
    return {s.sample_id: s for s in loaded}


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def write_data(folder: Path, data: list[Any]) -> Path:
    path = folder / "complexfuncbench" / "ComplexFuncBench.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in data), encoding="utf-8")
    return folder


# --- the adapter ---------------------------------------------------------------------------------------------

def test_fixture_samples_speak_the_request_and_offer_the_tools(spec, samples: dict[str, Sample]) -> None:  # type: ignore[no-untyped-def]
    loaded, source = load_samples(spec, FIXTURE_DIR)
    assert [s.sample_id for s in loaded] == ["Hotels-0", "Flights-0", "Car-Rental-0", "Attraction-0", "Cross-0",
                                             "Hotels-1", "Hotels-2"]  # categories round-robin: --limit 5 has each
    assert {s.category for s in loaded[:5]} == set(CATEGORIES)
    assert source["kind"] == "local" and source["n_total"] == 7 and "invented test fixture" in source["note"]

    car = samples["Car-Rental-0"]
    row = next(r for r in rows() if r["id"] == "Car-Rental-0")
    assert car.metadata["request"] == row["conversations"][0]["content"]
    assert "from December 20, 2024 at 10:00 until December 23, 2024 at 10:00" in car.prompt_text
    assert car.target == row["conversations"][-1]["content"] and car.metadata["golden_calls"] == 2
    assert [t["name"] for t in car.tools] == [f["name"] for f in row["functions"]]
    assert car.tools[0] == {"type": "function", **row["functions"][0]}

    hotels = samples["Hotels-1"]
    names = [t["name"] for t in hotels.tools]
    assert "Get_Hotel_Reviews-Tips-" in names and "Get_Hotel_Reviews(Tips)" not in names
    assert hotels.metadata["tool_names"]["Get_Hotel_Reviews-Tips-"] == "Get_Hotel_Reviews(Tips)"


def test_realtime_names_follow_the_upstream_runner() -> None:
    assert realtime_name("Get_Hotel_Reviews(Tips)_Sort_Option") == "Get_Hotel_Reviews-Tips-_Sort_Option"
    assert realtime_name("x" * 70) == "x" * 64
    row = rows()[0]
    row["functions"] = [*row["functions"], {**row["functions"][0], "name": "Search Hotel Destination"}]
    row["functions"][0]["name"] = "Search-Hotel-Destination"
    with pytest.raises(DataError, match="both become 'Search-Hotel-Destination'"):
        to_sample(row, "complexfuncbench")


def _broken(change) -> list[Any]:  # type: ignore[no-untyped-def]
    data: list[Any] = rows()[:2]
    data[1] = change(copy.deepcopy(data[1]))
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: "{not json", r":2: not valid JSON"),
    (lambda r: [r], r":2: each line must be a JSON object, not list"),
    (lambda r: {**r, "id": ""}, r":2: 'id' must be a unique, non-empty string"),
    (lambda r: {**r, "id": "Hotels-0"}, r":2 \(Hotels-0\): 'id' must be a unique"),
    (lambda r: {**r, "id": "Trains-3"}, r":2 \(Trains-3\): the id's prefix 'Trains' is not one of"),
    (lambda r: {**r, "functions": []}, r":2 \(Hotels-1\): 'functions' must be a non-empty list"),
    (lambda r: {**r, "functions": [*r["functions"], r["functions"][0]]}, r"is defined twice"),
    (lambda r: {**r, "conversations": r["conversations"][:-1]}, r"must be the assistant's final text answer"),
    (lambda r: {**r, "conversations": [r["conversations"][1], *r["conversations"][1:]]},
     r"conversations\[0\] must be the user's request"),
    (lambda r: {**r, "conversations": [*r["conversations"][:2], *r["conversations"][3:]]},
     r"must be followed by exactly one observation step"),
    (lambda r: {**r, "conversations": [*r["conversations"][:2], {"role": "observation", "content": [{}]},
                                       *r["conversations"][3:]]},
     r"conversations\[2\] must be an observation step with one entry per call of the step before it \(2\)"),
    (lambda r: {**r, "conversations": [r["conversations"][0], {"role": "assistant", "function_call": [
        {"name": "Get_Hotel_Review_Scores", "arguments": "hotel_id=1"}]}, *r["conversations"][2:]]},
     r"function_call\[0\] needs a string 'name' and an 'arguments' object"),
])
def test_a_malformed_row_is_one_clear_error_naming_it(spec, tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = write_data(tmp_path, _broken(change))
    with pytest.raises(DataError, match=message) as caught:
        load_samples(spec, folder)
    assert "ComplexFuncBench.jsonl" in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file_and_offline_hub_are_one_clear_line(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=r"complexfuncbench/ComplexFuncBench.jsonl: not found; --data-dir"):
        load_samples(spec, tmp_path)
    started = time.monotonic()
    with pytest.raises(UserError, match=r"cannot load complexfuncbench from the Hugging Face Hub "
                                        r"\(hf://datasets/THUDM/ComplexFuncBench@main/ComplexFuncBench.jsonl: .*\); "
                                        r"offline\? pass --data-dir") as caught:
        load_samples(spec, None)  # conftest sets HF_HUB_OFFLINE=1
    assert time.monotonic() - started < 30 and "\n" not in str(caught.value)


def test_golden_script_makes_the_golden_calls_step_by_step(samples: dict[str, Sample], tmp_path: Path) -> None:
    flights = samples["Flights-0"]
    line = golden_script(flights)
    assert [[c["name"] for c in r.get("tool_calls", [])] for r in line["responses"]] == [
        ["Search_Flight_Location", "Search_Flight_Location"], ["Search_Flights"], ["Get_Flight_Details"], []]
    assert line["responses"][-1] == {"text": flights.target}
    assert line["responses"][1]["tool_calls"][0]["arguments"]["departDate"] == "2025-03-14"
    skipped = golden_script(flights, skip=[3], skip_lookups=["Search_Flight_Location"])
    assert [[c["name"] for c in r.get("tool_calls", [])] for r in skipped["responses"]] == [["Search_Flights"], []]
    reviews = golden_script(samples["Hotels-1"])["responses"][0]["tool_calls"]
    assert [c["name"] for c in reviews] == ["Get_Hotel_Review_Scores", "Get_Hotel_Reviews-Tips-"]  # session names
    script = load_script(write_script(tmp_path / "s.jsonl", [golden_script(s) for s in samples.values()]))
    assert len(script["Cross-0"]) == 3 and script["Cross-0"][1].tool_calls[0].name == "Search_Hotels"


# --- call comparison -----------------------------------------------------------------------------------------

FUNCTIONS = {f["name"]: f for f in rows()[0]["functions"]}  # the hotel functions


@pytest.mark.parametrize(("name", "arguments", "expected"), [
    ("Get_Hotel_Policies", {"hotel_id": 1852}, None),
    ("Get_Hotel_Policies", {"hotel_id": 1852.0, "languagecode": "en-us"}, None),
    ("Get_Hotel_Rules", {"hotel_id": 1852}, "Function Get_Hotel_Rules is not defined"),
    ("Get_Hotel_Policies", {"languagecode": "en-us"}, "requires parameters ['hotel_id']"),
    ("Get_Hotel_Policies", {"hotel_id": 1852, "pets": True}, "does not have parameters ['pets']"),
    ("Get_Hotel_Policies", {"hotel_id": "1852"}, "hotel_id of function Get_Hotel_Policies should be of type number"),
    ("Get_Hotel_Policies", {"hotel_id": True}, "should be of type number, but a bool was given"),
    ("Search_Hotels", {"dest_id": "1", "search_type": "city", "arrival_date": "a", "departure_date": "b",
                       "adults": 2.0}, None),
    ("Search_Hotels", {"dest_id": "1", "search_type": "city", "arrival_date": "a", "departure_date": "b",
                       "adults": 2.5}, "adults of function Search_Hotels should be of type integer"),
    ("Search_Hotels", {"dest_id": -1995499, "search_type": "city", "arrival_date": "a", "departure_date": "b"},
     "dest_id of function Search_Hotels should be of type string, but a int was given"),
])
def test_format_check(name: str, arguments: dict[str, Any], expected: str | None) -> None:
    problem = format_error(name, arguments, FUNCTIONS)
    assert problem is None if expected is None else expected in (problem or "")


def test_json_equality_and_rule_match() -> None:
    assert json_equal(3, 3.0) and json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not json_equal("3", 3) and not json_equal(True, 1) and not json_equal(0, False)
    assert not json_equal([1, 2], [2, 1]) and not json_equal({"a": 1}, {"a": 1, "b": None})
    golden = {"name": "Search_Hotels",
              "arguments": {"dest_id": "-1995499", "categories_filter": "free_wifi::1,mealplan::1"}}
    same = {"name": "Search_Hotels",
            "arguments": {"categories_filter": "mealplan::1, free_wifi::1", "dest_id": "-1995499"}}
    assert rule_match(same, golden)
    assert not rule_match({**same, "arguments": {**same["arguments"], "categories_filter": "mealplan::1"}}, golden)
    assert not rule_match({**same, "arguments": {**same["arguments"], "sort_by": "price"}}, golden)
    assert not rule_match({**same, "name": "Get_Filter"}, golden)
    assert not rule_match({"name": "Get_Hotel_Policies", "arguments": {"hotel_id": "1852"}},
                          {"name": "Get_Hotel_Policies", "arguments": {"hotel_id": 1852}})


def test_value_check_decides_what_the_llm_may_judge() -> None:
    golden = {"name": "Search_Car_Location", "arguments": {"query": "Brussels Airport", "languagecode": "en-us"}}
    near = {"name": "Search_Car_Location", "arguments": {"query": "brussels airport", "languagecode": "en-us"}}
    assert value_check(near, golden) is None  # query is free text: the LLM decides
    assert value_check({**near, "arguments": {"query": "Brussels Airport"}}, golden)[0] == "param_missing"  # type: ignore[index]
    assert value_check({**near, "arguments": {"query": "x", "languagecode": "fr"}}, golden)[0] == "value_error"  # type: ignore[index]
    assert value_check({**near, "name": "Search_Flight_Location"}, golden)[0] == "func_error"  # type: ignore[index]
    unknown = {"name": "Invented_Function", "arguments": {"city": "Oslo"}}  # not in the table: every parameter exact
    assert value_check({**unknown, "arguments": {"city": "oslo"}}, unknown)[0] == "value_error"  # type: ignore[index]
    assert mismatch({**near, "arguments": {**near["arguments"], "extra": 1}}, near)[0] == "param_hallucination"
    assert mismatch(near, golden) == ("value_error", "parameter query is not the golden value")


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"hotel_id": 1852}', {"hotel_id": 1852}), ("", {}), ("null", {}), ("[1852]", None), ('{"hotel_id": 18', None)])
def test_arguments_must_be_a_json_object(raw: str, expected: dict[str, Any] | None) -> None:
    parsed, problem = parse_arguments(raw)
    assert parsed == expected and (problem is None) == (expected is not None)


# --- the episode, graded as upstream would -------------------------------------------------------------------

Step = list[tuple[str, Any]] | str  # calls (name, arguments object or raw string) or the final answer text


async def play(sample: Sample, steps: list[Step], *, judge: Judge | None = None,
               unanswered: list[tuple[str, Any]] | None = None) -> tuple[Grade, list[str]]:
    """Drive an episode as the session machine does (one handler call per call, response by response), then grade.
    `unanswered` ends the attempt with a response whose calls were not answered (tool rounds used up)."""
    grader = get_grader("complexfuncbench")
    episode = grader.episode(sample)
    responses, outputs, n = [], [], 0
    for step in [*steps, *([unanswered] if unanswered else [])]:
        response = ResponseObservation(turn=0, t_zero=0.0)
        if isinstance(step, str):
            response.transcripts["item"] = step
        else:
            for name, arguments in step:
                n += 1
                raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
                response.function_calls.append(FunctionCall(name, f"call_{n}", raw))
        responses.append(response)
        if step is not unanswered:
            outputs += [episode.on_function_call(c.name, c.call_id, c.arguments) for c in response.function_calls]
    answer = Answer(responses[-1].response_text, responses, episode)
    return await grader.grade(sample, answer, GradeContext(judge)), outputs


def golden(sample: Sample, **skips: Any) -> list[Step]:
    """The golden trajectory as play() steps (see golden_script for the skips)."""
    return [[(c["name"], c["arguments"]) for c in r["tool_calls"]] if "tool_calls" in r else r["text"]
            for r in golden_script(sample, **skips)["responses"]]


def observation(sample: Sample, position: int) -> str:
    episode = CallEpisode(sample)
    return json.dumps(episode.golden[position].observation, ensure_ascii=False)


def outcome(grade: Grade) -> tuple[bool | None, str, float | None]:
    return grade.correct, grade.reason, grade.metrics["call_accuracy"]


async def test_single_call(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-0"]
    grade, outputs = await play(sample, golden(sample))
    assert outcome(grade) == (True, "success", 1.0) and grade.score == 1.0 and grade.metrics["success"] == 1.0
    assert outputs == [observation(sample, 0)]
    [call] = grade.details["calls"]
    assert (call["outcome"], call["stage"], call["golden"], call["observation"]["kind"]) == ("matched", "rule", 0,
                                                                                           "golden")
    assert grade.details["outcome"]["kind"] == "success" and grade.details["golden"]["calls"] == 1
    assert grade.details["answer_scores"]["completeness_reason"] == NOT_CONFIGURED  # no judge: not measured
    assert grade.metrics["answer_completeness"] is None


async def test_parallel_calls_in_one_step(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-1"]
    [[scores, reviews], [rooms], answer] = golden(sample)
    for steps in ([[scores, reviews], [rooms], answer], [[reviews, scores], [rooms], answer],  # either order
                  [[scores], [reviews], [rooms], answer],  # or one at a time: the rest of a step stays a target
                  [[scores], [rooms, reviews], answer]):  # and, as upstream, a matched call opens the next step
        grade, outputs = await play(sample, steps)
        assert outcome(grade) == (True, "success", 1.0), steps
    grade, outputs = await play(sample, [[reviews, scores], [rooms], answer])
    assert outputs == [observation(sample, 1), observation(sample, 0), observation(sample, 2)]  # each its own
    grade, _ = await play(sample, [[rooms], [scores, reviews], answer])  # but no step opens before any match
    assert outcome(grade) == (False, "func_error", 0.0)


async def test_free_lookups_may_be_called_or_skipped(samples: dict[str, Sample]) -> None:
    car = samples["Car-Rental-0"]
    assert outcome((await play(car, golden(car)))[0]) == (True, "success", 1.0)
    grade, outputs = await play(car, golden(car, skip_lookups=LOOKUPS))
    assert outcome(grade) == (True, "success", 0.5)  # a skipped lookup is a golden call not made: 1 of 2
    assert outputs == [observation(car, 1)]
    flights = samples["Flights-0"]  # two lookups in parallel, both skipped
    assert outcome((await play(flights, golden(flights, skip_lookups=LOOKUPS)))[0]) == (True, "success", 0.5)
    cross = samples["Cross-0"]  # a step of lookups only is passed over by itself
    assert outcome((await play(cross, golden(cross, skip_lookups=LOOKUPS)))[0]) == (True, "success", 0.5)
    astoria = samples["Hotels-2"]  # Search_Hotels by hotel name is optional too
    assert outcome((await play(astoria, golden(astoria, skip=[1])))[0]) == (True, "success", 2 / 3)
    # A lookup made again is answered from upstream's table of free lookups; it counts once.
    [lookup], [search], answer = golden(car)
    grade, outputs = await play(car, [[lookup], [lookup, search], answer])
    assert outcome(grade) == (True, "success", 1.0) and outputs[1] == observation(car, 0)
    assert [(c["stage"], c["repeat"]) for c in grade.details["calls"]] == [
        ("rule", False), ("free_lookup", True), ("rule", False)]


async def test_a_format_error_is_answered_and_the_model_may_retry(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-0"]
    [[call]], answer = golden(sample)[:1], golden(sample)[1]
    as_string = (call[0], {"hotel_id": "1852"})
    grade, outputs = await play(sample, [[as_string], [call], answer])
    assert outcome(grade) == (True, "success", 1.0)  # upstream does not stop at a format error
    assert json.loads(outputs[0])["error"].startswith("Parameter hotel_id of function Get_Hotel_Policies should be")
    assert grade.details["calls"][0]["outcome"] == "format_error"
    grade, outputs = await play(sample, [[("Get_Hotel_Rules", {"hotel_id": 1852})], answer])
    assert outcome(grade) == (False, "stop_early", 0.0)
    assert json.loads(outputs[0]) == {"error": "Function Get_Hotel_Rules is not defined in the function list."}


async def test_a_hallucinated_extra_call(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-0"]
    [[call]], answer = golden(sample)[:1], golden(sample)[1]
    extra = ("Get_Hotel_Review_Scores", {"hotel_id": 1852})
    grade, outputs = await play(sample, [[call], [extra], answer])
    assert outcome(grade) == (False, "func_hallucination", 1.0)  # the matched call still counts
    assert grade.details["outcome"]["ended_at"] == 1 and outputs[1] == json.dumps(GENERIC_FAILURE)
    assert grade.metrics["answer_completeness"] is None
    assert grade.details["answer_scores"]["not_measured"].startswith("not measured: the episode ended at call 2")
    # In the same step as the last golden call it is no hallucination: upstream checks before a step.
    assert outcome((await play(sample, [[call, extra], answer]))[0]) == (True, "success", 1.0)
    # With a skipped lookup still a target, upstream compares the extra call with it: a func_error.
    car = samples["Car-Rental-0"]
    search, answer = golden(car, skip_lookups=LOOKUPS)
    grade, _ = await play(car, [search, [("Vehicle_Details", {"vehicle_id": "771", "search_key": "sk-bru-1"})], answer])
    assert outcome(grade) == (False, "func_error", 0.5)


async def test_stopping_early(samples: dict[str, Sample]) -> None:
    flights = samples["Flights-0"]
    grade, _ = await play(flights, golden(flights, skip=[3]))
    assert outcome(grade) == (False, "stop_early", 0.75) and grade.score == 0.0
    assert grade.details["outcome"]["message"] == "answered with 1 required golden call(s) not made: Get_Flight_Details"
    grade, _ = await play(flights, [""])  # an empty answer with no calls at all
    assert outcome(grade) == (False, "stop_early", 0.0)
    assert grade.details["outcome"]["message"].startswith("answered (an empty transcript) with 2 required")
    assert (grade.metrics["answer_completeness"], grade.metrics["answer_correctness"]) == (0.0, 0.0)


async def test_a_wrong_argument_value(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-0"]
    [[call]], answer = golden(sample)[:1], golden(sample)[1]
    wrong = (call[0], {"hotel_id": 1825})
    grade, outputs = await play(sample, [[wrong], [call], answer])
    # A step with no match and no format error ends the episode: the later right call does not count.
    assert outcome(grade) == (False, "value_error", 0.0) and outputs[0] == json.dumps(GENERIC_FAILURE)
    assert grade.details["outcome"]["message"] == ("call 1 (Get_Hotel_Policies): parameter hotel_id is not the "
                                                   "golden value")
    assert grade.details["outcome"]["ended_at"] == 0
    # Beside a matched call in the same step it does not: the model may fix it in the next step.
    hotels = samples["Hotels-1"]
    [[scores, reviews], [rooms], answer] = golden(hotels)
    bad = (reviews[0], {**reviews[1], "sort_option_id": "sort_most_relevant"})
    assert outcome((await play(hotels, [[scores, bad], [reviews], [rooms], answer]))[0]) == (True, "success", 1.0)
    # ... but answering right after it fails with that step's error, as upstream does.
    assert outcome((await play(hotels, [[scores, bad], answer]))[0]) == (False, "value_error", pytest.approx(1 / 3))


async def test_decode_error_wrong_function_and_missing_parameter(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-0"]
    [[call]], answer = golden(sample)[:1], golden(sample)[1]
    grade, outputs = await play(sample, [[(call[0], '{"hotel_id": 1852')], [call], answer])
    assert outcome(grade) == (False, "decode_error", 0.0) and "not valid JSON" in json.loads(outputs[0])["error"]
    grade, _ = await play(sample, [[call, (call[0], "[1852]")], answer])  # a decode error voids its whole step
    assert outcome(grade) == (False, "decode_error", 0.0)
    grade, _ = await play(sample, [[("Get_Hotel_Review_Scores", {"hotel_id": 1852})], answer])
    assert outcome(grade) == (False, "func_error", 0.0)
    cross = samples["Cross-0"]
    [[hotels, attractions], answer] = golden(cross, skip_lookups=LOOKUPS)
    no_dates = (hotels[0], {k: v for k, v in hotels[1].items() if k != "arrival_date"} | {"adults": 1})
    assert format_error(no_dates[0], no_dates[1], {f["name"]: f for f in cross.metadata["functions"]})  # required
    optional_missing = (hotels[0], {k: v for k, v in hotels[1].items() if k != "sort_by"})
    grade, _ = await play(cross, [[optional_missing], answer])
    assert outcome(grade) == (False, "param_missing", 0.0)


async def test_set_and_number_equality_as_upstream(samples: dict[str, Sample]) -> None:
    cross = samples["Cross-0"]
    [[hotels, attractions], answer] = golden(cross, skip_lookups=LOOKUPS)
    reordered = (hotels[0], {**hotels[1], "categories_filter": "mealplan::1, free_wifi::1"})
    assert outcome((await play(cross, [[reordered, attractions], answer]))[0]) == (True, "success", 0.5)
    sample = samples["Hotels-0"]
    [[call]], answer = golden(sample)[:1], golden(sample)[1]
    assert outcome((await play(sample, [[(call[0], '{"hotel_id": 1852.0}')], answer]))[0]) == (True, "success", 1.0)


async def test_tool_rounds_used_up_is_no_final_answer(samples: dict[str, Sample]) -> None:
    sample = samples["Hotels-0"]
    [[call]] = golden(sample)[:1]
    grade, _ = await play(sample, [[call]], unanswered=[call])
    assert outcome(grade) == (False, "no_final_answer", 1.0)
    assert grade.details["answer_scores"]["not_measured"].startswith("not measured: no final answer")


async def test_long_observations_are_cut_and_the_cut_recorded(samples: dict[str, Sample]) -> None:
    row = next(r for r in rows() if r["id"] == "Hotels-0")
    long = {"status": True, "data": [{"type": "note", "text": "x" * 100} for _ in range(400)]}
    row["conversations"][2]["content"] = [long]
    sample = to_sample(row, "complexfuncbench")
    grade, outputs = await play(sample, golden(sample))
    size = len(json.dumps(long))
    assert size > MAX_OBSERVATION_CHARS and outputs[0].startswith(json.dumps(long)[:MAX_OBSERVATION_CHARS])
    assert outputs[0].endswith(f"[observation truncated: the first {MAX_OBSERVATION_CHARS} of {size} characters]")
    assert grade.details["calls"][0]["observation"] == {"kind": "golden", "chars": size,
                                                        "sent_chars": MAX_OBSERVATION_CHARS, "truncated": True}
    assert grade.details["observations_truncated"] == 1 and outcome(grade) == (True, "success", 1.0)


# --- the LLM stages ------------------------------------------------------------------------------------------

def judge_for(server: FakeOpenAI, tmp_path: Path) -> Judge:
    return Judge(JudgeConfig(base_url=server.base_url, api_key_env="S2S_TEST_UNSET_KEY", max_retries=0),
                 cache_dir=tmp_path / "cache")


def by_task(equivalent: Reply, completeness: Reply | None = None, correctness: Reply | None = None):  # type: ignore[no-untyped-def]
    """Recorded judge replies by question: call equivalence, answer completeness, answer correctness."""
    def reply(body: dict[str, Any]) -> Reply:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if "<function_call_1>" in user:
            return equivalent
        return (completeness or score(2)) if "<user_request>" in user else (correctness or score(2))
    return reply


def near_miss(car: Sample) -> list[Step]:
    [lookup], search, answer = golden(car)
    return [[(lookup[0], {"query": "brussels airport"})], search, answer]


async def test_a_near_miss_waits_for_the_judge(samples: dict[str, Sample], tmp_path: Path) -> None:
    car = samples["Car-Rental-0"]
    grade, outputs = await play(car, near_miss(car))
    assert outputs[0] == observation(car, 0)  # the provisional answer: the golden observation
    assert grade.correct is None and grade.score is None and grade.metrics["success"] is None
    assert grade.reason == f"not judged: the verdict depends on the LLM equivalence of call 1 (Search_Car_Location) " \
                           f"({NOT_CONFIGURED})"
    assert grade.metrics["call_accuracy"] is None and grade.details["calls"][0]["outcome"] == "pending_judge"
    assert grade.details["equivalence_judge"]["undecided_calls"] == {"1": NOT_CONFIGURED}

    async with FakeOpenAI(chat=by_task(verdict("YES", "same airport"), score(2), score(1))) as server:
        async with judge_for(server, tmp_path) as judge:
            grade, _ = await play(car, near_miss(car), judge=judge)
    assert outcome(grade) == (True, "success", 1.0)
    first = grade.details["calls"][0]
    assert (first["outcome"], first["stage"]) == ("matched", "llm_judge")
    assert grade.details["equivalence_judge"]["verdicts"]["1"]["reasoning"] == "same airport"
    assert (grade.metrics["answer_completeness"], grade.metrics["answer_correctness"]) == (2.0, 1.0)
    asked = next(r.body for r in server.requests if "<function_call_1>" in r.body["messages"][1]["content"])
    question = asked["messages"][1]["content"]
    assert '"query": "brussels airport"' in question and '"query": "Brussels Airport"' in question
    assert car.metadata["request"] in question  # the conversation so far
    assert "Search_Car_Rentals" not in question.split("<function_definition>")[1].split("</function_definition>")[0]


async def test_a_rejected_or_malformed_verdict_is_never_a_match(samples: dict[str, Sample], tmp_path: Path) -> None:
    car = samples["Car-Rental-0"]
    async with FakeOpenAI(chat=by_task(verdict("NO", "another place"))) as server:
        async with judge_for(server, tmp_path / "a") as judge:
            grade, _ = await play(car, near_miss(car), judge=judge)
    # The near miss was alone in its step: upstream stops there with its value error.
    assert outcome(grade) == (False, "value_error", 0.0)
    message = grade.details["calls"][0]["error"]["message"]
    assert message == "the judge found it not equivalent: parameter query is not the golden value"
    assert grade.details["answer_scores"]["not_measured"].startswith("not measured: the episode ended at call 1")
    async with FakeOpenAI(chat=by_task(Reply("YES, they match."))) as server:
        async with judge_for(server, tmp_path / "b") as judge:
            grade, _ = await play(car, near_miss(car), judge=judge)
    assert grade.correct is None and grade.reason.startswith("not judged: the verdict depends on the LLM equivalence")
    undecided = grade.details["equivalence_judge"]["undecided_calls"]["1"]
    assert undecided.startswith("not judged: malformed judge reply")


async def test_a_verdict_that_cannot_change_success_is_not_needed(samples: dict[str, Sample]) -> None:
    car = samples["Car-Rental-0"]
    [lookup], search, answer = near_miss(car)
    wrong_date = (search[0][0], {**search[0][1], "pick_up_date": "2024-12-21"})
    grade, _ = await play(car, [[lookup], [wrong_date], answer])  # fails whatever the judge says
    assert grade.correct is False and grade.reason == "value_error" and grade.metrics["call_accuracy"] is None


# --- whole runs through the runner ---------------------------------------------------------------------------

@pytest.fixture
def run_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path / "cache"))
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    return FIXTURE_DIR


def run_options(url: str, out: Path, **overrides: Any) -> RunOptions:
    base: dict[str, Any] = dict(model="openai-compatible", eval="complexfuncbench", url=url, out=out,
                                data_dir=FIXTURE_DIR, progress=False, concurrency=4, max_attempts=1)
    return RunOptions(**{**base, **overrides})


async def scripted_run(folder: Path, lines: list[dict[str, Any]], **overrides: Any) -> tuple[Path, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    script = write_script(folder / "script.jsonl", lines)
    with serve_process("--engine", "scripted", "--script", str(script), log=folder / "server.log") as url:
        return await execute(run_options(url, folder / "run", **overrides))


async def test_a_run_with_the_golden_calls_scores_full_success(samples: dict[str, Sample], run_env: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               no_api_key: None) -> None:
    async with FakeOpenAI(chat=by_task(verdict("NO"), score(2), score(2))) as judge:
        monkeypatch.setenv("S2S_JUDGE_BASE_URL", judge.base_url)
        monkeypatch.setenv("S2S_JUDGE_MODEL", "judge-fake")
        monkeypatch.setenv("S2S_JUDGE_API_KEY_ENV", "S2S_TEST_UNSET_KEY")
        run_dir, summary = await scripted_run(tmp_path, [golden_script(s) for s in samples.values()])
    records = {r["sample_id"]: r for r in read_records(run_dir)}
    assert set(records) == set(samples)
    for sample_id, record in records.items():
        assert record["status"] == "ok" and record["correct"] is True, (sample_id, record["grade"])
        assert record["grade"]["reason"] == "success" and record["response_text"] == samples[sample_id].target
        made = [c["name"] for r in record["responses"] for c in r["function_calls"]]
        assert len(made) == samples[sample_id].metadata["golden_calls"]
        assert all(c["stage"] in ("rule", "free_lookup") for c in record["grade"]["details"]["calls"])
    assert "Get_Hotel_Reviews-Tips-" in [c["name"] for c in records["Hotels-1"]["responses"][0]["function_calls"]]
    assert summary["accuracy"] == 1.0 and summary["grade_reasons"] == {"success": 7}
    assert {k: v["mean"] for k, v in summary["metrics"].items()} == {
        "success": 1.0, "call_accuracy": 1.0, "answer_completeness": 2.0, "answer_correctness": 2.0}
    assert judge.count("/chat/completions") == 14  # two answer scores per sample, no equivalence question
    assert json.loads((run_dir / "spec.json").read_text())["dataset"]["note"].startswith("s2s-eval's own invented")


async def test_a_run_that_skips_a_call_stops_early(samples: dict[str, Sample], run_env: Path, tmp_path: Path,
                                                   no_api_key: None) -> None:
    lines = [golden_script(s, skip=[s.metadata["golden_calls"] - 1]) for s in samples.values()]  # the last call
    run_dir, summary = await scripted_run(tmp_path, lines)
    records = {r["sample_id"]: r for r in read_records(run_dir)}
    for sample_id, record in records.items():
        grade = record["grade"]
        assert record["status"] == "ok" and record["correct"] is False and grade["reason"] == "stop_early", sample_id
        total = samples[sample_id].metadata["golden_calls"]
        assert grade["metrics"]["call_accuracy"] == pytest.approx((total - 1) / total)
        assert grade["details"]["outcome"]["message"].startswith("answered with 1 required golden call(s) not made")
        assert grade["details"]["answer_scores"]["completeness_reason"] == NOT_CONFIGURED
    assert summary["accuracy"] == 0.0 and summary["grade_reasons"] == {"stop_early": 7}
    assert summary["metrics"]["success"] == {"mean": 0.0, "n": 7, "ci": {  # a pass rate: Wilson, as accuracy
        "estimate": 0.0, "low": 0.0, "high": pytest.approx(0.35433, abs=1e-6), "method": "Wilson score"}}
    assert "answer_completeness" not in summary["metrics"]  # not measured without a judge: no figure


async def test_the_local_profile_runs_offline_and_says_why_it_fails(run_env: Path, tmp_path: Path) -> None:
    run_dir, summary = await execute(RunOptions(model="local", eval="complexfuncbench", limit=5, out=tmp_path / "run",
                                                data_dir=FIXTURE_DIR, progress=False, max_attempts=1))
    records = list(read_records(run_dir))
    assert len(records) == 5 and {r["category"] for r in records} == set(CATEGORIES)
    for record in records:  # the echo engine makes no calls and has no transcript
        assert record["status"] == "ok" and record["correct"] is False and record["grade"]["reason"] == "stop_early"
        assert record["grade"]["details"]["outcome"]["message"].startswith("answered (an empty transcript) with")
    assert summary["grade_reasons"] == {"stop_early": 5}
    dataset = json.loads((run_dir / "spec.json").read_text())["dataset"]
    assert dataset["location"] == str(FIXTURE.resolve()) and "not the benchmark's data" in dataset["note"]


def test_the_eval_registers_adapter_and_grader(spec) -> None:  # type: ignore[no-untyped-def]
    from s2s_eval.datasets import ADAPTERS

    assert ADAPTERS["complexfuncbench"] is complexfuncbench.load_samples
    assert spec.max_tool_rounds == 16 and spec.instructions and spec.tts.engine == "espeak-ng"
    assert isinstance(get_grader("complexfuncbench").episode(next(iter(load_samples(spec, FIXTURE_DIR)[0]))),
                      CallEpisode)
    assert inspect.iscoroutinefunction(get_grader("complexfuncbench").grade)
