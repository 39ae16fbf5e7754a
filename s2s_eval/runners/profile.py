"""Model profiles (`runners/<name>.yaml`): which endpoint, model and key a run uses."""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from s2s_eval import registry
from s2s_eval.errors import UserError

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"


class LocalServerSettings(BaseModel):
    """How the `local` provider starts the embedded reference server."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: Literal["echo", "scripted"] = "echo"
    script: str | None = None
    first_audio_delay_ms: float | None = None


class RunnerProfile(BaseModel):
    """A model endpoint and how to talk to it. Never holds a secret: only the name of the variable that does."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    provider: Literal["openai", "openai-compatible", "local"]
    model: str
    url: str | None = None
    auth_env: str | None = None
    protocol: Literal["ga"] = "ga"
    voice: str | None = "marin"
    output_modalities: list[Literal["audio", "text"]] = ["audio"]
    concurrency: int = Field(default=4, ge=1, le=1024)
    turn_timeout_s: float = Field(default=120.0, gt=0)
    compression: bool = False
    server: LocalServerSettings | None = None

    def public(self) -> dict[str, Any]:
        """The profile as recorded in a run's spec (it holds no secrets by construction)."""
        return self.model_dump(mode="json")


def load_profile(name: str) -> RunnerProfile:
    """Load `runners/<name>.yaml`."""
    return registry.load("runners", name, RunnerProfile, "model profile")


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint(profile: RunnerProfile, url_override: str | None) -> str:
    """The WebSocket URL of a profile, with the `model` query parameter the real API requires."""
    url = url_override or profile.url or (OPENAI_REALTIME_URL if profile.provider == "openai" else None)
    if not url:
        raise UserError(f"profile {profile.name!r} needs an endpoint: pass --url ws://HOST:PORT/v1/realtime")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise UserError(f"--url must be a ws:// or wss:// URL, got {url!r}")
    query = dict(parse_qsl(parts.query))
    query.setdefault("model", profile.model)
    return urlunsplit(parts._replace(query=urlencode(query)))


def auth_headers(profile: RunnerProfile, url: str) -> dict[str, str]:
    """The Authorization header from the profile's key variable.

    A missing key stops the run at once, naming the variable, except for loopback URLs (a local server needs none).
    """
    if not profile.auth_env:
        return {}
    key = os.environ.get(profile.auth_env, "").strip()
    if key:
        return {"Authorization": f"Bearer {key}"}
    if is_loopback(url):
        return {}
    raise UserError(f"{profile.auth_env} is not set: the {profile.name} profile needs an API key "
                    f"(export {profile.auth_env}=...), or run offline with --model local")
