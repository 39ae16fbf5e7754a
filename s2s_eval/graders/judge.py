"""The LLM judge: structured verdicts from any OpenAI-compatible chat-completions endpoint, cached on disk.

A judge call never raises into a run and never guesses. Each call returns the judge's parsed answer, or None with
a reason that starts with "not judged:" (no judge configured, no key, unreachable, timed out, HTTP error, or a
reply that is not the JSON object asked for). Callers turn that into `correct: null` with the reason.

Replies are requested as strict JSON (`response_format` `json_schema`, or `json_object` / none for servers that
lack it) and parsed strictly either way: one JSON object, optionally in a single ```json fence, no duplicate keys,
every field of the declared type. Nothing is searched for "YES" in free text, so a malformed reply can never pass.

Parsed replies are cached under `<cache dir>/judge/`, keyed by the SHA-256 of the whole request (model, messages,
output schema, temperature), so a rerun pays nothing for questions already judged. Malformed replies and errors are
not cached: a rerun asks again. The API key is read from the environment when the client is made and lives only
inside the `openai` client: it is in no config, cache entry, log line or error message of ours.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from s2s_eval.graders.judge_prompts import PROMPT_VERSIONS
from s2s_eval.speech.endpoint import EndpointClient, EndpointConfig, describe_error
from s2s_eval.speech.response_cache import request_key

if TYPE_CHECKING:
    pass

__all__ = ["ENV_PREFIX", "NOT_CONFIGURED", "Extraction", "Judge", "JudgeConfig", "Score", "Verdict", "load_judge"]

ENV_PREFIX = "S2S_JUDGE"
NOT_CONFIGURED = f"not judged: no judge configured (set {ENV_PREFIX}_BASE_URL and/or {ENV_PREFIX}_MODEL)"
_CACHE_FORMAT = 1  # bump when the cache key or entry layout changes


class JudgeConfig(EndpointConfig):
    """An OpenAI-compatible chat-completions judge. The default model is the one upstream MultiChallenge used."""

    model: str = "gpt-4o-2024-08-06"
    # json_schema: strict structured outputs (OpenAI, vLLM, ...); json_object: JSON mode; none: prompt only.
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    timeout_s: float = Field(default=120.0, gt=0)  # long ComplexFuncBench dialogues take a while to read

    env_fields: ClassVar[dict[str, str]] = {**EndpointConfig.env_fields, "RESPONSE_FORMAT": "response_format"}

    @classmethod
    def from_env(cls, prefix: str = ENV_PREFIX, env: Mapping[str, str] | None = None) -> JudgeConfig | None:
        """`S2S_JUDGE_BASE_URL`, `S2S_JUDGE_MODEL`, `S2S_JUDGE_API_KEY_ENV`, `S2S_JUDGE_TIMEOUT_S`,
        `S2S_JUDGE_MAX_RETRIES`, `S2S_JUDGE_CONCURRENCY`, `S2S_JUDGE_RESPONSE_FORMAT`; None if the first two are unset.
        """
        return super().from_env(prefix, env)


# --- results -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class JudgeResult:
    """What every judge call returns beside its answer: the reasoning, the reply as received ("" when none came),
    whether it came from the cache, and the error that left it unjudged (None when judged)."""

    reasoning: str = ""
    raw: str
    cached: bool
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Verdict(JudgeResult):
    """A YES/NO verdict. `passed` is whether `answer` equals the expected one; None (with `error`) if not judged."""

    passed: bool | None = None
    answer: Literal["YES", "NO"] | None = None


@dataclass(frozen=True, kw_only=True)
class Score(JudgeResult):
    """A 0-2 score; None (with `error`) if not judged."""

    score: int | None = None


@dataclass(frozen=True, kw_only=True)
class Extraction(JudgeResult):
    """An answer read out of a transcript. `answer` is None with `error` None when the judge found no answer."""

    answer: str | None = None


# --- strict reply parsing ------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?\s*```", re.DOTALL)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys in the JSON object")
    return dict(pairs)


def _load_object(raw: str) -> dict[str, Any]:
    text = raw.strip()
    fenced = _FENCE_RE.fullmatch(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def _reasoning(obj: dict[str, Any]) -> str:
    if not isinstance(obj.get("reasoning"), str):
        raise ValueError('"reasoning" is missing or not a string')
    return obj["reasoning"]


def _parse_verdict(raw: str) -> dict[str, Any]:
    obj = _load_object(raw)
    verdict = obj.get("verdict")
    if not isinstance(verdict, str) or verdict.strip().upper() not in ("YES", "NO"):
        raise ValueError(f'"verdict" is {json.dumps(verdict)[:40]}, not "YES" or "NO"')
    return {"answer": verdict.strip().upper(), "reasoning": _reasoning(obj)}


def _parse_score(raw: str) -> dict[str, Any]:
    obj = _load_object(raw)
    score = obj.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or score not in (0, 1, 2):
        raise ValueError(f'"score" is {json.dumps(score)[:40]}, not 0, 1 or 2')
    return {"score": score, "reasoning": _reasoning(obj)}


def _parse_extraction(raw: str) -> dict[str, Any]:
    obj = _load_object(raw)
    if "answer" not in obj or not (obj["answer"] is None or isinstance(obj["answer"], str)):
        raise ValueError('"answer" is missing or neither a string nor null')
    answer = obj["answer"].strip() if isinstance(obj["answer"], str) else None
    return {"answer": answer or None, "reasoning": _reasoning(obj)}


@dataclass(frozen=True)
class _Output:
    name: str
    schema: dict[str, Any]
    parse: Callable[[str], dict[str, Any]]


def _schema(field: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["reasoning", field],
            "properties": {"reasoning": {"type": "string"}, field: spec}}


_VERDICT = _Output("verdict", _schema("verdict", {"type": "string", "enum": ["YES", "NO"]}), _parse_verdict)
_SCORE = _Output("score", _schema("score", {"type": "integer", "enum": [0, 1, 2]}), _parse_score)
_EXTRACTION = _Output("extraction", _schema("answer", {"type": ["string", "null"]}), _parse_extraction)


@dataclass(frozen=True)
class _Reply:
    fields: dict[str, Any] | None
    raw: str
    cached: bool
    error: str | None


def _content(completion: Any) -> tuple[str, str | None]:
    """The reply text of a chat completion, or why there is none."""
    try:
        choice = completion.choices[0]
        message = choice.message
    except (AttributeError, IndexError, TypeError):
        return "", "the reply has no choices"
    if getattr(message, "refusal", None):
        return str(message.refusal), "the judge refused"
    if not isinstance(message.content, str) or not message.content.strip():
        return "", f"the reply is empty (finish_reason {getattr(choice, 'finish_reason', None)!r})"
    return message.content, None


# --- the judge -----------------------------------------------------------------------------------------------

class Judge(EndpointClient):
    """An LLM judge over one endpoint. Share it between the tasks of one event loop (its HTTP client and limits
    belong to the loop that first uses them); close it with `aclose()` (or `async with`).

    Every call is safe to cancel: nothing is cached until a complete, well-formed reply has arrived.
    """

    config: JudgeConfig

    def __init__(self, config: JudgeConfig, *, cache_dir: Path | None = None) -> None:
        super().__init__(config, cache_dir, "judge")
        self._inflight: dict[str, asyncio.Lock] = {}

    def describe(self) -> dict[str, Any]:
        """What goes into a run's `spec.json`: endpoint (no credentials), model, output mode, prompt versions."""
        return {"kind": "openai-chat-completions", **self.config.public(), "temperature": 0,
                "prompt_versions": dict(PROMPT_VERSIONS), "cache": "judge/ under the cache dir, by request SHA-256"}

    def stats(self) -> dict[str, int]:
        """Counts so far: `requests` sent, `cache_hits`, `not_judged` (errors), `malformed` replies."""
        return {key: self._stats[key] for key in ("requests", "cache_hits", "not_judged", "malformed")}

    async def verdict(self, messages: Sequence[Mapping[str, str]], *, expected: str = "YES") -> Verdict:
        """Ask a YES/NO question; `passed` is whether the judge's answer equals `expected` ("YES" or "NO")."""
        expected = expected.strip().upper()
        if expected not in ("YES", "NO"):
            raise ValueError(f"expected must be YES or NO, not {expected!r}")
        reply = await self._ask(messages, _VERDICT)
        if reply.fields is None:
            return Verdict(raw=reply.raw, cached=reply.cached, error=reply.error)
        answer = reply.fields["answer"]
        return Verdict(passed=answer == expected, answer=answer, reasoning=reply.fields["reasoning"], raw=reply.raw,
                       cached=reply.cached, error=None)

    async def score(self, messages: Sequence[Mapping[str, str]]) -> Score:
        """Ask for a 0-2 score."""
        reply = await self._ask(messages, _SCORE)
        if reply.fields is None:
            return Score(raw=reply.raw, cached=reply.cached, error=reply.error)
        return Score(score=reply.fields["score"], reasoning=reply.fields["reasoning"], raw=reply.raw,
                     cached=reply.cached, error=None)

    async def extract(self, messages: Sequence[Mapping[str, str]]) -> Extraction:
        """Ask for an answer read out of a text (a string, or null when there is none)."""
        reply = await self._ask(messages, _EXTRACTION)
        if reply.fields is None:
            return Extraction(raw=reply.raw, cached=reply.cached, error=reply.error)
        return Extraction(answer=reply.fields["answer"], reasoning=reply.fields["reasoning"], raw=reply.raw,
                          cached=reply.cached, error=None)

    # --- plumbing ---

    def _body(self, messages: Sequence[Mapping[str, str]], output: _Output) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "temperature": 0,
                                "messages": [{"role": m["role"], "content": m["content"]} for m in messages]}
        if self.config.response_format == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": output.name, "strict": True, "schema": output.schema}}
        elif self.config.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    async def _ask(self, messages: Sequence[Mapping[str, str]], output: _Output) -> _Reply:
        body = self._body(messages, output)
        key = request_key({"cache_format": _CACHE_FORMAT, **body})
        # Identical questions asked at once share one request: the second waits and then reads the cache.
        lock = self._inflight.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                return await self._ask_once(key, body, output)
        finally:
            if self._inflight.get(key) is lock and not lock.locked():
                del self._inflight[key]

    async def _ask_once(self, key: str, body: dict[str, Any], output: _Output) -> _Reply:
        entry = self._cache.get(key)
        if entry is not None and isinstance(entry.get("raw"), str):
            try:
                fields = output.parse(entry["raw"])
            except ValueError:
                pass  # an entry this version cannot read: ask again and overwrite it
            else:
                self._stats["cache_hits"] += 1
                return _Reply(fields, entry["raw"], True, None)
        missing = self.config.missing_key()
        if missing:
            self._stats["not_judged"] += 1
            return _Reply(None, "", False, f"not judged: {missing}")
        async with self._semaphore:
            self._stats["requests"] += 1
            try:
                completion = await self._get_client().chat.completions.create(**body)
            except Exception as exc:  # a judge failure is this sample's "not judged", never the run's crash
                self._stats["not_judged"] += 1
                return _Reply(None, "", False, f"not judged: {describe_error(exc, self.config, 'the judge')}")
        raw, problem = _content(completion)
        raw = self._scrub(raw)
        try:
            if problem:
                raise ValueError(problem)
            fields = output.parse(raw)
        except ValueError as exc:
            self._stats["malformed"] += 1
            return _Reply(None, raw, False, f"not judged: malformed judge reply: {self._scrub(str(exc))}")
        self._cache.put(key, {"cache_format": _CACHE_FORMAT, "request": body, "raw": raw,
                              "served_model": getattr(completion, "model", None)})
        return _Reply(fields, raw, False, None)

    def _scrub(self, text: str) -> str:
        key = self.config.api_key()
        return text.replace(key, "***") if key else text


def load_judge(env: Mapping[str, str] | None = None, *, cache_dir: Path | None = None) -> Judge | None:
    """The judge configured by `S2S_JUDGE_*` environment variables, or None (callers report `NOT_CONFIGURED`)."""
    config = JudgeConfig.from_env(ENV_PREFIX, env)
    return Judge(config, cache_dir=cache_dir) if config else None
