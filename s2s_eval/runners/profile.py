"""Model profiles (`runners/<name>.yaml`): which endpoint, model and key a run uses, and how to talk to it."""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from s2s_eval import pricing, registry
from s2s_eval.errors import UserError
from s2s_eval.hosts import is_loopback

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
AZURE_PATH = "/openai/v1/realtime"


class LocalServerSettings(BaseModel):
    """How the `local` provider starts the embedded reference server."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: Literal["echo", "scripted"] = "echo"
    script: str | None = None
    first_audio_delay_ms: float | None = None


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
    provider: Literal["openai", "azure", "openai-compatible", "local"]
    model: str  # the model id (OpenAI) or deployment name (Azure)
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

    def public(self) -> dict[str, Any]:
        """The profile as recorded in a run's spec (it holds no secrets by construction)."""
        return self.model_dump(mode="json")

    def price(self) -> pricing.Price | None:
        if self.pricing == "none":
            return None
        return pricing.price_for(self.model if self.pricing == "auto" else self.pricing)


def load_profile(name: str) -> RunnerProfile:
    """Load `runners/<name>.yaml`."""
    return registry.load("runners", name, RunnerProfile, "model profile")


def _azure_url(profile: RunnerProfile) -> str:
    variable = profile.endpoint_env or "AZURE_OPENAI_ENDPOINT"
    endpoint = os.environ.get(variable, "").strip()
    if not endpoint:
        raise UserError(f"{variable} is not set: the {profile.name} profile needs your Azure OpenAI endpoint "
                        f"(export {variable}=https://<resource>.openai.azure.com)")
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return urlunsplit(("wss", parts.netloc, AZURE_PATH, "", ""))


def endpoint(profile: RunnerProfile, url_override: str | None) -> str:
    """The WebSocket URL of a profile, with the `model` query parameter (model id, or Azure deployment)."""
    if url_override or profile.url:
        url = url_override or profile.url
    elif profile.provider == "openai":
        url = OPENAI_REALTIME_URL
    elif profile.provider == "azure":
        url = _azure_url(profile)
    else:
        raise UserError(f"profile {profile.name!r} needs an endpoint: pass --url ws://HOST:PORT/v1/realtime")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise UserError(f"the endpoint must be a ws:// or wss:// URL, got {url!r}")
    query = dict(parse_qsl(parts.query))
    query.setdefault("model", profile.model)
    return urlunsplit(parts._replace(query=urlencode(query)))


def auth_headers(profile: RunnerProfile, url: str) -> dict[str, str]:
    """The auth header from the profile's key variable (`Authorization: Bearer` or Azure's `api-key`).

    A missing key stops the run at once, naming the variable, except for loopback URLs (a local server needs none).
    """
    if not profile.auth_env:
        return {}
    key = os.environ.get(profile.auth_env, "").strip()
    if key:
        return {"api-key": key} if profile.auth_header == "api-key" else {"Authorization": f"Bearer {key}"}
    if is_loopback(url):
        return {}
    raise UserError(f"{profile.auth_env} is not set: the {profile.name} profile needs an API key "
                    f"(export {profile.auth_env}=...), or run offline with --model local")
