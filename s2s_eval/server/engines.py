"""Engines decide what the reference server answers. They are honest about what they are: `echo` speaks back
what it received, `scripted` answers from a script. Neither reads datasets or gold answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from s2s_eval.errors import DataError, UserError
from s2s_eval.server.protocol import ResponseState

DEFAULT_ANSWER = "This is the s2s-eval reference server. I have no scripted answer for this question."


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """What to say, then which tools to call (each becomes a function_call output item after the message).

    `pcm` is speech to send as is; when None, the server speaks `text` with its TTS. An empty `text` without tool
    calls is still a message, with no audio and an empty transcript: a response always has at least one item.
    """

    text: str
    pcm: bytes | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    first_audio_delay_ms: float | None = None


class Conversation(Protocol):
    """What an engine reads of a session (a Realtime or a Gemini Live one): the audio of its items."""

    item_audio: dict[str, bytes]


class Engine(Protocol):
    name: str

    def reply(self, session: Conversation, state: ResponseState, turn: int) -> Reply:
        """Decide the reply to the response `state`; `turn` counts this sample's earlier responses in the session.

        Called on the event loop: must be fast and must not synthesise speech (the server does that).
        """

    def known_texts(self) -> list[str]:
        """Texts this engine will speak, known in advance (the server synthesises them before it is ready)."""


def last_user_message(context: list[dict[str, Any]]) -> dict[str, Any] | None:
    for item in reversed(context):
        if item.get("type") == "message" and item.get("role") == "user":
            return item
    return None


class EchoEngine:
    """Speaks back the last user message: its audio as received, or its text through TTS.

    Echoed audio comes with the transcript the client attached to it, if any: the server has no speech
    recogniser, so audio that arrived without one is echoed with an empty transcript.
    """

    name = "echo"

    def reply(self, session: Conversation, state: ResponseState, turn: int) -> Reply:
        item = last_user_message(state.context)
        if item is None:
            return Reply(text="")
        texts = [p.get("text") or "" for p in item["content"] if p.get("type") == "input_text"]
        if texts:
            return Reply(text=" ".join(texts))
        pcm = session.item_audio.get(item["id"], b"")
        transcripts = [p.get("transcript") or "" for p in item["content"] if p.get("type") == "input_audio"]
        return Reply(text=" ".join(t for t in transcripts if t), pcm=pcm)

    def known_texts(self) -> list[str]:
        return []


@dataclass(frozen=True)
class ScriptedResponse:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    first_audio_delay_ms: float | None = None


def load_script(path: Path) -> dict[str, list[ScriptedResponse]]:
    """Read a script (one JSON line per sample id, see ARCHITECTURE.md); one clear error per bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read script {path}: {exc.strerror}") from None
    script: dict[str, list[ScriptedResponse]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("sample_id"), str):
            raise DataError(f"{where}: each line needs a string 'sample_id'")
        responses = row.get("responses")
        if not isinstance(responses, list) or not responses:
            raise DataError(f"{where}: 'responses' must be a non-empty list")
        script[row["sample_id"]] = [_scripted_response(r, f"{where}: responses[{i}]")
                                    for i, r in enumerate(responses)]
    return script


def _scripted_response(raw: Any, where: str) -> ScriptedResponse:
    if not isinstance(raw, dict) or not isinstance(raw.get("text", ""), str):
        raise DataError(f"{where}: a response is an object with a string 'text' and/or 'tool_calls'")
    calls = raw.get("tool_calls") or []
    if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                              and isinstance(c.get("arguments", {}), dict) for c in calls):
        raise DataError(f"{where}: tool_calls is a list of {{\"name\": str, \"arguments\": object}}")
    if "text" not in raw and not calls:  # `"text": ""` is an answer: a model that says nothing, which graders must see
        raise DataError(f"{where}: a response needs a 'text' (\"\" to answer nothing), 'tool_calls', or both")
    delay = raw.get("first_audio_delay_ms")
    if delay is not None and (not isinstance(delay, int | float) or delay < 0):
        raise DataError(f"{where}: first_audio_delay_ms must be a non-negative number")
    return ScriptedResponse(text=raw.get("text", ""),
                            tool_calls=tuple(ToolCall(c["name"], c.get("arguments", {})) for c in calls),
                            first_audio_delay_ms=delay)


class ScriptedEngine:
    """Answers from a script keyed by `response.metadata.sample_id`, responses in order within a session.

    A sample's n-th `response.create` gets its n-th scripted response (the last one repeats), so a tool call
    answered with `function_call_output` is followed by the next scripted response.
    """

    name = "scripted"

    def __init__(self, script: dict[str, list[ScriptedResponse]]) -> None:
        self.script = script

    def reply(self, session: Conversation, state: ResponseState, turn: int) -> Reply:
        sample_id = state.sample_id
        responses = self.script.get(sample_id) or self.script.get("*")
        if not responses:
            return Reply(text=DEFAULT_ANSWER)
        chosen = responses[min(turn, len(responses) - 1)]
        return Reply(text=chosen.text, tool_calls=chosen.tool_calls, first_audio_delay_ms=chosen.first_audio_delay_ms)

    def known_texts(self) -> list[str]:
        return [r.text for responses in self.script.values() for r in responses if r.text] + [DEFAULT_ANSWER]


def make_engine(name: str, script_path: Path | None) -> Engine:
    """Build an engine by name; the scripted engine needs a script."""
    factories: dict[str, Callable[[], Engine]] = {
        "echo": EchoEngine,
        "scripted": lambda: ScriptedEngine(load_script(script_path) if script_path else {}),
    }
    if name not in factories:
        raise UserError(f"unknown engine {name!r}; choose one of {', '.join(factories)}")
    return factories[name]()
