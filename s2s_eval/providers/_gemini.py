"""Google Gemini Live (BidiGenerateContent over WebSocket): URL and key today; the codec is the next step.

How it fits the provider layer (facts in the shared `gemini-live-protocol.md`):

- `endpoint`: the v1beta `BidiGenerateContent` URL; the model goes in the `setup` message, not the URL.
- `auth_headers`: `x-goog-api-key` (never `?key=`, which would put the key in logged URLs).
- `Codec.opened()` returns a synthetic `session.created`, because Gemini's server speaks only after `setup`;
  `encode(session.update)` → `setup` (voice → `speechConfig`, `turn_detection: null` →
  `automaticActivityDetection.disabled`, transcription on both sides), input audio appends → `realtimeInput.audio`
  resampled to 16 kHz, commit → `activityEnd` (answered locally with `input_audio_buffer.committed`),
  `response.create` → nothing (the turn end asks for the answer), tool outputs → `toolResponse`.
- `decode` (JSON in binary frames): `setupComplete` → `session.updated`; `serverContent.modelTurn` audio →
  `response.created` (first) + `response.output_audio.delta`; `outputTranscription` →
  `response.output_audio_transcript.delta`; `toolCall` → `response.output_item.done` function calls;
  `turnComplete` (+ `usageMetadata`) → `response.done` with usage mapped to GA's token details.
- `closed`: 1007 → invalid_request, 1008 → invalid_request (unknown model) or session_expired after `goAway`,
  1011 → rate_limited when the reason says quota, else server_error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from s2s_eval.errors import UserError
from s2s_eval.providers._base import Codec, Provider
from s2s_eval.providers._urls import with_model

if TYPE_CHECKING:
    from s2s_eval.runners.profile import RunnerProfile

GEMINI_LIVE_URL = ("wss://generativelanguage.googleapis.com/ws/"
                   "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")


class Gemini(Provider):
    """Gemini Live API."""

    name = "gemini"
    default_url = GEMINI_LIVE_URL
    key_env = "GEMINI_API_KEY"
    priced = False  # Google prices Live audio per token at its own rates; not in the table yet

    def endpoint(self, profile: RunnerProfile, url_override: str | None) -> str:
        return with_model(url_override or self.base_url(profile), profile.model, parameter="")

    def auth_headers(self, profile: RunnerProfile, url: str) -> dict[str, str]:
        key = self.key(profile, url)
        return {"x-goog-api-key": key} if key else {}

    def codec(self, profile: RunnerProfile) -> Codec:
        raise UserError(f"the {profile.name} profile needs the Gemini Live client codec, which is not built yet "
                        "(the provider's URL and key are; see s2s_eval/providers/_gemini.py)")
