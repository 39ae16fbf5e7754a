"""OpenAI Realtime: api.openai.com (GA), Azure OpenAI (GA v1), any Realtime-compatible server, the embedded one.

GA is the runner's own vocabulary, so the GA codec passes frames through; the beta shape (`protocol: beta`) is
translated by `s2s_eval.protocol_beta`, the one beta↔GA table. Facts, from the pinned `openai` SDK (3.54.0):

- `RealtimeSessionCreateRequestParam.reasoning` (`{"effort": ...}`, `RealtimeReasoningEffort` = minimal, low,
  medium, high, xhigh) is "only supported by reasoning Realtime models such as gpt-realtime-2". Its default is
  not in the SDK; `low` is the documented provider default as quoted by third-party docs (MemberJunction's
  `RealtimeReasoningEffort`), and the gpt-realtime-2 profiles send it explicitly so a run records what it used.
- The `model` docstring lists "gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-mini",
  "gpt-realtime-mini-2025-12-15" with "Announced shutdown date: 2027-01-20" and points at the deprecations page
  for replacements; the replacements below (gpt-realtime-2.1, gpt-realtime-2.1-mini) are from Retell's migration
  notice for the same date (docs.retellai.com/deprecation-notice/2027/01-19_model_replacements).
"""

from __future__ import annotations

import difflib
import functools
import os
import typing
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import typing_extensions

from s2s_eval.errors import UserError
from s2s_eval.protocol_beta import client_event_to_beta, server_event_to_ga
from s2s_eval.providers._base import Codec, Frame, Provider, Shutdown

if TYPE_CHECKING:
    from s2s_eval.runners.profile import RunnerProfile

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
AZURE_PATH = "/openai/v1/realtime"
_SDK_SHUTDOWN = "openai SDK 3.54 model docstring; replacement per Retell's migration notice"
SHUTDOWNS = {
    "gpt-realtime": Shutdown("2027-01-20", "gpt-realtime-2.1", _SDK_SHUTDOWN),
    "gpt-realtime-2025-08-28": Shutdown("2027-01-20", "gpt-realtime-2.1", _SDK_SHUTDOWN),
    "gpt-realtime-mini": Shutdown("2027-01-20", "gpt-realtime-2.1-mini", _SDK_SHUTDOWN),
    "gpt-realtime-mini-2025-12-15": Shutdown("2027-01-20", "gpt-realtime-2.1-mini", _SDK_SHUTDOWN),
}
REASONING_MODELS = ("gpt-realtime-2",)  # the gpt-realtime-2 family (2, 2.1, 2.1-mini) takes `reasoning`


@functools.cache
def sdk_efforts() -> tuple[str, ...]:
    """The reasoning efforts the SDK's `RealtimeReasoningEffort` allows."""
    from openai.types.realtime.realtime_reasoning_effort import RealtimeReasoningEffort  # noqa: PLC0415

    return typing.get_args(RealtimeReasoningEffort)


def _typed_dict_keys(kind: Any) -> dict[str, Any] | None:
    if isinstance(kind, type) and typing_extensions.is_typeddict(kind):  # the SDK's TypedDicts are typing_extensions'
        return typing.get_type_hints(kind)
    return None


def _unknown_keys(value: Any, kind: Any, path: str) -> str | None:
    """The first key in `value` that the SDK TypedDict `kind` (or any member of a union of them) does not have."""
    if typing.get_origin(kind) in (typing_extensions.Required, typing_extensions.NotRequired):
        kind = typing.get_args(kind)[0]
    candidates = [kind, *typing.get_args(kind)] if typing.get_origin(kind) is typing.Union else [kind]
    hints = [h for h in map(_typed_dict_keys, candidates) if h is not None]
    if not hints or not isinstance(value, dict):
        return None
    problems = []
    for fields in hints:
        extra = [k for k in value if k not in fields]
        if not extra:
            nested = [_unknown_keys(v, fields[k], f"{path}.{k}") for k, v in value.items()]
            first = next((n for n in nested if n), None)
            if first is None:
                return None
            problems.append(first)
        else:
            close = difflib.get_close_matches(extra[0], list(fields), n=1)
            problems.append(f"{path}.{extra[0]} is not a session field" + (f" (did you mean {close[0]}?)" if close
                                                                           else ""))
    return problems[0]


def check_session_fields(fields: dict[str, Any], where: str) -> None:
    """Validate extra GA session fields against the SDK's `RealtimeSessionCreateRequestParam`: names (with a
    suggestion for a typo) and value types, so a mistake fails before any connection."""
    if not fields:
        return
    from openai.types.realtime import RealtimeSessionCreateRequestParam  # noqa: PLC0415
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    problem = _unknown_keys(fields, RealtimeSessionCreateRequestParam, "session")
    if problem:
        raise UserError(f"{where}: {problem}")
    try:
        TypeAdapter(RealtimeSessionCreateRequestParam).validate_python({"type": "realtime", **fields})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{where}: session.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


class BetaCodec(Codec):
    """The beta wire shape (brief §3), translated by the one beta↔GA table."""

    def encode(self, event: dict[str, Any]) -> list[Frame]:
        return super().encode(client_event_to_beta(event))

    def decode(self, frame: Frame) -> list[dict[str, Any]]:
        return [server_event_to_ga(e) for e in super().decode(frame)]


class OpenAI(Provider):
    """OpenAI's Realtime API (GA; `protocol: beta` for legacy servers)."""

    name = "openai"
    default_url = OPENAI_REALTIME_URL
    key_env = "OPENAI_API_KEY"
    protocols = ("ga", "beta")

    def codec(self, profile: RunnerProfile) -> Codec:
        return BetaCodec() if profile.protocol == "beta" else Codec()

    def headers(self, profile: RunnerProfile) -> dict[str, str]:
        return {"OpenAI-Beta": "realtime=v1"} if profile.protocol == "beta" else {}

    def efforts_for(self, model: str) -> tuple[str, ...]:
        return sdk_efforts() if model.startswith(REASONING_MODELS) else ()

    def check_profile(self, profile: RunnerProfile) -> None:
        super().check_profile(profile)
        check_session_fields(profile.session_fields, f"profile {profile.name}")

    def shutdown(self, model: str) -> Shutdown | None:
        return SHUTDOWNS.get(model)


class Azure(OpenAI):
    """Azure OpenAI's GA ("v1") Realtime API: the endpoint from a variable, the key as `api-key`."""

    name = "azure"
    default_url = None
    key_env = "AZURE_OPENAI_API_KEY"

    def base_url(self, profile: RunnerProfile) -> str:
        if profile.url:
            return profile.url
        variable = profile.endpoint_env or "AZURE_OPENAI_ENDPOINT"
        endpoint = os.environ.get(variable, "").strip()
        if not endpoint:
            raise UserError(f"{variable} is not set: the {profile.name} profile needs your Azure OpenAI endpoint "
                            f"(export {variable}=https://<resource>.openai.azure.com)")
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        return urlunsplit(("wss", parts.netloc, AZURE_PATH, "", ""))

    def auth_headers(self, profile: RunnerProfile, url: str) -> dict[str, str]:
        if profile.auth_header == "bearer":
            return super().auth_headers(profile, url)
        key = self.key(profile, url)
        return {"api-key": key} if key else {}

    def shutdown(self, model: str) -> Shutdown | None:
        return None  # `model` is a deployment name; Azure's retirement dates are its own


class OpenAICompatible(OpenAI):
    """Any Realtime-compatible server at `--url`; efforts are the SDK's (the server decides what it accepts)."""

    name = "openai-compatible"
    default_url = None
    priced = False

    def efforts_for(self, model: str) -> tuple[str, ...]:
        return sdk_efforts()

    def shutdown(self, model: str) -> Shutdown | None:
        return None


class Local(OpenAICompatible):
    """The embedded reference server, started for the run (`runners/local_server.py`)."""

    name = "local"
    key_env = None
