"""The Big Bench Audio grader on realistic spoken answers: negations, spoken numbers, corrections, hedges, refusals,
the asked person in a web of lies, navigate answers without yes/no, and the 1,000 real questions."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from s2s_eval.datasets.sample import Sample
from s2s_eval.errors import DataError
from s2s_eval.graders.big_bench_audio import extract_answer, grade
from s2s_eval.speech.tts import spoken_form

# Real questions (the first example of each Big-Bench-Hard task), as the adapter speaks them.
QUESTIONS = {
    "formal_fallacies": spoken_form(
        '"Here comes a perfectly valid argument: First of all, whoever is a schoolmate of Sondra is not a stepsister '
        'of Pricilla. In consequence, whoever is not a stepsister of Pricilla is a schoolmate of Sondra."\n'
        "Is the argument, given the explicitly stated premises, deductively valid or invalid?\nOptions:\n- valid \n"
        "- invalid"),
    "navigate": spoken_form(
        "If you follow these instructions, do you return to the starting point? Always face forward. Take 1 step "
        "backward. Take 9 steps left. Take 2 steps backward. Take 6 steps forward. Take 4 steps forward. Take 4 "
        "steps backward. Take 3 steps right.\nOptions:\n- Yes\n- No"),
    "web_of_lies": spoken_form(
        "Question: Sherrie tells the truth. Vernell says Sherrie tells the truth. Alexis says Vernell lies. Michaela "
        "says Alexis tells the truth. Elanor says Michaela tells the truth. Does Elanor tell the truth?"),
    "object_counting": spoken_form(
        "I have a flute, a piano, a trombone, four stoves, a violin, an accordion, a clarinet, a drum, two lamps, "
        "and a trumpet. How many musical instruments do I have?"),
}
REASONS = {"match", "mismatch", "empty", "refused", "hedged", "unparsed"}
NOT_ANSWERS = {"empty", "refused", "hedged", "unparsed"}


class TargetlessSample(Sample):
    """A sample whose target cannot be read: extraction that peeks at the gold answer fails loudly."""

    def __getattribute__(self, name: str):
        if name == "target":
            raise AssertionError("extract_answer read sample.target")
        return super().__getattribute__(name)

    def __repr__(self) -> str:
        return f"TargetlessSample({self.category})"


def targetless(category: str, question: str | None = None) -> Sample:
    return TargetlessSample(sample_id=f"{category}_t", eval="big_bench_audio", category=category,
                            prompt_text=question or QUESTIONS[category], target="unused")


def sample(category: str, target: str, question: str | None = None) -> Sample:
    return Sample(sample_id=f"{category}_0", eval="big_bench_audio", category=category,
                  prompt_text=question or QUESTIONS[category], target=target)


def check(category: str, transcript: str | None, expected: str, question: str | None = None) -> None:
    """`expected` is the normalised answer, or the reason when no answer should be read."""
    answer, reason = extract_answer(targetless(category, question), transcript)
    if expected in NOT_ANSWERS:
        assert (answer, reason) == (None, expected)
    else:
        assert (answer, reason) == (expected, "answered")


FORMAL_FALLACIES = [
    ("The argument is invalid.", "invalid"),
    ("It's not valid.", "invalid"),
    ("It isn't deductively valid.", "invalid"),
    ("This is not a valid argument.", "invalid"),
    ("This is NOT a valid argument!", "invalid"),
    ("The conclusion doesn't follow, so it's invalid.", "invalid"),
    ("The conclusion doesn't follow from the premises.", "invalid"),
    ("The conclusion necessarily follows from the premises.", "valid"),
    ("It is valid.", "valid"),
    ("It's not invalid.", "valid"),
    ("Invalid.", "invalid"),
    ("valid", "valid"),
    ("Deductively valid.", "valid"),
    ("Invalid, because the conclusion reverses the conditional.", "invalid"),
    ("I'd say invalid.", "invalid"),
    ("My answer: valid.", "valid"),
    ("Final answer, invalid", "invalid"),
    ("Nope, it's not valid", "invalid"),
    ("I don't think it's valid.", "invalid"),
    ("It is not the case that the argument is valid.", "invalid"),
    ("It never holds, so the argument is never valid.", "invalid"),
    ("It's, um, not, uh, valid.", "invalid"),
    ("The argument commits the fallacy of affirming the consequent.", "invalid"),
    ("It's a perfectly valid argument.", "valid"),
    ("This argument is deductively valid, given the premises.", "valid"),
    ("It's valid, because the second premise allows no exceptions and the conclusion isn't invalid in any case.",
     "valid"),
    # The question calls the argument "perfectly valid"; quoting it is not an answer.
    ("The speaker says it's a perfectly valid argument, but it's actually invalid.", "invalid"),
    ("Well, the passage calls it a perfectly valid argument. But the conclusion just reverses the premise, which "
     "is a fallacy. So, no, it's not deductively valid.", "invalid"),
    ("Let's break it down. The premise says whoever is a schoolmate of Sondra is not a stepsister of Pricilla. The "
     "conclusion reverses that, which isn't a valid inference. So the argument is invalid.", "invalid"),
    ("Let's see. An argument is valid if the conclusion follows necessarily from the premises. Here, it does, so "
     "the argument is valid.", "valid"),
    ("For the argument to be valid, the conclusion would have to follow necessarily. It does, so yes, valid.",
     "valid"),
    ("Is the argument valid? No, it's invalid.", "invalid"),
    ("You asked whether the argument is valid or invalid. The answer is invalid.", "invalid"),
    ("The answer is invalid. The argument may look valid at first, but it confuses sufficient and necessary "
     "conditions.", "invalid"),
    ("The argument is valid. Wait, no, actually it's invalid.", "invalid"),
    ("Maybe valid or maybe invalid. Let me reason it through. The conclusion does not follow, so it's invalid.",
     "invalid"),
    ("It could be valid or invalid, it's hard to say.", "hedged"),
    ("It might be valid or it might be invalid.", "hedged"),
    ("Neither valid nor invalid.", "hedged"),
    ("The answer is invalid. Though honestly, it could be valid or invalid depending on the second premise.",
     "hedged"),
    ("I'm sorry, I can't determine whether the argument is valid or invalid.", "refused"),
    ("Valid arguments preserve truth from premises to conclusion.", "unparsed"),
    ("The question asks if the argument is valid.", "unparsed"),
    ("Answer: invalid", "invalid"),
    ("The correct option is invalid.", "invalid"),
    ("The argument is deductively valid \u2014 the conclusion follows necessarily.", "valid"),
    ("This argument isn\u2019t valid. It\u2019s invalid.", "invalid"),
    ("Options: valid, invalid. I pick valid.", "valid"),
    ("Valid, maybe not.", "hedged"),
    ("Let's analyze this. The premise states: whoever is a schoolmate of Sondra is not a stepsister of Pricilla. "
     "The conclusion claims: whoever is not a stepsister of Pricilla is a schoolmate of Sondra. This is the converse, "
     "and it doesn't follow logically. So, the argument is deductively invalid.", "invalid"),
    ("No.", "unparsed"),  # "no" does not pick between valid and invalid
]

NAVIGATE = [
    ("Yes.", "yes"),
    ("Yeah, you do.", "yes"),
    ("No, you don't.", "no"),
    ("Nope.", "no"),
    ("The answer is no.", "no"),
    ("The answer is No", "no"),
    ("You end up back where you started.", "yes"),
    ("You return to the starting point.", "yes"),
    ("You do return to the starting point.", "yes"),
    ("You're right back where you began.", "yes"),
    ("You wind up exactly where you began.", "yes"),
    ("You end up in the same place you started.", "yes"),
    ("You're back to square one.", "yes"),
    ("Your final position is (0, 0), which is the starting point.", "yes"),
    ("The backward and forward steps cancel out and so do the left and right ones, so there's no net "
     "displacement.", "yes"),
    ("The net displacement is zero, so yes.", "yes"),
    ("You return to the starting point if you follow these instructions.", "yes"),
    ("Do you return to the starting point? Yes, you do.", "yes"),
    ("You don't return to the start.", "no"),
    ("You never return to the starting point.", "no"),
    ("You won't get back to where you started.", "no"),
    ("You fail to return to the starting point.", "no"),
    ("You would not be back at the starting point.", "no"),
    ("So, no, you would not be back at the starting point.", "no"),
    ("You end up 3 steps to the left of where you began.", "no"),
    ("You'd be two steps away from the starting point.", "no"),
    ("No way, you end up far from the start.", "no"),
    ("The net displacement isn't zero.", "no"),
    ("Not quite. You end up one step off.", "no"),
    ("If you follow these instructions, you do not return to the starting point.", "no"),
    ("Let's track it. You start at the origin. One step back puts you at minus one. Nine steps left. You end up 1 "
     "step behind and 9 steps to the left.", "no"),
    # An intermediate "back at the start" does not beat the final position.
    ("After ten steps left and ten steps right you're back at the starting point. Then you take three steps "
     "forward, and you end up three steps forward.", "no"),
    ("Adding up: forward ten, backward ten, net zero. Left three, right three, net zero. So you're back at the "
     "start.", "yes"),
    ("Always face forward. Take 1 step backward: you're at minus 1. Final position: 3 steps right and 4 forward, "
     "not the starting point. So no.", "no"),
    ("The options are yes or no. The answer is yes.", "yes"),
    ("Options: Yes, No. The answer is yes.", "yes"),
    ("No, maybe not.", "no"),  # tentative, but one answer
    ("Let's track your position. Starting at (0,0) facing forward. 1 step backward: (0,-1). 9 steps left: (-9,-1). "
     "Final position: (-6,-1). Since that's not (0,0), you do not return to the starting point. The answer is No.",
     "no"),
    ("Starting at the origin, you end at (0, 0), which is the origin. So yes.", "yes"),
    ("You end up 6 steps to the left and 1 step back from where you started.", "no"),
    ("Either yes or no, depending on interpretation.", "hedged"),
    ("Yes and no.", "hedged"),
    ("I can't tell if you return to the starting point.", "refused"),
    ("Take 1 step backward, then 9 steps left, then 2 steps backward.", "unparsed"),
]

WEB_OF_LIES = [
    ("Elanor tells the truth.", "yes"),
    ("Elanor lies.", "no"),
    ("Yes, she does.", "yes"),
    ("No, Elanor does not tell the truth.", "no"),
    ("Elanor's lying.", "no"),
    ("Elanor is a truth-teller.", "yes"),
    ("Elanor does not lie.", "yes"),
    ("Elanor never tells the truth.", "no"),
    ("Elanor is not a liar.", "yes"),
    ("Eleanor is telling the truth.", "yes"),  # the model spells the name as it heard it
    ("The answer is: Elanor lies.", "no"),
    ("So Elanor is telling the truth. The answer is yes.", "yes"),
    ("Elanor tells the truth? No.", "no"),
    ("Elanor, who says Michaela tells the truth, is lying.", "no"),
    ("Sherrie tells the truth, so Vernell tells the truth, so Alexis lies, so Michaela lies, so Elanor lies.", "no"),
    ("Sherrie tells the truth. Vernell says Sherrie tells the truth, so Vernell is truthful. Alexis says Vernell "
     "lies, so Alexis is lying. Michaela says Alexis tells the truth, so Michaela is a liar. Elanor says Michaela "
     "tells the truth, so Elanor is lying too.", "no"),
    ("Sherrie is honest. Vernell is honest. Alexis is dishonest. Michaela is dishonest. Elanor is dishonest.", "no"),
    ("Sherrie lies... wait, no, Sherrie tells the truth. So Vernell tells the truth, Alexis lies, Michaela lies and "
     "Elanor lies.", "no"),
    # Everyone else lies but the asked person tells the truth, and the other way round.
    ("Alexis lies, Michaela lies, Vernell lies, Sherrie lies, but Elanor tells the truth.", "yes"),
    ("Sherrie tells the truth, Vernell tells the truth, Alexis tells the truth, Michaela tells the truth, and "
     "Elanor lies.", "no"),
    ("Alexis says Vernell lies. Vernell doesn't lie, so Alexis is lying. Elanor is not a liar.", "yes"),
    ("Michaela lies, and Elanor says Michaela tells the truth, therefore Elanor lies.", "no"),
    ("Let's go step by step. Sherrie tells the truth. Vernell says Sherrie tells the truth, so Vernell is telling the "
     "truth. Alexis says Vernell lies, but Vernell is truthful, so Alexis is lying. Michaela says Alexis tells the "
     "truth, but Alexis lies, so Michaela is lying. Elanor says Michaela tells the truth, but Michaela lies, so "
     "Elanor is lying. So no, Elanor does not tell the truth.", "no"),
    ("Alexis says Elanor lies.", "unparsed"),  # reported speech, not a verdict
    ("If Elanor tells the truth, then Michaela tells the truth.", "unparsed"),
    ("Does Elanor tell the truth? She does not.", "unparsed"),
    ("Michaela tells the truth.", "unparsed"),  # about someone else
    ("Elanor may or may not tell the truth.", "hedged"),
    ("Elanor either tells the truth or lies.", "hedged"),
    ("I don't know.", "refused"),
]

OBJECT_COUNTING = [
    ("You have 8 musical instruments.", "8"),
    ("eight", "8"),
    ("Eight.", "8"),
    ("You have twenty-one instruments.", "21"),
    ("There are twenty one.", "21"),
    ("You have ninety-nine instruments.", "99"),
    ("You have a hundred instruments.", "100"),
    ("You have a dozen.", "12"),
    ("A total of eight.", "8"),
    ("That's eleven musical instruments altogether.", "11"),
    ("You've got thirteen.", "13"),
    ("The total comes to 14.", "14"),
    ("You have 8 of them.", "8"),
    ("The number of musical instruments is eight.", "8"),
    ("1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 = 8", "8"),
    # Corrections: the final stated count wins.
    ("I first counted five, but actually it's seven.", "7"),
    ("seven... no wait, eight", "8"),
    ("It's eight. Hmm, actually, nine.", "9"),
    ("The answer is 8, not 7.", "8"),
    ("Eight instruments, not ten.", "8"),
    # Itemised reasoning and numbers from the question after the answer.
    ("You have 8 instruments: a flute, a piano, two drums, and a trumpet.", "8"),
    ("You have eight musical instruments in total: one flute, one piano, one trombone.", "8"),
    ("You have 8 musical instruments. The 4 stoves and 2 lamps are not instruments.", "8"),
    ("Eight. Let me explain: the four stoves and two lamps are not musical instruments.", "8"),
    ("You have eight instruments, one of which is a trumpet.", "8"),
    ("You have 8. The question lists 10 items.", "8"),
    ("I count ten items, but two of them are lamps, so eight are instruments.", "8"),
    ("There are 10 items in the list, of which 8 are musical instruments.", "8"),
    ("There are 8 instruments and 2 other kinds of objects.", "8"),
    ("You have a flute, a piano, a trombone, four stoves, a violin, an accordion, a clarinet, a drum, two lamps, "
     "and a trumpet. Of those, eight are musical instruments.", "8"),
    ("Let me count. Flute, piano, trombone: that's 3. Violin, accordion, clarinet: that's 6. Drum and trumpet: "
     "that's 8. The stoves and lamps don't count. So, 8 instruments.", "8"),
    ("Let's count: the flute is one, the piano two, the trombone three, the violin four, the accordion five, the "
     "clarinet six, the drum seven, and the trumpet eight. The four stoves and two lamps aren't instruments. So "
     "you have eight.", "8"),
    ("The stoves are 4 and the lamps are 2, neither are instruments, so the instruments come to 8.", "8"),
    ("one, two, three, four, five, six, seven, eight", "8"),
    ("Let's count the musical instruments: flute (1), piano (2), trombone (3), violin (4), accordion (5), clarinet "
     "(6), drum (7), trumpet (8). So you have 8 musical instruments.", "8"),
    ("8 in all.", "8"),
    ("How many musical instruments do you have? Eight.", "8"),
    ("Maybe 5 or 6.", "hedged"),
    ("seven, maybe eight", "hedged"),
    ("Between seven and eight.", "hedged"),
    ("You have seven or eight instruments, I'm not sure.", "hedged"),
    ("Counting them gives you eight or 8 instruments.", "8"),  # the same number twice is no hedge
    ("I'm not sure how many instruments you have.", "refused"),
    # Numbers that count something else are no answer.
    ("You have four stoves and two lamps, which are not instruments.", "unparsed"),
    ("Give me 1 second.", "unparsed"),
    ("Step 1: identify the instruments.", "unparsed"),
    ("You have a flute, a piano, a trombone, a violin, an accordion, a clarinet, a drum, and a trumpet.",
     "unparsed"),
]

NO_ANSWER = [
    (None, "empty"),
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("Um... well...", "empty"),
    ("Uh, hmm.", "empty"),
    ("I can't help with that.", "refused"),
    ("I'm sorry, I cannot answer that.", "refused"),
    ("I don't know.", "refused"),
    ("Let me think about this carefully.", "unparsed"),
]


@pytest.mark.parametrize(("transcript", "expected"), FORMAL_FALLACIES)
def test_formal_fallacies(transcript: str, expected: str) -> None:
    check("formal_fallacies", transcript, expected)


@pytest.mark.parametrize(("transcript", "expected"), NAVIGATE)
def test_navigate(transcript: str, expected: str) -> None:
    check("navigate", transcript, expected)


@pytest.mark.parametrize(("transcript", "expected"), WEB_OF_LIES)
def test_web_of_lies(transcript: str, expected: str) -> None:
    check("web_of_lies", transcript, expected)


@pytest.mark.parametrize(("transcript", "expected"), OBJECT_COUNTING)
def test_object_counting(transcript: str, expected: str) -> None:
    check("object_counting", transcript, expected)


@pytest.mark.parametrize("category", sorted(QUESTIONS))
@pytest.mark.parametrize(("transcript", "expected"), NO_ANSWER)
def test_no_answer_in_every_category(category: str, transcript: str | None, expected: str) -> None:
    check(category, transcript, expected)


UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int, joiner: str) -> str:
    if n < 20:
        return UNITS[n]
    tens, unit = TENS[n // 10 - 2], n % 10
    return tens if unit == 0 else f"{tens}{joiner}{UNITS[unit]}"


@pytest.mark.parametrize("joiner", ["-", " "])
def test_spoken_numbers_up_to_99(joiner: str) -> None:
    for n in range(100):
        for transcript in (f"You have {spell(n, joiner)} musical instruments.", f"The answer is {spell(n, joiner)}.",
                           f"{spell(n, joiner).capitalize()}.", f"So that's {n} instruments."):
            assert extract_answer(targetless("object_counting"), transcript) == (str(n), "answered"), transcript


def test_web_of_lies_asks_about_the_right_person_among_similar_names() -> None:
    question = ("Question: Michael lies. Michaela says Michael lies. Jim says Michaela lies. Ka says Jim tells the "
                "truth. Sal says Ka lies. Does Michaela tell the truth?")
    check("web_of_lies", "Michael lies, so Michaela tells the truth.", "yes", question)
    check("web_of_lies", "Michaela tells the truth, so Michael lies.", "yes", question)
    check("web_of_lies", "Michael tells the truth, so Michaela lies.", "no", question)
    check("web_of_lies", "Michael lies.", "unparsed", question)


def test_web_of_lies_resolves_misheard_names() -> None:
    question = ("Question: Kristian lies. Sherrie says Kristian lies. Delbert says Sherrie lies. Jerry says Delbert "
                "tells the truth. Shalonda says Jerry tells the truth. Does Shalonda tell the truth?")
    check("web_of_lies", "Christian lies, so Sherry tells the truth, Delbert lies, Jerry lies, and Shalonda lies.",
          "no", question)
    check("web_of_lies", "Kristian lies, Sherrie tells the truth, Delbert lies, Jerry lies, and Chalonda lies.",
          "no", question)
    check("web_of_lies", "Sherry tells the truth.", "unparsed", question)


def test_counting_uses_the_noun_of_the_question() -> None:
    fruits = "I have an apple, three bananas, a strawberry, a peach, and two grapes. How many fruits do I have?"
    check("object_counting", "You have 8 fruits, since three bananas and two grapes count separately.", "8", fruits)
    check("object_counting", "You have 8 fruit.", "8", fruits)
    check("object_counting", "There are three bananas.", "unparsed", fruits)
    vegetables = ("I have a cabbage, two heads of broccoli, a stalk of celery, a potato, and three carrots. How many "
                  "vegetables do I have?")
    check("object_counting", "You have 8 vegetables: a cabbage, two heads of broccoli, a stalk of celery, a potato, "
          "and three carrots.", "8", vegetables)
    check("object_counting", "Cabbage is one, broccoli makes three, celery four, potato five, carrots make eight. "
          "Eight vegetables.", "8", vegetables)


@pytest.mark.parametrize(("category", "transcript", "expected"), [
    ("formal_fallacies", "It isn't not valid.", "valid"),  # two negators cancel: it is valid
    ("formal_fallacies", "It is not not valid.", "valid"),
    ("formal_fallacies", "It isn't valid.", "invalid"),  # one negator: the control
    ("navigate", "You don't fail to return to the starting point.", "yes"),  # you do return
    ("navigate", "You fail to return to the starting point.", "no"),
    ("navigate", "You don't return to the starting point.", "no"),
])
def test_a_double_negation_cancels_and_a_single_one_negates(category: str, transcript: str, expected: str) -> None:
    check(category, transcript, expected)
    target = expected.capitalize() if category == "navigate" else expected  # the dataset's "Yes" / "No"
    assert grade(sample(category, target), transcript).reason == "match"


def test_extraction_ignores_the_target() -> None:
    """Same transcript, different gold answers: the same extraction, and only the grade differs."""
    with pytest.raises(AssertionError, match="read sample.target"):
        _ = targetless("navigate").target  # the guard every extraction test relies on
    for category, transcript, targets in [
        ("formal_fallacies", "It's not valid.", ("invalid", "valid")),
        ("navigate", "You end up two steps to the left of where you began.", ("No", "Yes")),
        ("web_of_lies", "Alexis lies, so Michaela lies, so Elanor lies.", ("No", "Yes")),
        ("object_counting", "You have eight musical instruments.", ("8", "9")),
    ]:
        right, wrong = (sample(category, t) for t in targets)
        assert extract_answer(right, transcript) == extract_answer(wrong, transcript)
        assert extract_answer(right, transcript) == extract_answer(targetless(category), transcript)
        assert grade(right, transcript).reason == "match"
        assert grade(wrong, transcript).reason == "mismatch"


@pytest.mark.parametrize(("category", "target", "transcript", "reason", "extracted"), [
    ("formal_fallacies", "invalid", "The argument is invalid.", "match", "invalid"),
    ("formal_fallacies", "valid", "The argument is invalid.", "mismatch", "invalid"),
    ("navigate", "Yes", "You end up back where you started.", "match", "yes"),
    ("navigate", "No", "Yes.", "mismatch", "yes"),
    ("web_of_lies", "No", "Elanor lies.", "match", "no"),
    ("object_counting", "8", "You have eight instruments.", "match", "8"),
    ("object_counting", "08", "You have 8 instruments.", "match", "8"),
    ("object_counting", "7", "You have eight instruments.", "mismatch", "8"),
    ("object_counting", "8", "   ", "empty", None),
    ("object_counting", "8", "Maybe 8 or 9.", "hedged", None),
    ("navigate", "Yes", "I can't help with that.", "refused", None),
    ("web_of_lies", "Yes", "Let me think.", "unparsed", None),
])
def test_grade(category: str, target: str, transcript: str, reason: str, extracted: str | None) -> None:
    result = grade(sample(category, target), transcript)
    assert result.reason in REASONS
    assert (result.reason, result.extracted) == (reason, extracted)
    assert result.correct is (reason == "match")
    assert result.score == (1.0 if reason == "match" else 0.0)


def test_unknown_category_and_malformed_target_are_data_errors() -> None:
    with pytest.raises(DataError, match="not a Big Bench Audio task"):
        extract_answer(sample("date_understanding", "Yes", "Today is 9/7. What is the date?"), "Yes.")
    with pytest.raises(DataError, match="not a navigate answer"):
        grade(sample("navigate", "(A)"), "Yes.")
    for target in ("eight", "Yes"):
        with pytest.raises(DataError, match="not a object_counting answer"):
            grade(sample("object_counting", target), "Eight.")


# --- the 1,000 real questions --------------------------------------------------------------------------------

DATA_DIR = Path(os.environ.get("S2S_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared/datasets")
TASKS = ("formal_fallacies", "navigate", "object_counting", "web_of_lies")


def real_samples(task: str) -> list[Sample]:
    path = DATA_DIR / "big_bench_hard" / f"{task}.json"
    if not path.exists():
        pytest.skip(f"{path} not found (set S2S_DATA_DIR to a folder with big_bench_hard/)")
    rows = json.loads(path.read_text(encoding="utf-8"))["examples"]
    return [Sample(sample_id=f"{task}_{i}", eval="big_bench_audio", category=task,
                   prompt_text=spoken_form(row["input"]), target=row["target"], metadata={"question": row["input"]})
            for i, row in enumerate(rows)]


def natural_answer(s: Sample, target: str) -> str:
    """The target said the way a model would say it."""
    if s.category == "formal_fallacies":
        return f"So the argument is {target}."
    if s.category == "navigate":
        return "So yes, you end up back where you started." if target == "Yes" else "No, you don't return to the start."
    if s.category == "web_of_lies":
        person = re.findall(r"Does (\w+) tell the truth", s.prompt_text)[-1]
        return f"So {person} {'tells the truth' if target == 'Yes' else 'lies'}."
    noun = re.search(r"How many (.+?) do I have", s.prompt_text).group(1)
    return f"You have {spell(int(target), '-')} {noun}."


def opposite(s: Sample) -> str:
    flip = {"valid": "invalid", "invalid": "valid", "Yes": "No", "No": "Yes"}
    return flip.get(s.target) or str(int(s.target) + 1)


@pytest.mark.parametrize("task", TASKS)
def test_real_questions_clean_answers(task: str) -> None:
    """Every real question: the natural answer matches, the opposite mismatches, and the question echoed before or
    after the answer changes nothing (its numbers, names and "perfectly valid" are no answer)."""
    samples = real_samples(task)
    assert len(samples) == 250
    for s in samples:
        right = natural_answer(s, s.target)
        assert grade(s, right).reason == "match", (s.sample_id, right)
        assert grade(s, natural_answer(s, opposite(s))).reason == "mismatch", s.sample_id
        assert grade(s, f"{s.prompt_text} {right}").reason == "match", s.sample_id
        assert grade(s, f"{right} You asked: {s.prompt_text}").reason == "match", s.sample_id
        assert extract_answer(s, s.prompt_text) == (None, "unparsed"), s.sample_id
