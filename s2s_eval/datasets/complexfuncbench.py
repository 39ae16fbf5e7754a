"""ComplexFuncBench in audio: multi-step, constrained function calling over Booking.com-style APIs, asked aloud.

Each row (format: `complexfuncbench-format.md`) has an `id` (`Hotels-12`, `Cross-150`, ...), the `functions` the
model may call and the golden `conversations`: the user's request, then function-call steps each followed by their
observations, then the final answer. The sample id is the row's `id`, the category its prefix. The request is
spoken (ISO dates said as dates); the functions become the session's Realtime function tools. The golden calls,
observations and final answer are grader material (`metadata`), never sent to a server.

Realtime function names allow only letters, digits, `_` and `-` (64 at most); upstream names such as
`Get_Hotel_Reviews(Tips)` are renamed the way the upstream GPT runner does (other characters become `-`), and
`metadata["tool_names"]` maps each session name back to the original.

Loaded from a local data directory (`complexfuncbench/ComplexFuncBench.jsonl`) or, without one, from the Hugging
Face Hub (`THUDM/ComplexFuncBench`) with `datasets`. The Hub file is read line by line (the `text` builder) and
each line parsed as JSON: the `json` builder would infer one Arrow schema for all rows and fill every call's
arguments with the keys of all other calls (as nulls), which breaks the exact comparison of arguments.

`golden_script` turns a sample into a line of the reference server's scripted-engine script that makes the golden
calls step by step and then says the golden answer (for tests and calibration of the grader).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from s2s_eval import paths
from s2s_eval.datasets.sample import Sample, round_robin
from s2s_eval.datasets.spec import EvalSpec
from s2s_eval.errors import DataError, UserError, first_line
from s2s_eval.speech.tts import spoken_form

__all__ = ["FIXTURE_DIR", "check_rows", "golden_calls", "golden_script", "load_rows", "load_samples", "parse_lines",
           "realtime_name", "to_sample"]

# The project's own invented samples in this format (tests, and `make eval` when no local copy of the data exists).
FIXTURE_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures"

_NAME_OK = re.compile(r"[A-Za-z0-9_-]")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


# --- loading -------------------------------------------------------------------------------------------------

def _hub_lines(repo: str, filename: str, revision: str) -> list[str]:
    """The lines of one file of a Hub dataset repository, read through `datasets` (cached under the cache dir)."""
    import datasets  # heavy: imported only when data is loaded

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    table = datasets.load_dataset("text", data_files=f"hf://datasets/{repo}@{revision}/{filename}", split="train",
                                  cache_dir=str(paths.cache_dir() / "hf"))
    return table["text"]


def parse_lines(lines: Iterable[str], where: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-empty JSONL line; one clear error naming the first line that is no object."""
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}:{number}: not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}:{number}: each line must be a JSON object, not {type(row).__name__}")
        rows.append((number, row))
    if not rows:
        raise DataError(f"{where}: no samples")
    return rows


def _read(spec: EvalSpec, data_dir: Path | None) -> tuple[list[tuple[int, dict[str, Any]]], str, dict[str, Any]]:
    if data_dir is not None:
        path = Path(data_dir) / spec.source["local"]
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{path}: not found; --data-dir / S2S_DATA_DIR must hold {spec.source['local']} "
                            f"(the project's invented fixture: --data-dir {FIXTURE_DIR})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{spec.name}: cannot read {path}: {first_line(exc)}") from None
        source: dict[str, Any] = {"kind": "local", "location": str(path.resolve()), "revision": "local copy"}
        if path.resolve().is_relative_to(FIXTURE_DIR):
            source["note"] = ("s2s-eval's own invented test fixture in ComplexFuncBench format, not the benchmark's "
                              "data: figures from it say nothing about a model")
        return parse_lines(text.splitlines(), str(path)), str(path), source
    repo, filename, revision = spec.source["hub"], spec.source["file"], spec.source.get("revision", "main")
    location = f"hf://datasets/{repo}@{revision}/{filename}"
    try:
        lines = _hub_lines(repo, filename, revision)
    except Exception as exc:  # network and Hub failures: many exception types, one message
        raise UserError(f"cannot load {spec.name} from the Hugging Face Hub ({location}: {first_line(exc)}); "
                        f"offline? pass --data-dir DIR (or set S2S_DATA_DIR) with a local copy laid out as "
                        f"{spec.source['local']}") from None
    return parse_lines(lines, location), location, {"kind": "hub", "location": location, "revision": revision}


def load_rows(spec: EvalSpec, data_dir: Path | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All checked rows, in file order, and where they came from (location, revision, content hash)."""
    numbered, where, source = _read(spec, data_dir)
    rows = check_rows(numbered, where, spec.categories)
    source["content_sha256"] = hashlib.sha256(json.dumps(rows, sort_keys=True).encode("utf-8")).hexdigest()
    source["n_total"] = len(rows)
    return rows, source


# --- checking ------------------------------------------------------------------------------------------------

def _check_functions(functions: Any, at: str) -> None:
    if not isinstance(functions, list) or not functions:
        raise DataError(f"{at}: 'functions' must be a non-empty list of tool definitions")
    names = set()
    for i, function in enumerate(functions):
        here = f"{at}: functions[{i}]"
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise DataError(f"{here} needs a string 'name'")
        if function["name"] in names:
            raise DataError(f"{here}: function {function['name']!r} is defined twice")
        names.add(function["name"])
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict) or not isinstance(parameters.get("properties", {}), dict):
            raise DataError(f"{here} ({function['name']}): 'parameters' must be an object schema with 'properties'")
        if not all(isinstance(p, dict) for p in parameters.get("properties", {}).values()):
            raise DataError(f"{here} ({function['name']}): every property must be a schema object")
        required = parameters.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise DataError(f"{here} ({function['name']}): 'required' must be a list of parameter names")


def _check_conversations(conversations: Any, at: str) -> None:
    if not isinstance(conversations, list) or len(conversations) < 2:
        raise DataError(f"{at}: 'conversations' must list the request, the golden steps and the final answer")
    first, last = conversations[0], conversations[-1]
    if not isinstance(first, dict) or first.get("role") != "user" or not isinstance(first.get("content"), str) \
            or not first["content"].strip():
        raise DataError(f"{at}: conversations[0] must be the user's request (role user, non-empty content)")
    if not isinstance(last, dict) or last.get("role") != "assistant" or not isinstance(last.get("content"), str) \
            or last.get("function_call"):
        raise DataError(f"{at}: the last turn of 'conversations' must be the assistant's final text answer")
    middle = conversations[1:-1]
    if len(middle) % 2:
        raise DataError(f"{at}: every function-call step must be followed by exactly one observation step")
    for k in range(0, len(middle), 2):
        call_turn, observation = middle[k], middle[k + 1]
        here = f"{at}: conversations[{k + 1}]"
        calls = call_turn.get("function_call") if isinstance(call_turn, dict) else None
        if not isinstance(call_turn, dict) or call_turn.get("role") != "assistant" or not isinstance(calls, list) \
                or not calls:
            raise DataError(f"{here} must be an assistant step with a non-empty 'function_call' list")
        for j, call in enumerate(calls):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str) \
                    or not isinstance(call.get("arguments"), dict):
                raise DataError(f"{here}: function_call[{j}] needs a string 'name' and an 'arguments' object")
        if not isinstance(observation, dict) or observation.get("role") != "observation" \
                or not isinstance(observation.get("content"), list) or len(observation["content"]) != len(calls):
            raise DataError(f"{at}: conversations[{k + 2}] must be an observation step with one entry per call "
                            f"of the step before it ({len(calls)})")


def check_rows(numbered: list[tuple[int, dict[str, Any]]], where: str, categories: list[str]) -> list[dict[str, Any]]:
    """The rows with only the fields the eval uses, or one clear error naming the first malformed row."""
    checked, seen = [], set()
    for number, row in numbered:
        sid = row.get("id")
        at = f"{where}:{number}" + (f" ({sid})" if isinstance(sid, str) and sid.strip() else "")
        if not isinstance(sid, str) or not sid.strip() or sid in seen:
            raise DataError(f"{at}: 'id' must be a unique, non-empty string")
        seen.add(sid)
        category = sid.rsplit("-", 1)[0]
        if category not in categories:
            raise DataError(f"{at}: the id's prefix {category!r} is not one of the eval's categories "
                            f"({', '.join(categories)})")
        _check_functions(row.get("functions"), at)
        _check_conversations(row.get("conversations"), at)
        checked.append({"id": sid, "functions": row["functions"], "conversations": row["conversations"]})
    return checked


# --- samples -------------------------------------------------------------------------------------------------

def realtime_name(name: str) -> str:
    """A function name the Realtime API accepts: other characters become `-`, at most 64 (as upstream's runner)."""
    return "".join(c if _NAME_OK.fullmatch(c) else "-" for c in name)[:64]


def _tools(functions: list[dict[str, Any]], at: str) -> tuple[tuple[dict[str, Any], ...], dict[str, str]]:
    tools, names = [], {}
    for function in functions:
        name = realtime_name(function["name"])
        if name in names:
            raise DataError(f"{at}: functions {names[name]!r} and {function['name']!r} both become {name!r} as "
                            "Realtime function names")
        names[name] = function["name"]
        tools.append({"type": "function", "name": name, "description": function.get("description", ""),
                      "parameters": copy.deepcopy(function.get("parameters", {"type": "object", "properties": {}}))})
    return tuple(tools), names


def _say_date(match: re.Match[str]) -> str:
    try:
        day = dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def spoken_request(text: str) -> str:
    """The request as it is spoken: ISO dates as "October 1, 2024" (a TTS voice reads "2024-10-01" as a sum)."""
    return spoken_form(_ISO_DATE.sub(_say_date, text))


def to_sample(row: dict[str, Any], eval_name: str) -> Sample:
    """The sample of one checked row."""
    tools, names = _tools(row["functions"], row["id"])
    conversations = row["conversations"]
    return Sample(sample_id=row["id"], eval=eval_name, category=row["id"].rsplit("-", 1)[0],
                  prompt_text=spoken_request(conversations[0]["content"]), target=conversations[-1]["content"],
                  metadata={"request": conversations[0]["content"], "functions": row["functions"],
                            "conversations": conversations, "tool_names": names,
                            "golden_calls": sum(len(t["function_call"]) for t in conversations[1:-1:2])},
                  tools=tools)


def load_samples(spec: EvalSpec, data_dir: Path | None) -> tuple[list[Sample], dict[str, Any]]:
    """The samples of the eval (categories interleaved) and where they came from."""
    rows, source = load_rows(spec, data_dir)
    by_category = ([r for r in rows if r["id"].rsplit("-", 1)[0] == c] for c in spec.categories)
    return [to_sample(r, spec.name) for r in round_robin(by_category)], source  # a --limit covers every category


# --- scripts for the reference server ------------------------------------------------------------------------

def golden_calls(sample: Sample) -> list[list[dict[str, Any]]]:
    """The golden function calls of a sample, step by step, with their original names and arguments."""
    return [copy.deepcopy(turn["function_call"]) for turn in sample.metadata["conversations"][1:-1:2]]


def golden_script(sample: Sample, *, skip: Iterable[int] = (), skip_lookups: Iterable[str] = ()) -> dict[str, Any]:
    """A scripted-engine line (ARCHITECTURE.md) that makes the sample's golden calls step by step, then says the
    golden answer. Calls use the session's (Realtime) function names.

    `skip` leaves out golden calls by their 0-based position in the whole trajectory; `skip_lookups` leaves out
    every call to the named functions (e.g. the free location lookups). A step left empty is dropped.
    """
    to_session = {original: name for name, original in sample.metadata["tool_names"].items()}
    skipped, lookups = set(skip), set(skip_lookups)
    responses: list[dict[str, Any]] = []
    position = 0
    for step in golden_calls(sample):
        calls = []
        for call in step:
            if position not in skipped and call["name"] not in lookups:
                calls.append({"name": to_session.get(call["name"], realtime_name(call["name"])),
                              "arguments": call["arguments"]})
            position += 1
        if calls:
            responses.append({"tool_calls": calls})
    responses.append({"text": sample.target})
    return {"sample_id": sample.sample_id, "responses": responses}
