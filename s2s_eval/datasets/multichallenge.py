"""MultiChallenge in audio: Scale AI's 273 multi-turn conversations, replayed to a speech-to-speech model.

Each row is a conversation that ends with a user turn, an axis (`INFERENCE_MEMORY`, `INSTRUCTION_RETENTION`,
`RELIABLE_VERSION_EDITING`, `SELF_COHERENCE`), a yes/no `TARGET_QUESTION` about the final answer and the verdict
that passes (`PASS_CRITERIA`). The sample id is the row's `QUESTION_ID`; the category its axis. The last user turn
is spoken (`prompt_text`); the turns before it are the sample's `history`: user turns spoken too (or text, per the
eval's `history_user`), assistant turns as text items (a client cannot create assistant audio), system turns (the
published data has none) as system items in their place.

Loaded with Hugging Face `datasets` from a local data directory (`multichallenge/benchmark_questions.jsonl`) or,
without one, from the upstream repository at a pinned commit.

**The audio subset** (`subset: audio`, the default) keeps the conversations that can honestly be asked aloud. A
conversation is left out when any of these holds (rule names as recorded in a run's `spec.json`):

- `code_or_markup`: a user turn holds a code fence, an HTML/XML tag, or a `{ }` block;
- `table`: a user turn holds a table (a `| ... |` row, or a line with two or more tabs);
- `url`: a user turn holds a URL (`http(s)://` or `www.`);
- `structured_text`: a user turn has `MAX_LIST_LINES` + 1 or more lines that start with a list marker or a short row
  label (`-`, `*`, `•`, `o`, `1.`, `1)`, `R1:`): a list or a pattern to read, not something a person says;
- `long_turn`: a user turn has more than `MAX_TURN_WORDS` words (about 80 s of speech at `SPEAKING_RATE_WPM`);
- `long_conversation`: the user turns together have more than `MAX_USER_WORDS` words (about 4 minutes of speech);
- `context`: the estimated context (user speech at 10 tokens/s, other turns' text at 4 characters a token) is
  over `CONTEXT_TOKENS`, what a 32k-token Realtime model keeps before truncating;
- `visual_target`: the `TARGET_QUESTION` judges layout that speech cannot carry (bold, italics, bullets, tables,
  markdown, punctuation, capitalisation, emoji, fonts, headings, numbered items, grids, indentation, underlining,
  paragraph counts), so a spoken answer could not pass or fail it on its merits.

On the published data (commit 5ccefcc) the subset keeps **253 of 273** conversations (INFERENCE_MEMORY 112,
INSTRUCTION_RETENTION 59, RELIABLE_VERSION_EDITING 35, SELF_COHERENCE 47). The 20 left out break `visual_target`
(15), `long_turn` (3), `long_conversation` (3) and `structured_text` (2); a conversation may break several. No row
of that data has code, markup, tables or URLs, and none comes near the context limit: those rules guard other
versions of the file. `audit()` lists every excluded conversation with its reasons, and a run records them in its
`spec.json` (`dataset.subset.excluded`); `subset: all` keeps all 273.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from s2s_eval import paths
from s2s_eval.datasets.sample import Message, Sample, round_robin
from s2s_eval.datasets.spec import EvalSpec
from s2s_eval.errors import DataError, UserError, first_line
from s2s_eval.speech.tts import spoken_form

__all__ = ["RULES", "SUBSETS", "audit", "exclusion_reasons", "load_rows", "load_samples", "to_sample"]

SUBSETS = ("audio", "all")
ROLES = ("user", "assistant", "system")

# Thresholds of the audio subset.
SPEAKING_RATE_WPM = 150  # a calm speaking rate: turns words into seconds of speech
MAX_TURN_WORDS = 200  # one user turn: 200 words is about 80 s of speech
MAX_USER_WORDS = 600  # all user turns of a conversation: about 4 minutes of speech
MAX_LIST_LINES = 2  # more lines than this starting with a list marker or row label make a turn structured text
CONTEXT_TOKENS = 28_224  # gpt-realtime: fits before truncation with a 32,768-token window and 4,096 output tokens
USER_AUDIO_TOKENS_PER_S = 10  # Realtime input audio: 1 token per 100 ms
TEXT_CHARS_PER_TOKEN = 4  # a rough English average, for assistant text items

_CODE = re.compile(r"```|~~~|</?[A-Za-z][\w-]*(?:\s[^<>]*)?>|\{[^{}]*[:;\"][^{}]*\}")
_TABLE = re.compile(r"^[ \t]*\|.*\|[ \t]*$|^[^\n]*\t[^\n]*\t", re.MULTILINE)
_URL = re.compile(r"https?://|\bwww\.\w", re.IGNORECASE)
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*•o]|\d{1,3}[.)]|[A-Za-z]{1,3}\d{0,3}:)[ \t]", re.MULTILINE)
_VISUAL = re.compile(
    r"\b(?:bold(?:ed)?|italic(?:s|ized)?|bullet(?:s|ed)?(?: points?)?|tables?|markdown|punctuation|capitali[sz]\w*|"
    r"upper ?case|lower ?case|all caps|emojis?|fonts?|headings?|headers?|numbered|grids?|indent\w*|underlin\w*|"
    r"paragraphs)\b", re.IGNORECASE)


def _user_turns(row: dict[str, Any]) -> list[str]:
    return [m["content"] for m in row["CONVERSATION"] if m["role"] == "user"]


def _words(text: str) -> int:
    return len(text.split())


def _context_tokens(row: dict[str, Any]) -> int:
    speech_s = sum(_words(t) for t in _user_turns(row)) * 60 / SPEAKING_RATE_WPM
    text = sum(len(m["content"]) for m in row["CONVERSATION"] if m["role"] != "user")
    return round(speech_s * USER_AUDIO_TOKENS_PER_S + text / TEXT_CHARS_PER_TOKEN)


# Each rule: name, what it means, and the test on a checked row. Order is the order reasons are listed in.
RULES: tuple[tuple[str, str, Callable[[dict[str, Any]], bool]], ...] = (
    ("code_or_markup", "a user turn holds a code fence, an HTML/XML tag or a { } block",
     lambda row: any(_CODE.search(t) for t in _user_turns(row))),
    ("table", "a user turn holds a table (| ... | rows or tab-separated columns)",
     lambda row: any(_TABLE.search(t) for t in _user_turns(row))),
    ("url", "a user turn holds a URL",
     lambda row: any(_URL.search(t) for t in _user_turns(row))),
    ("structured_text", f"a user turn has more than {MAX_LIST_LINES} list or row-label lines",
     lambda row: any(len(_LIST_LINE.findall(t)) > MAX_LIST_LINES for t in _user_turns(row))),
    ("long_turn", f"a user turn has more than {MAX_TURN_WORDS} words",
     lambda row: any(_words(t) > MAX_TURN_WORDS for t in _user_turns(row))),
    ("long_conversation", f"the user turns have more than {MAX_USER_WORDS} words together",
     lambda row: sum(_words(t) for t in _user_turns(row)) > MAX_USER_WORDS),
    ("context", f"the estimated context is over {CONTEXT_TOKENS} tokens",
     lambda row: _context_tokens(row) > CONTEXT_TOKENS),
    ("visual_target", "the target question judges layout that speech cannot carry",
     lambda row: bool(_VISUAL.search(row["TARGET_QUESTION"]))),
)


def exclusion_reasons(row: dict[str, Any]) -> list[str]:
    """The names of the audio-subset rules a checked row breaks, in `RULES` order; empty when it is kept."""
    return [name for name, _, breaks in RULES if breaks(row)]


def audit(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Every conversation the audio subset leaves out, by `QUESTION_ID`, with the rules it breaks."""
    return {row["QUESTION_ID"]: reasons for row in rows if (reasons := exclusion_reasons(row))}


# --- loading -------------------------------------------------------------------------------------------------

def _load_jsonl(location: str) -> list[dict[str, Any]]:
    """Rows of the JSONL file at a path or URL, read through `datasets`."""
    import datasets  # heavy: imported only when data is loaded

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    table = datasets.load_dataset("json", data_files=location, split="train", cache_dir=str(paths.cache_dir() / "hf"))
    return table.to_list()


def _check(rows: list[dict[str, Any]], where: str, axes: list[str]) -> list[dict[str, Any]]:
    """The rows with only the fields the eval uses, or one clear error naming the first bad row."""
    checked, seen = [], set()
    for index, row in enumerate(rows):
        qid = row.get("QUESTION_ID")
        at = f"{where}: row {index}" + (f" ({qid})" if isinstance(qid, str) else "")
        if not isinstance(qid, str) or not qid.strip() or qid in seen:
            raise DataError(f"{at}: QUESTION_ID must be a unique, non-empty string")
        seen.add(qid)
        if row.get("AXIS") not in axes:
            raise DataError(f"{at}: AXIS {row.get('AXIS')!r} is not one of the eval's categories ({', '.join(axes)})")
        if not isinstance(row.get("TARGET_QUESTION"), str) or not row["TARGET_QUESTION"].strip():
            raise DataError(f"{at}: no usable TARGET_QUESTION")
        criteria = row.get("PASS_CRITERIA")
        if not isinstance(criteria, str) or criteria.strip().upper() not in ("YES", "NO"):
            raise DataError(f"{at}: PASS_CRITERIA must be YES or NO, not {criteria!r}")
        conversation = row.get("CONVERSATION")
        if not isinstance(conversation, list) or not conversation:
            raise DataError(f"{at}: CONVERSATION must be a non-empty list")
        turns = []
        for number, turn in enumerate(conversation):
            if (not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str)
                    or not turn["content"].strip()):
                raise DataError(f"{at}: CONVERSATION[{number}] needs a role ({', '.join(ROLES)}) and non-empty content")
            turns.append({"role": turn["role"], "content": turn["content"]})
        if turns[-1]["role"] != "user":
            raise DataError(f"{at}: CONVERSATION must end with a user turn, not {turns[-1]['role']!r}")
        checked.append({"QUESTION_ID": qid, "AXIS": row["AXIS"], "CONVERSATION": turns,
                        "TARGET_QUESTION": row["TARGET_QUESTION"].strip(), "PASS_CRITERIA": criteria.strip().upper()})
    if not checked:
        raise DataError(f"{where}: no conversations")
    return checked


def load_rows(spec: EvalSpec, data_dir: Path | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All checked rows, in file order, and where they came from (location, revision, content hash)."""
    if data_dir is not None:
        path = Path(data_dir) / spec.source["local"]
        if not path.exists():
            raise DataError(f"{path}: not found; --data-dir / S2S_DATA_DIR must hold {spec.source['local']}")
        location = str(path)
        try:
            rows = _load_jsonl(location)
        except Exception as exc:  # `datasets` wraps parse errors in several exception types
            raise DataError(f"{spec.name}: cannot read {path}: {first_line(exc)}") from None
    else:
        location = spec.source["url"]
        try:
            rows = _load_jsonl(location)
        except Exception as exc:  # network and Hub failures: many exception types, one message
            raise UserError(f"cannot download {spec.name} from {location} ({first_line(exc)}); offline? pass "
                            f"--data-dir DIR (or set S2S_DATA_DIR) with a local copy laid out as "
                            f"{spec.source['local']}") from None
    checked = _check(rows, location, spec.categories)
    source = {
        "kind": "local" if data_dir is not None else "url",
        "location": str(Path(data_dir).resolve()) if data_dir is not None else location,
        "revision": "local copy" if data_dir is not None else spec.source.get("revision", "unknown"),
        "content_sha256": hashlib.sha256(json.dumps(checked, sort_keys=True).encode("utf-8")).hexdigest(),
        "n_total": len(checked),
    }
    return checked, source


def to_sample(row: dict[str, Any], eval_name: str) -> Sample:
    """The sample of one checked row: the last user turn spoken, every turn before it as history."""
    *before, last = row["CONVERSATION"]
    history = tuple(Message(t["role"], spoken_form(t["content"]) if t["role"] == "user" else t["content"])
                    for t in before)
    return Sample(sample_id=row["QUESTION_ID"], eval=eval_name, category=row["AXIS"],
                  prompt_text=spoken_form(last["content"]), target=row["PASS_CRITERIA"],
                  metadata={"target_question": row["TARGET_QUESTION"], "pass_criteria": row["PASS_CRITERIA"],
                            "turns": len(row["CONVERSATION"])},
                  history=history)


def load_samples(spec: EvalSpec, data_dir: Path | None) -> tuple[list[Sample], dict[str, Any]]:
    """The samples of the eval's subset (axes interleaved) and where they came from, with what was left out."""
    subset = spec.subset or "audio"
    if subset not in SUBSETS:
        raise UserError(f"eval {spec.name!r}: unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    rows, source = load_rows(spec, data_dir)
    excluded = audit(rows) if subset == "audio" else {}
    kept = [r for r in rows if r["QUESTION_ID"] not in excluded]
    source["subset"] = {
        "name": subset, "n_kept": len(kept), "n_excluded": len(excluded),
        "by_rule": dict(Counter(reason for reasons in excluded.values() for reason in reasons)),
        "excluded": excluded,
    }
    by_axis = ([r for r in kept if r["AXIS"] == axis] for axis in spec.categories)
    return [to_sample(r, spec.name) for r in round_robin(by_axis)], source  # a --limit covers every axis
