"""xAI Grok Voice (the "Voice Agent API"): OpenAI-Realtime-like, over `wss://api.x.ai/v1/realtime?model=...`.

What was found, and where (searched 2026-12; xAI's own pages render their event tables with JavaScript, so the
field-level facts come from maintained clients that cite them):

- URL `wss://api.x.ai/v1/realtime`, model as `?model=` (MemberJunction `XAI_REALTIME_WS_URL` docs; fal.ai's proxy
  connects to `...?model=grok-voice-latest`); `Authorization: Bearer $XAI_API_KEY` (docs.x.ai/docs/guides/voice/agent,
  Quick Start). No `OpenAI-Beta` header.
- Models: `grok-voice-think-fast-1.0` (recommended), `grok-voice-fast-1.0` (deprecated, no date found),
  `grok-voice-latest` (alias) (LiteLLM docs, providers/xai_realtime, 2026-10).
- First event: `conversation.created` ("the first message received after connecting": pipecat
  `services/xai/realtime/events.py`); the docs list no `session.created`. One third-party harness (audio-arena)
  says `conversation.created` comes *before* `session.created`. So: the first of either starts the session and a
  later one is ignored (`ready_events`, configurable).
- Session fields are flat where GA nests them: `voice` and `turn_detection` at the top of `session`, beside
  `instructions`, `tools`, `audio.{input,output}.format` (`{"type": "audio/pcm", "rate": 24000}`, 8–48 kHz) and
  `reasoning.effort` (`none` or `high`, server default `high`, reasoning-capable models only) (docs.x.ai Quick
  Start; pipecat `SessionProperties`). No `type` or `output_modalities` is documented: they are not sent
  (`drop_session_fields`, configurable), nor `response.create`'s `metadata` (only `modalities` is documented;
  `drop_response_fields`). `turn_detection: null` is manual turns; `input_audio_buffer.commit` →
  `input_audio_buffer.committed` as in GA.
- Voices: Ara (default), Rex, Sal, Eve, Leo (docs.x.ai "Voice Options"); voice ids are case-insensitive and
  custom ids exist (pipecat), so the harness does not refuse other names.
- Server events use GA names (`response.output_audio.delta`, `response.output_audio_transcript.delta`,
  `conversation.item.added`); an older copy of the guide shows beta names (`response.audio.delta`), so beta names
  are mapped to GA as well. The server also sends `ping` (`{"type": "ping", "timestamp": ms}`), ignored here.
- Usage: `response.done.response.usage` holds only `total_tokens`, `input_tokens`, `output_tokens` (no modality
  details), may be empty, and is repeated at the top level of `response.done` (pipecat `ResponseDone`). A usage only
  at the top level is moved into the response.
- Function calls "are returned in response.done output array" (audio-arena): a `function_call` item in
  `response.done.response.output` with no `response.output_item.done` of its own is announced as one here, so the
  session machine sees every call the same way.
- Price: $0.05 per minute of session (third-party research note), not per token: the token pricing table cannot
  price it, so Grok runs are "not priced" rather than $0.

Assumptions (not confirmed against a live xAI endpoint) are the `XAIOptions` defaults, settable per profile under
`provider_options:`.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from s2s_eval.errors import UserError
from s2s_eval.protocol_beta import BETA_TO_GA
from s2s_eval.providers._base import Codec, Frame, Provider, Shutdown

if TYPE_CHECKING:
    from s2s_eval.runners.profile import RunnerProfile

XAI_REALTIME_URL = "wss://api.x.ai/v1/realtime"
VOICES = ("Ara", "Rex", "Sal", "Eve", "Leo")
EFFORTS = ("none", "high")
# The session fields xAI documents (docs.x.ai session parameters; pipecat SessionProperties): a profile's
# `session_fields` may set these and no others, since there is no SDK type to check them against.
SESSION_FIELDS = ("instructions", "voice", "turn_detection", "audio", "tools", "reasoning")
FLAT_FIELDS = {"voice": ("audio", "output", "voice"), "turn_detection": ("audio", "input", "turn_detection")}


class XAIOptions(BaseModel):
    """The unconfirmed parts of Grok's protocol, as defaults a profile can change (`provider_options:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ready_events: tuple[str, ...] = ("conversation.created", "session.created")
    flat_session: bool = True  # voice and turn_detection at the top of `session`
    drop_session_fields: tuple[str, ...] = ("type", "output_modalities")
    drop_response_fields: tuple[str, ...] = ("metadata",)  # `response.create` documents only `modalities`
    ignore_events: tuple[str, ...] = ("ping",)


def _pop(data: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node = data
    for key in path[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return False, None
    return (True, node.pop(path[-1])) if path[-1] in node else (False, None)


def grok_session(session: dict[str, Any], options: XAIOptions) -> dict[str, Any]:
    """A GA session as Grok documents it: flat `voice`/`turn_detection`, no undocumented GA-only fields."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in session.items()
           if k not in options.drop_session_fields}
    if "audio" in out:
        out["audio"] = {side: dict(part) for side, part in out["audio"].items()}
    if options.flat_session:
        for flat, path in FLAT_FIELDS.items():
            found, value = _pop(out, path)
            if found:
                out[flat] = value
        out["audio"] = {side: part for side, part in (out.get("audio") or {}).items() if part} or None
        if out["audio"] is None:
            del out["audio"]
    return out


class GrokCodec(Codec):
    """Grok's frames ↔ GA events (see the module docstring for each difference)."""

    def __init__(self, options: XAIOptions) -> None:
        self.options = options
        self.ready = False
        self.announced_calls: set[str] = set()

    def encode(self, event: dict[str, Any]) -> list[Frame]:
        if event.get("type") == "session.update":
            event = {**event, "session": grok_session(event.get("session") or {}, self.options)}
        elif event.get("type") == "response.create" and isinstance(event.get("response"), dict):
            response = {k: v for k, v in event["response"].items() if k not in self.options.drop_response_fields}
            event = {k: v for k, v in event.items() if k != "response"} | ({"response": response} if response else {})
        return super().encode(event)

    def decode(self, frame: Frame) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in super().decode(frame):
            kind = BETA_TO_GA.get(str(event.get("type")), event.get("type"))
            event = {**event, "type": kind}
            if kind in self.options.ignore_events:
                continue
            if kind in self.options.ready_events:
                if not self.ready:
                    self.ready = True
                    out.append({**event, "type": "session.created", "session": event.get("session") or {}})
                continue
            if kind == "response.output_item.done":
                self.announced_calls.add(str((event.get("item") or {}).get("call_id")))
            if kind == "response.done":
                out.extend(self._calls_in(event))
                event = _usage_inside(event)
            out.append(event)
        return out

    def _calls_in(self, done: dict[str, Any]) -> list[dict[str, Any]]:
        response = done.get("response") or {}
        calls = []
        for index, item in enumerate(response.get("output") or []):
            if item.get("type") == "function_call" and str(item.get("call_id")) not in self.announced_calls:
                self.announced_calls.add(str(item.get("call_id")))
                calls.append({"type": "response.output_item.done", "event_id": f"{done.get('event_id')}_{index}",
                              "response_id": response.get("id"), "output_index": index, "item": item})
        return calls


def _usage_inside(done: dict[str, Any]) -> dict[str, Any]:
    response = done.get("response") or {}
    if response.get("usage") or not done.get("usage"):
        return done
    return {**done, "response": {**response, "usage": done["usage"]}}


class XAI(Provider):
    """xAI Grok Voice."""

    name = "xai"
    default_url = XAI_REALTIME_URL
    key_env = "XAI_API_KEY"
    efforts = EFFORTS
    priced = False

    def options(self, profile: RunnerProfile) -> XAIOptions:
        try:
            return XAIOptions.model_validate(profile.provider_options)
        except ValueError as exc:
            raise UserError(f"profile {profile.name}: provider_options: {str(exc).splitlines()[-1]}") from None

    def codec(self, profile: RunnerProfile) -> Codec:
        return GrokCodec(self.options(profile))

    def check_profile(self, profile: RunnerProfile) -> None:
        super().check_profile(profile)
        self.options(profile)
        for name in profile.session_fields:
            if name not in SESSION_FIELDS:
                close = difflib.get_close_matches(name, SESSION_FIELDS, n=1)
                raise UserError(f"profile {profile.name}: session.{name} is not a session field xAI documents"
                                + (f" (did you mean {close[0]}?)" if close else f" ({', '.join(SESSION_FIELDS)})"))

    def efforts_for(self, model: str) -> tuple[str, ...]:
        return EFFORTS if "think" in model or model == "grok-voice-latest" else ()

    def shutdown(self, model: str) -> Shutdown | None:
        return None  # grok-voice-fast-1.0 is marked deprecated without a published date
