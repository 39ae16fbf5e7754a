"""An OpenAI-compatible HTTP endpoint: the LLM judge, the transcription backend, the OpenAI TTS engine.

One config shape for all: base URL, model, the *name* of the environment variable holding the key (never the key
itself, so configs, reprs and `spec.json` can be printed freely), timeout and retries. Failures become one line
that says what failed and what to do, with the key scrubbed out; they are never raised into a run.

Retries are the `openai` SDK's own: it retries only transient failures (connection errors, timeouts, 408, 409,
429 and 5xx, honouring `retry-after`) with jittered exponential backoff, and never auth or invalid-request errors,
which is the project's classify-before-retrying rule.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from s2s_eval import paths
from s2s_eval.errors import UserError
from s2s_eval.hosts import is_loopback
from s2s_eval.speech.response_cache import ResponseCache

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

__all__ = ["EndpointClient", "EndpointConfig", "describe_error", "is_loopback", "public_url", "scrub"]

# A placeholder bearer token for loopback servers that need none: the SDK insists on some key.
_NO_KEY = "no-key-loopback"
# Keys of the OpenAI shape, scrubbed even when they are not the configured key (a server may echo a partial one).
_KEY_SHAPE_RE = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*.]{6,}")


def public_url(url: str) -> str:
    """`url` without user info, query or fragment: what may be shown, logged and written to `spec.json`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def scrub(text: str, secret: str | None) -> str:
    """`text` with `secret` and anything shaped like an API key replaced by `***`."""
    if secret:
        text = text.replace(secret, "***")
    return _KEY_SHAPE_RE.sub("***", text)


class EndpointConfig(BaseModel):
    """Where an OpenAI-compatible service is and how to reach it. Holds no secret: only the key's env var name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "https://api.openai.com/v1"
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(default=60.0, gt=0)  # per HTTP attempt
    max_retries: int = Field(default=2, ge=0)  # transient failures only; attempts = max_retries + 1
    concurrency: int = Field(default=8, ge=1)  # requests in flight at once from one client

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s):// URL with a host")  # no value: it may carry credentials
        return value.rstrip("/")

    # Environment variable suffixes read by `from_env` (e.g. S2S_JUDGE_BASE_URL) and the fields they set.
    env_fields: ClassVar[dict[str, str]] = {
        "BASE_URL": "base_url", "MODEL": "model", "API_KEY_ENV": "api_key_env", "TIMEOUT_S": "timeout_s",
        "MAX_RETRIES": "max_retries", "CONCURRENCY": "concurrency"}
    # Setting any of these fields' variables turns the service on.
    switches: ClassVar[tuple[str, ...]] = ("base_url", "model")

    @classmethod
    def from_env(cls, prefix: str, env: Mapping[str, str] | None = None) -> Self | None:
        """The config in `{prefix}_BASE_URL`, `{prefix}_MODEL`, ...; None when neither base URL nor model is set.

        Setting either one turns the service on (the other keeps its default); nothing is used implicitly, so an
        `OPENAI_API_KEY` present for the Realtime run never starts paid judge or transcription calls by itself.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for suffix, name in cls.env_fields.items():
            raw = env.get(f"{prefix}_{suffix}", "").strip()
            if raw:
                values[name] = raw
        if not any(name in values for name in cls.switches):
            return None
        try:
            return cls(**values)
        except ValidationError as exc:
            # Field names and rules only: pydantic's own message would echo the input, which may hold credentials.
            problems = "; ".join(f"{prefix}_{_suffix(cls, str(e['loc'][0]))}: {e['msg']}" for e in exc.errors())
            raise UserError(f"invalid {prefix}_* settings: {problems}") from None

    def api_key(self) -> str | None:
        """The key from `$api_key_env`, read now (never stored on the config)."""
        return os.environ.get(self.api_key_env) or None

    def missing_key(self) -> str | None:
        """Why no request can be made (no key for a non-loopback URL), or None."""
        if self.api_key() or is_loopback(self.base_url):
            return None
        return f"${self.api_key_env} is not set; {public_url(self.base_url)} needs an API key"

    def client(self) -> AsyncOpenAI:
        """An `AsyncOpenAI` client for this endpoint (the caller closes it)."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(api_key=self.api_key() or _NO_KEY, base_url=self.base_url, timeout=self.timeout_s,
                           max_retries=self.max_retries)

    def sync_client(self) -> OpenAI:
        """The same endpoint as a blocking `OpenAI` client, for worker threads (the TTS engine)."""
        from openai import OpenAI

        return OpenAI(api_key=self.api_key() or _NO_KEY, base_url=self.base_url, timeout=self.timeout_s,
                      max_retries=self.max_retries)

    def public(self) -> dict[str, Any]:
        """The config as it may go into `spec.json`: base URL without credentials, the key's env var name only."""
        return {**self.model_dump(mode="json"), "base_url": public_url(self.base_url)}


class EndpointClient:
    """What the judge and the transcription backend share: a config, a response cache under the cache directory,
    a concurrency limit, counters, and an SDK client opened on first use and closed with `aclose()` (or
    `async with`). Share one between the tasks of one event loop: its HTTP client and limits belong to the loop
    that first uses them."""

    def __init__(self, config: EndpointConfig, cache_dir: Path | None, cache_name: str) -> None:
        self.config = config
        self._cache = ResponseCache((cache_dir or paths.cache_dir()) / cache_name)
        self._client: AsyncOpenAI | None = None
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._stats: Counter[str] = Counter()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _get_client(self) -> AsyncOpenAI:
        if self._client is None:
            self._client = self.config.client()
        return self._client


def _suffix(cls: type[EndpointConfig], field: str) -> str:
    return next((s for s, f in cls.env_fields.items() if f == field), field.upper())


def _server_message(body: object) -> str:
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return error["message"]
        return str(error)
    return str(body or "")


def describe_error(exc: Exception, config: EndpointConfig, what: str) -> str:
    """One line for a failed request to `config`'s endpoint: what failed, why, and what to do; no secret in it."""
    import openai

    url = public_url(config.base_url)
    attempts = f"{config.max_retries + 1} attempt{'s' if config.max_retries else ''}"
    if isinstance(exc, openai.APITimeoutError):
        line = f"{what} timed out after {config.timeout_s:g} s per attempt ({attempts}) at {url}"
    elif isinstance(exc, openai.APIConnectionError):
        line = f"{what} unreachable at {url} ({attempts}); is the server running?"
    elif isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        # The server's text is left out: real services echo part of the rejected key.
        line = f"{what} rejected the credentials (HTTP {exc.status_code}) at {url}; check ${config.api_key_env}"
    elif isinstance(exc, openai.RateLimitError):
        line = f"{what} still rate-limited (HTTP 429) after {attempts} at {url}; lower the concurrency or retry later"
    elif isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        line = f"{what} failed with HTTP {exc.status_code} after {attempts} at {url}"
    elif isinstance(exc, openai.APIStatusError):
        message = " ".join(_server_message(exc.body).split())[:300]
        line = f"{what} refused the request (HTTP {exc.status_code}) at {url}: {message or 'no message'}"
    elif isinstance(exc, openai.APIResponseValidationError):
        line = f"{what} at {url} sent a reply that is not the documented shape"
    else:
        line = f"{what} request to {url} failed: {type(exc).__name__}"
    return scrub(line, config.api_key())
