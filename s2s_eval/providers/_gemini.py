"""Google Gemini Live (BidiGenerateContent over WebSocket): URL, key, options and the codec that speaks it.

How it fits the provider layer (facts in the shared `gemini-live-protocol.md`; the event tables in
`_gemini_codec.py`, the set-up mapping in `_gemini_setup.py`):

- `endpoint`: the v1beta `BidiGenerateContent` URL; the model goes in the `setup` message, not the URL.
- `auth_headers`: `x-goog-api-key` (never `?key=`, which would put the key in logged URLs).
- `codec`: a `GeminiCodec` per session. The runner's own WebSocket client moves its frames and stamps their
  times; the codec parses plain JSON (never the SDK's types, whose first parse costs tens of milliseconds).
- Not priced: Google bills Live audio per token at rates this project has not cited yet (`pricing.py`).

`gemini-compatible` is the same protocol at any `--url` (the reference server: `s2s-eval serve --protocol
gemini`), with the key optional for loopback URLs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from s2s_eval.errors import UserError
from s2s_eval.providers._base import Codec, Provider
from s2s_eval.providers._gemini_codec import GeminiCodec
from s2s_eval.providers._urls import with_model

if TYPE_CHECKING:
    from s2s_eval.runners.profile import RunnerProfile

GEMINI_LIVE_URL = ("wss://generativelanguage.googleapis.com/ws/"
                   "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")


class GeminiOptions(BaseModel):
    """What a profile may set under `provider_options:` for Gemini Live."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    generation_config: dict[str, Any] = {}  # merged into setup.generationConfig (e.g. temperature, thinkingConfig)
    sample_header: bool = True  # send X-S2S-Sample-Id (the reference server's per-session sample id)


class Gemini(Provider):
    """Gemini Live API."""

    name = "gemini"
    default_url = GEMINI_LIVE_URL
    key_env = "GEMINI_API_KEY"
    priced = False  # Google prices Live audio per token at its own rates; not in the table yet
    acknowledges_turn_end = False  # `activityEnd` gets no reply: the audio before it must not be a backlog

    def endpoint(self, profile: RunnerProfile, url_override: str | None) -> str:
        return with_model(url_override or self.base_url(profile), profile.model, parameter="")

    def auth_headers(self, profile: RunnerProfile, url: str) -> dict[str, str]:
        key = self.key(profile, url)
        return {"x-goog-api-key": key} if key else {}

    def options(self, profile: RunnerProfile) -> GeminiOptions:
        try:
            return GeminiOptions.model_validate(profile.provider_options)
        except ValueError as exc:
            raise UserError(f"profile {profile.name}: provider_options: {str(exc).splitlines()[-1]}") from None

    def check_profile(self, profile: RunnerProfile) -> None:
        super().check_profile(profile)
        self.options(profile)
        if profile.session_fields:
            raise UserError(f"profile {profile.name}: session_fields are OpenAI Realtime session fields; for Gemini "
                            "use provider_options.generation_config")

    def codec(self, profile: RunnerProfile) -> Codec:
        options = self.options(profile)
        return GeminiCodec(profile.model, options.generation_config, options.sample_header)


class GeminiCompatible(Gemini):
    """Any Gemini Live server at `--url` (the reference server, a proxy); unpriced, key optional on loopback."""

    name = "gemini-compatible"
    default_url = None

    def base_url(self, profile: RunnerProfile) -> str:
        if profile.url:
            return profile.url
        raise UserError(f"profile {profile.name!r} needs an endpoint: pass --url ws://HOST:PORT/ws/google.ai."
                        "generativelanguage.v1beta.GenerativeService.BidiGenerateContent")
