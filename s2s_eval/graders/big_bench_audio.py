"""Rule-based grader for Big Bench Audio: reads the final answer out of a spoken-answer transcript.

The four Big-Bench-Hard tasks are answered in free conversational English, usually with the reasoning first. Each
category finds candidate *mentions* of an answer (a value at a position in the text). Context rules drop mentions
that are not claims: questions, conditionals ("if it is valid"), reported speech ("Alexis says Vernell lies"),
negated counts ("not seven") and items repeated from the question ("four stoves"). The last mention of the
strongest tier wins: tier 2 is an explicit answer phrase ("the answer is", "actually", "you have N <noun>"),
tier 1 a plain statement, tier 0 (counts only) a number that is merely not ruled out. Offering several answers
after the chosen one, or with none chosen, is `hedged`. Nothing here reads `sample.target`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from difflib import SequenceMatcher
from typing import NamedTuple

from s2s_eval.datasets.sample import Sample
from s2s_eval.errors import DataError
from s2s_eval.graders.base import Grade

__all__ = ["extract_answer", "grade", "grade_extracted", "normalise_answer"]


class _Mention(NamedTuple):
    pos: int  # where the claim's value (or WoL predicate) starts; its context is the text before it
    value: str
    tier: int


class _Hedge(NamedTuple):
    start: int
    end: int
    restated: bool  # "whether it's valid or invalid" repeats the question; it shields mentions but is no hedge


# --- text plumbing -------------------------------------------------------------------------------------------

# Spoken fillers go, with a comma before them, so "It's not, um, valid" keeps its negation in one clause.
_FILLER_RE = re.compile(r",?\s*\b(?:u+h+m*|u+m+|e+r+m*|h+m+|m+h?m+|a+h+)\b[,.]*")
_EMPTY_RE = re.compile(r"(?:\b(?:well|so|okay|ok|oh|like|you know|let's see|let me see|alright)\b|[\W_])*")
_SENTENCE_END = re.compile(r"[.!?\n]")
# Clause breaks reset negation and context: "it doesn't follow, so it's invalid" is not "not invalid".
_BREAK_RE = re.compile(r"[,;:.!?()\[\]\"]|\b(?:and|but|so|because|since|therefore|thus|hence|which|then|while"
                       r"|whereas|although|though|yet|or|plus|meaning|however)\b")
_NEGATOR_RE = re.compile(r"\b(?:not|never|neither|nor|cannot|fails? to|failed to)\b|n't\b")
_AUX = r"(?:do|does|did|is|are|was|were|am|can|could|will|would|should|shall|has|have|had)"
_QUESTION_RE = re.compile(rf"^\W*(?:(?:so|and|but|now|then|okay|ok|well|also)[\s,]+)*"
                          rf"(?:{_AUX}|how|what|which|who|why)\b")
# "is the argument valid", "does Elanor": an auxiliary before a subject (not "and is a valid one").
_INVERTED_RE = re.compile(rf"^{_AUX}\s+(?!(?:not|never|be|been|also|always|a|an|indeed|actually|really|clearly"
                          r"|certainly|definitely|deductively|logically)\b)\w")
_CONDITIONAL_RE = re.compile(r"\b(?:if|whether|unless|suppose|supposing|assuming|assume|provided|in case"
                             r"|in order to be|for (?:\w+\s+){1,3}to)\b")
# "valid only if ..." defines validity; "... if you follow these instructions" just repeats the question's premise.
_TRAILING_IF_RE = re.compile(r"^\s*,?\s*(?:but\s+)?(?:only\s+)?(?:if|when|unless|provided|iff)\b"
                             r"(?!\s+you (?:follow|take))")
_REPORTED_RE = re.compile(r"\b(?:says|said|claims|claimed|calls|called|states|stated|asserts|asserted|presents?"
                          r"|presented|described|labell?ed|introduced|supposedly|allegedly|purportedly"
                          r"|so-called|argues|argued|thinks|believes)\b")
_APPEARANCE_RE = re.compile(r"\b(?:at first|initially|on the surface|superficially|seemingly"
                            r"|(?:may|might|could) (?:seem|look|appear))\b")
_MARKER_RE = re.compile(r"\b(?:answer|in conclusion|to conclude|in summary|to summari[sz]e|to sum up|overall"
                        r"|ultimately|in the end|bottom line|verdict|i'd say|i would say|i'll say|i'd go with"
                        r"|i'll go with|i will go with|i'm going with|actually|wait|correction|on second thought"
                        r"|i mean|scratch that|i stand corrected|recount(?:ing|ed)?)\b")
_HEDGE_PHRASE_RE = re.compile(r"\b(?:either way|could be either|can't decide|cannot decide|can't choose|cannot choose"
                              r"|(?:hard|difficult|impossible) to (?:say|tell)|may or may not|might or might not"
                              r"|it depends|both are possible|could be both|not sure which|yes and no)\b")
_REFUSAL_RE = re.compile(r"\b(?:(?:i\s+(?:can't|cannot|can not|won't|will not|am not able to|am unable to)"
                         r"|i'm\s+(?:not able to|unable to)|unable to)\s+(?:\w+\s+){0,2}?(?:help|answer|assist"
                         r"|do that|provide|respond|determine|tell|say|solve|figure|comply)"
                         r"|i (?:don't|do not) know|no idea|not sure|i'm not certain|i'd rather not|i prefer not)\b")


def _normalise(text: str) -> str:
    text = text.lower().translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                                                 "*": " ", "\u2014": ", ", "\u2013": ", "}))
    return re.sub(r"\s+", " ", _FILLER_RE.sub(" ", text)).strip()


def _sentence(text: str, pos: int) -> tuple[int, int]:
    start = max(text.rfind(c, 0, pos) for c in ".!?\n") + 1
    end = _SENTENCE_END.search(text, pos)
    return start, end.end() if end else len(text)


def _window(text: str, pos: int) -> str:
    """The clause before `pos`: from the last clause break in the sentence up to `pos`."""
    start = max(_sentence(text, pos)[0], pos - 300)  # bounded, so long run-on transcripts stay linear
    for brk in _BREAK_RE.finditer(text, start, pos):
        start = brk.end()
    return text[start:pos].strip()


def _negated(window: str) -> bool:
    # Parity, as in logic: "not invalid" is valid, and two negators cancel ("isn't not valid" is valid, "you don't
    # fail to return" returns).
    return len(_NEGATOR_RE.findall(window)) % 2 == 1


def _is_claim(text: str, pos: int, end: int) -> bool:
    """False for a mention that is asked, supposed, reported or only apparent rather than claimed."""
    window = _window(text, pos)
    s_start, s_end = _sentence(text, pos)
    sentence = text[s_start:s_end].strip()
    if sentence.endswith("?") and _QUESTION_RE.match(sentence):
        return False
    if _INVERTED_RE.match(window) or _CONDITIONAL_RE.search(window) or _TRAILING_IF_RE.match(text[end:]):
        return False
    return not (_REPORTED_RE.search(window) or _APPEARANCE_RE.search(window))


def _polarity(option: str) -> bool:
    """True for the negative side of an option ("invalid", "not valid", "no", "lies"); "not" flips what follows."""
    words = option.split()
    negative = option == "not" or words[-1] in ("invalid", "no", "nope", "lie", "lies", "lying", "liar")
    return negative != (len(words) > 1 and words[0] == "not")


def _hedges(text: str, option: str, key: Callable[[str], object] = _polarity) -> list[_Hedge]:
    """Spans offering two different options ("valid or invalid", "five or maybe six") and refusals to pick."""
    pair = re.compile(rf"\b(?:either\s+|both\s+|neither\s+|between\s+)?({option})\s*,?\s*(?:or|and/or|nor|and"
                      rf"|maybe|perhaps|possibly)\s+(?:(?:maybe|perhaps|possibly|it's|it is|(?:it\s+)?(?:might|may"
                      rf"|could)\s+be)\s+)?({option})\b")
    listed = re.compile(rf"\b(?:options?|choices?)\s*(?:are|were|:)?\s*(?:{option})\W+(?:or\s+|and\s+)?"
                        rf"(?:{option})\b")
    spans = [_Hedge(m.start(), m.end(), True) for m in listed.finditer(text)]  # "Options: yes, no" echoed
    for m in pair.finditer(text):
        joined_by_and = re.search(r"\band\b", text[m.end(1):m.start(2)]) is not None
        if joined_by_and and not re.match(r"both|between", m.group(0)):
            continue  # "2 and 3 make 5" lists; only "both X and Y" / "between X and Y" offer both
        if key(m.group(1)) != key(m.group(2)):  # "eight or 8" and "no, maybe not" offer one answer
            s_start, s_end = _sentence(text, m.start())
            restated = (not _is_claim(text, m.start(), m.end())
                        or re.search(r"\b(?:options?|choices?|question|asked|asks|asking)\b", text[s_start:s_end]))
            spans.append(_Hedge(m.start(), m.end(), bool(restated)))
    spans += [_Hedge(m.start(), m.end(), False) for m in _HEDGE_PHRASE_RE.finditer(text)]
    return spans


def _bind_markers(text: str, mentions: list[_Mention]) -> list[_Mention]:
    """An answer marker ("the answer is", "actually") lifts the next mention in its sentence to tier 2."""
    ordered = sorted(mentions, key=lambda m: m.pos)
    starts = [m.pos for m in ordered]
    for marker in _MARKER_RE.finditer(text):
        i = bisect_left(starts, marker.end())
        if i < len(ordered) and not _SENTENCE_END.search(text, marker.end(), ordered[i].pos):
            ordered[i] = ordered[i]._replace(tier=2)
    return ordered


def _decide(text: str, mentions: list[_Mention], hedges: list[_Hedge]) -> tuple[str | None, str]:
    """The last mention of the strongest tier, unless a hedge follows it; else why there is no answer."""
    kept = [m for m in mentions if not any(h.start <= m.pos < h.end for h in hedges)]
    kept = _bind_markers(text, kept)
    best = max(kept, key=lambda m: (m.tier, m.pos)) if kept else None
    if any(not h.restated and (best is None or h.end > best.pos) for h in hedges):
        return None, "hedged"
    if best is not None:
        return best.value, "answered"
    return None, "refused" if _REFUSAL_RE.search(text) else "unparsed"


# --- yes / no ------------------------------------------------------------------------------------------------

_YES_NO_RE = re.compile(r"\b(yes|yeah|yep|yup|no|nope|nah)\b(?=\s*(?:[.,;:!?)\"]|$)|\s+(?:you|it|she|he|they|i|we"
                        r"|because|since|as|that|this|the)\b)")
_YES_NO_LEAD_RE = re.compile(r"(?:^|\b(?:answer|is|be|'s|say|go with|choose|pick|simply|just|definitely|clearly"
                             r"|certainly|probably|think|believe|guess|well|oh|okay|ok)\s*[:,]?)\s*$")


def _yes_no(text: str) -> list[_Mention]:
    """Bare yes/no that answer: at the start of a clause or right after "the answer is" ("no way" is not one)."""
    found = []
    for m in _YES_NO_RE.finditer(text):
        if _YES_NO_LEAD_RE.search(_window(text, m.start())) and _is_claim(text, m.start(), m.end()):
            found.append(_Mention(m.start(), "yes" if m.group(1).startswith("y") else "no", 1))
    return found


# --- spoken numbers (counts, and distances in navigate) ----------------------------------------------------

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
          " seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SMALL = rf"(?:(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS[1:10])}))?|{'|'.join(_UNITS)})"
_NUMBER = rf"(?:\d+|(?:a|one|{'|'.join(_UNITS[2:10])})\s+hundred(?:\s+(?:and\s+)?{_SMALL})?|{_SMALL}|a\s+dozen)"
_NUMBER_RE = re.compile(rf"\b{_NUMBER}\b")
_WORD_VALUES = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}


def _number_value(phrase: str) -> int:
    tokens = [t for t in re.split(r"[\s-]+", phrase) if t != "and"]
    if tokens == ["a", "dozen"]:
        return 12
    value = 0
    for token in tokens:
        if token.isdigit():
            value += int(token)
        elif token == "hundred":
            value = max(value, 1) * 100
        else:
            value += 1 if token == "a" else _WORD_VALUES[token]
    return value


# --- formal_fallacies ----------------------------------------------------------------------------------------

_FF_VALUE_RE = re.compile(r"\b(?:(invalid)|(valid)|(fallacious|(?:a |an )?(?:formal |logical )?fallacy)"
                          r"|(follows?)(?!\s+that))\b")
_FF_PREDICATE_RE = re.compile(r"\b(?:is|are|was|were|be|been|being|seems?|appears?|looks?|remains?|sounds?|makes?"
                              r"|making|renders?|considered|deemed|commits?|contains?|answer|say|go with|pick"
                              r"|choose|conclude|verdict|call it|isn't|wasn't|aren't)\b|'s\b|'re\b")
_FF_BARE_RE = re.compile(r"^(?:(?:\w+ly|not|just|in fact)\s*)*$")  # "Invalid." / "Definitely not valid."
_FF_BARE_AFTER_RE = re.compile(r"^\s*(?:argument|one|inference)?\s*(?:[.,;:!?]|$|\b(?:because|since|as|given)\b)")


def _formal_fallacies(text: str, question: str) -> tuple[list[_Mention], list[_Hedge]]:
    mentions = []
    for m in _FF_VALUE_RE.finditer(text):
        window = _window(text, m.start())
        if m.group(4):  # "follows" only speaks about validity with the conclusion as subject
            claimed = "conclusion" in window or re.search(r"\b(?:it|this)\s+(?:doesn't|does not)\b", window)
        else:
            claimed = _FF_PREDICATE_RE.search(window) or (
                _FF_BARE_RE.match(window) and _FF_BARE_AFTER_RE.match(text[m.end():]))
        if claimed and _is_claim(text, m.start(), m.end()):
            valid = bool(m.group(2) or m.group(4)) != _negated(window)
            mentions.append(_Mention(m.start(), "valid" if valid else "invalid", 1))
    return mentions, _hedges(text, r"(?:not\s+)?(?:in)?valid|not")


# --- navigate ------------------------------------------------------------------------------------------------

# The starting point, however it is said; a verb must lead to it ("at the start you face forward" is no answer).
_TARGET = (r"(?:(?:the|your|our|my|that)\s+)?(?:(?:very|exact|same|original|initial)\s+)*"
           r"(?:start(?:ing)?\s+(?:point|position|spot|place|location|line|square)|start\b|origin\b"
           r"|(?:original|initial)\s+(?:position|spot|place|location|point)|beginning\b"
           r"|same\s+(?:spot|place|position|point|location)|square one\b)"
           r"|where\s+(?:you|we|i|one|they)\s+(?:first\s+)?(?:started|began|start|begin|were)")
_NAV_HOME_RE = re.compile(r"\b(?:return(?:s|ed|ing)?|back|end(?:s|ed|ing)?\s+up|wind(?:s|ing)?\s+up|wound\s+up"
                          r"|finish(?:es|ed|ing)?|arriv(?:e|es|ed|ing)|land(?:s|ed|ing)?|are|'re|be|is|'s|am|were"
                          r"|was|being|stay|remain|find yourself)(?:\s+(?:right|exactly|precisely|all the way|just"
                          r"|directly|once again|again|up|still))*\s+(?:back\s+)?(?:(?:at|to|in|into|on)\s+)?"
                          rf"(?:{_TARGET})")
_NAV_AWAY_RE = re.compile(rf"\b(?:({_NUMBER})|a few|several|some)\s+(?:steps?|units?|paces?|spaces?)\s+(?:(?:to\s+"
                          r"the\s+)?(?:left|right|forward|backwards?|back|ahead|behind|north|south|east|west|away"
                          rf"|short|off|in front)\s+)?(?:of|from)\s+(?:{_TARGET})"
                          rf"|\b(?:far|away)\s+from\s+(?:{_TARGET})")
_NAV_END_RE = re.compile(r"\b(?:end(?:s|ed|ing)?\s+up|wind(?:s)?\s+up|finish(?:es|ed)?|final position is|you're"
                         rf"|you'd be|you'll be|you are|you would be|you will be)\s+(?:\w+\s+)?({_NUMBER})\s+"
                         r"(?:steps?|units?|paces?|spaces?)\b")
_NAV_NET_RE = re.compile(r"\b(?:no net (?:displacement|movement|change)\b|(?:net|overall|total) (?:displacement"
                         r"|movement|change in position|change) (?:is|isn't|is not|of|would be|comes to|equals) "
                         rf"(zero|nothing|none|{_NUMBER})\b)")


def _navigate(text: str, question: str) -> tuple[list[_Mention], list[_Hedge]]:
    mentions = _yes_no(text)
    for regex, home in ((_NAV_HOME_RE, True), (_NAV_AWAY_RE, False), (_NAV_END_RE, False), (_NAV_NET_RE, True)):
        for m in regex.finditer(text):
            distance = m.group(1) if regex.groups else None  # "0 steps from the start" is at the start
            at_home = home if distance is None else distance in ("zero", "nothing", "none") or (
                _number_value(distance) == 0)
            if _is_claim(text, m.start(), m.end()):
                yes = at_home != _negated(_window(text, m.start()) + " " + m.group(0))
                mentions.append(_Mention(m.start(), "yes" if yes else "no", 1))
    return mentions, _hedges(text, r"yes|no|not|(?:not\s+)?return")


# --- web_of_lies ---------------------------------------------------------------------------------------------

_WOL_GAP = (r"(?:'s|,?\s+(?:does|do|did|is|was|must|would|will|also|too|then|therefore|thus|hence|indeed|actually"
            r"|really|definitely|certainly|clearly|always|never|not|doesn't|don't|didn't|isn't|wasn't|won't"
            r"|wouldn't|can't|cannot|be|being|in fact|truly|in turn)\b)*")
# "<name>[, who ...,] [is / does not / also ...] <truthful | lying>": group 1 the name, 2 truthful, 3 lying.
_WOL_RE = re.compile(rf"\b([a-z]+)(?:,\s+who\s+[^,.;]*,)?{_WOL_GAP},?\s+(?:(tell(?:s|ing)?\s+the\s+truth"
                     r"|told\s+the\s+truth|speak(?:s|ing)?\s+the\s+truth|truthful|honest|(?:a|the)\s+truth[- ]?teller"
                     r"|truth[- ]?telling)|(lie(?:s|d)?|lying|tell(?:s|ing)?\s+(?:a\s+)?lies?|(?:a|the)\s+liar|liar"
                     r"|dishonest|untruthful))\b")
_ASKED_RE = re.compile(r"\bdoes\s+([a-z'-]+)\s+tell\s+the\s+truth\b", re.IGNORECASE)
_NAME_RE = re.compile(r"\b([A-Z][a-z'-]+)\s+(?:says|tells|lies)\b")


def _resolve(word: str, names: set[str]) -> str | None:
    """The question's name a transcribed word stands for: exact, else the one clear close spelling ("Eleanor")."""
    if word in names:
        return word
    scored = sorted(((SequenceMatcher(None, word, n).ratio(), n) for n in names), reverse=True)
    if scored and scored[0][0] >= 0.75 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    return None


def _web_of_lies(text: str, question: str) -> tuple[list[_Mention], list[_Hedge]]:
    mentions = _yes_no(text)
    asked = _ASKED_RE.findall(question)
    if asked:
        person = asked[-1].lower()
        names = {n.lower() for n in _NAME_RE.findall(question)} | {person}
        for m in _WOL_RE.finditer(text):
            pred = m.start(2) if m.group(2) else m.start(3)  # context runs up to the predicate: "does X", "says X"
            if _resolve(m.group(1), names) == person and _is_claim(text, pred, m.end()):
                truthful = bool(m.group(2)) != _negated(_window(text, pred))
                mentions.append(_Mention(pred, "yes" if truthful else "no", 1))
    return mentions, _hedges(text, r"yes|no|not|tells? the truth|truthful|honest|lies?|lying|a liar")


# --- object_counting -----------------------------------------------------------------------------------------

_COUNT_STRONG_RE = re.compile(r"(?:answer(?:\s+is|'s|\s+would\s+be|\s+will\s+be)?|(?:in\s+)?total(?:\s+(?:is|of|count"
                              r"\s+is|comes\s+to|would\s+be))?|total's|count(?:ed)?(?:\s+is)?|you(?:'ve|\s+have|'ll"
                              r"\s+have|\s+would\s+have|'d\s+have|\s+now\s+have)(?:\s+got)?|there(?:\s+are|'re|\s+would"
                              r"\s+be)|makes?|made|gives?|comes\s+to|adds?\s+up\s+to|sums?\s+(?:up\s+)?to|equals?|="
                              r"|that's|that\s+is|it's|it\s+is|come\s+to|(?:i|we)\s+(?:get|got|have|see)"
                              r"|brings?\s+(?:\w+\s+){0,2}to|number\s+is|sum\s+is)(?:\s+(?:a\s+total\s+of|exactly"
                              r"|only|just|now|still"
                              r"|actually|definitely|then))*\s*[:,]?\s*$")
_COUNT_WEAK_RE = re.compile(r"\b(?:is|are|was|be|'s|for)\s*$")
_COUNT_BARE_RE = re.compile(r"^(?:(?:exactly|just|only|probably|definitely|actually|now|still)\s*)*$")
_COUNT_EXCLUDE_RE = re.compile(r"(?:\b(?:than|instead of|except|minus|plus|times|out of|from|step|number|page)"
                               r"|[+\-*#]|\bx)\s*$")
_COUNT_END_RE = re.compile(r"^\s*(?:[.,;:!?)]|$|(?:and|but|so|because|since|which|then|now|plus|minus|if|as)\b)")
_COUNT_TOTAL_RE = re.compile(r"^\s+(?:in total|total|altogether|in all|overall|all together|all told)\b")
_CATEGORY_RE = re.compile(r"\bhow many ([a-z ]+?) do (?:i|you) have\b")
_ADJECTIVES = r"(?:(?:musical|different|distinct|separate|individual|total|other)\s+)*"
# "ten items" answers only after an answer phrase ("I count ten items"), not in "the question lists 10 items".
_GENERIC_RE = re.compile(rf"^\s+{_ADJECTIVES}(?:items?|things?|objects?|ones|pieces?|kinds?|types?)\b"
                         r"|^\s+of (?:them|those|these)\s*(?:[.,;:!?]|$)")


def _category_nouns(question: str) -> re.Pattern[str]:
    """Nouns that make "N <noun>" a count of what was asked: the question's noun, its head word, singulars."""
    asked = _CATEGORY_RE.search(question.lower())
    words = set()
    if asked:
        phrase = asked.group(1).strip()
        for noun in {phrase, phrase.split()[-1]}:
            words |= {re.escape(noun), re.escape(re.sub(r"(?<=[^s])s$", "", noun))}
    nouns = "|".join(sorted(words, key=len, reverse=True)) or r"(?!)"
    return re.compile(rf"^\s+(?:(?:of (?:them|those|these)\s+)?(?:are|were)\s+)?{_ADJECTIVES}(?:{nouns})\b")


def _count_tier(text: str, m: re.Match[str], nouns: re.Pattern[str]) -> int | None:
    """Tier of one number, or None when it is no count of the answer (an item, a step, "not seven")."""
    window, after = _window(text, m.start()), text[m.end():]
    if _negated(window) or _COUNT_EXCLUDE_RE.search(text[max(0, m.start() - 12):m.start()]):
        return None
    strong = _COUNT_STRONG_RE.search(window) is not None
    if nouns.match(after) or _COUNT_TOTAL_RE.match(after):
        return 2
    if _GENERIC_RE.match(after):
        return 2 if strong else 0
    if not _COUNT_END_RE.match(after):
        return None  # "four stoves", "one of them is", "2 seconds": something else is being counted
    if strong:
        return 2
    return 1 if _COUNT_WEAK_RE.search(window) or _COUNT_BARE_RE.match(window) else 0


def _object_counting(text: str, question: str) -> tuple[list[_Mention], list[_Hedge]]:
    nouns = _category_nouns(question)
    mentions = []
    for m in _NUMBER_RE.finditer(text):
        tier = _count_tier(text, m, nouns)
        if tier is not None and _is_claim(text, m.start(), m.end()):
            mentions.append(_Mention(m.start(), str(_number_value(m.group(0))), tier))
    hedges = _hedges(text, _NUMBER, key=_number_value)
    return mentions, hedges


# --- public API ----------------------------------------------------------------------------------------------

_EXTRACTORS = {"formal_fallacies": _formal_fallacies, "navigate": _navigate,
               "object_counting": _object_counting, "web_of_lies": _web_of_lies}


def extract_answer(sample: Sample, response_text: str | None) -> tuple[str | None, str]:
    """The normalised final answer in `response_text` ("valid"/"invalid", "yes"/"no" or a decimal count) and why.

    Returns `(answer, "answered")`, or `(None, reason)` with reason `empty`, `refused`, `hedged` or `unparsed`.
    Uses `sample.category` and `sample.prompt_text` (for the asked person and the counted noun), never
    `sample.target`, so the same transcript of the same question always yields the same answer.
    """
    extractor = _EXTRACTORS.get(sample.category)
    if extractor is None:
        raise DataError(f"{sample.sample_id}: category {sample.category!r} is not a Big Bench Audio task "
                        f"({', '.join(_EXTRACTORS)})")
    text = _normalise(response_text or "")
    if _EMPTY_RE.fullmatch(text):
        return None, "empty"
    mentions, hedges = extractor(text, sample.prompt_text)
    return _decide(text, mentions, hedges)


_OPTIONS = {"formal_fallacies": ("valid", "invalid"), "navigate": ("yes", "no"), "web_of_lies": ("yes", "no")}


def _target(sample: Sample) -> str:
    target = sample.target.strip().lower()
    if sample.category == "object_counting" and target.isdigit():
        return str(int(target))
    if target in _OPTIONS.get(sample.category, ()):
        return target
    raise DataError(f"{sample.sample_id}: target {sample.target!r} is not a {sample.category} answer")


def normalise_answer(category: str, answer: str) -> str | None:
    """A short stated answer ("Invalid.", "yes", "7", "seven") in the form `extract_answer` returns, or None.

    For answers read by another extractor (the LLM judge's extract-only mode), so that their comparison with the
    target is exactly the rule grader's. Only a bare option or count is accepted; anything else is None.
    """
    text = re.sub(r"^[\W_]+|[\W_]+$", "", _normalise(answer))
    if category == "object_counting":
        return str(_number_value(text)) if re.fullmatch(_NUMBER, text) else None
    if category not in _OPTIONS:
        raise DataError(f"category {category!r} is not a Big Bench Audio task ({', '.join(_EXTRACTORS)})")
    return text if text in _OPTIONS[category] else None


def grade_extracted(sample: Sample, extracted: str | None, reason: str) -> Grade:
    """Compare an already extracted, normalised answer with the target: `match` (1.0) or `mismatch` (0.0);
    no answer (`extracted` None) is `correct=False` with `reason`. A target that is no answer of the sample's
    category is a `DataError`, answer or not."""
    target = _target(sample)
    if extracted is None:
        return Grade(correct=False, score=0.0, reason=reason, extracted=None)
    correct = extracted == target
    return Grade(correct=correct, score=1.0 if correct else 0.0, reason="match" if correct else "mismatch",
                 extracted=extracted)


def grade(sample: Sample, response_text: str | None) -> Grade:
    """Grade one spoken answer: `match` (score 1.0) or `mismatch`, `empty`, `refused`, `hedged`, `unparsed` (0.0)."""
    extracted, reason = extract_answer(sample, response_text)
    return grade_extracted(sample, extracted, reason)
