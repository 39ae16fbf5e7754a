"""Model profiles (`runners/<name>.yaml`): which endpoint, model and key a run uses, and how to talk to it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from s2s_eval import pricing, registry
from s2s_eval.providers import Provider, Shutdown, get_provider, provider_names


class LocalServerSettings(BaseModel):
    """How the `local` provider starts the embedded reference server. The last three make it a better or worse
    turn-taker on purpose (`s2s_eval/server/dynamics.py`); their defaults are the plain server."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: Literal["echo", "scripted"] = "echo"
    script: str | None = None
    first_audio_delay_ms: float | None = None
    vad_min_speech_ms: int = Field(default=0, ge=0)  # VAD ignores utterances with less voiced audio than this
    yield_delay_ms: float = Field(default=0.0, ge=0)  # a VAD barge-in cancels the response this much later
    output_rate: float | None = Field(default=None, gt=0)  # audio paced at this multiple of real time; None: unpaced


class VadSettings(BaseModel):
    """Server VAD settings sent in VAD turn mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float = Field(default=0.5, ge=0, le=1)
    prefix_padding_ms: int = Field(default=300, ge=0)
    silence_duration_ms: int = Field(default=500, ge=0)


class RunnerProfile(BaseModel):
    """A model endpoint and how to talk to it. Never holds a secret: only the name of the variable that does."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    provider: str  # a name in s2s_eval.providers.PROVIDERS
    model: str  # the model id (OpenAI) or deployment name (Azure)
    reasoning_effort: str | None = None  # reasoning models: sent as session.reasoning.effort
    session_fields: dict[str, Any] = {}  # extra documented session fields, checked by the provider before connecting
    provider_options: dict[str, Any] = {}  # protocol details the provider leaves configurable (see its docstring)
    url: str | None = None
    endpoint_env: str | None = None  # Azure: the variable holding https://<resource>.openai.azure.com
    auth_env: str | None = None
    auth_header: Literal["bearer", "api-key"] = "bearer"
    protocol: Literal["ga", "beta"] = "ga"
    voice: str | None = "marin"
    output_modalities: list[Literal["audio", "text"]] = ["audio"]
    concurrency: int = Field(default=4, ge=1, le=1024)
    requests_per_minute: float | None = Field(default=None, gt=0)  # rate-limit hint: spaces session starts
    turn_timeout_s: float = Field(default=120.0, gt=0)
    compression: bool = False
    pricing: str = "auto"  # "auto": price by `model`; "none": unpriced; or a model id from the pricing table
    vad: VadSettings = VadSettings()
    server: LocalServerSettings | None = None

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, name: str) -> str:
        if name not in provider_names():
            raise ValueError(f"unknown provider {name!r}; available: {', '.join(provider_names())}")
        return name

    @property
    def api(self) -> Provider:
        """The provider that talks to this profile's endpoint."""
        return get_provider(self.provider)

    def shutdown(self) -> Shutdown | None:
        """The model's announced shutdown, if its provider knows of one."""
        return self.api.shutdown(self.model)

    def public(self) -> dict[str, Any]:
        """The profile as recorded in a run's spec (it holds no secrets by construction)."""
        return self.model_dump(mode="json")

    def price(self) -> pricing.Price | None:
        if self.pricing == "none" or (self.pricing == "auto" and not self.api.priced):
            return None
        return pricing.price_for(self.model if self.pricing == "auto" else self.pricing)


def load_profile(name: str) -> RunnerProfile:
    """Load `runners/<name>.yaml`."""
    return registry.load("runners", name, RunnerProfile, "model profile")


def endpoint(profile: RunnerProfile, url_override: str | None) -> str:
    """The WebSocket URL of a profile (its provider decides how the model is named in it)."""
    return profile.api.endpoint(profile, url_override)


def auth_headers(profile: RunnerProfile, url: str) -> dict[str, str]:
    """The auth header from the profile's key variable, as its provider sends it.

    A missing key stops the run at once, naming the variable, except for loopback URLs (a local server needs none).
    """
    return profile.api.auth_headers(profile, url)
