"""What a provider is: the one place that knows a vendor's URL, authentication, wire protocol and event names.

The runner speaks one vocabulary, the OpenAI GA Realtime events (brief §2), which the session machine reads and
writes as plain dicts. A provider translates at the socket, in both directions, with a `Codec` made per session:

- `Codec.opened()`: events to feed the machine as soon as the connection is up (a protocol whose server speaks
  only after the client's set-up message, like Gemini Live, announces a synthetic `session.created` here);
- `Codec.encode(event)`: a GA client event → zero or more wire frames (text or bytes);
- `Codec.decode(frame)`: one wire frame → zero or more normalised GA server events. These are the runner's
  normalised events: audio delta (`response.output_audio.delta`), transcript delta, function call
  (`response.output_item.done` with a `function_call` item), usage (`response.done.response.usage`), and
  `error` with the `type`/`code` that `runners/errors.classify_error` turns into a failure class;
- `Codec.closed(code, reason)`: a WebSocket close → a failure kind, for protocols that report errors as close
  codes (Gemini's 1007/1008/1011);
- `Codec.replies()`: events the codec answers itself for what it just sent, where the vendor sends no
  acknowledgement (Gemini has no `input_audio_buffer.committed`); the client feeds them to the machine after the send;
- `Codec.session_headers(metadata)`: handshake headers of one session (the reference server's
  `X-S2S-Sample-Id` for a protocol with no per-request metadata).

Codecs do no I/O, so they are tested with plain dicts. The session state machine, grading, journal and reports never
see a vendor's own shapes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any, ClassVar

from s2s_eval import jsonwire
from s2s_eval.errors import UserError
from s2s_eval.hosts import is_loopback
from s2s_eval.providers._urls import with_model

if TYPE_CHECKING:
    from s2s_eval.runners.profile import RunnerProfile

Frame = str | bytes


@dataclasses.dataclass(frozen=True)
class Shutdown:
    """A model's announced shutdown: the date (ISO) and the vendor's recommended replacement, with the source."""

    date: str
    replacement: str | None
    source: str

    def warning(self, model: str) -> str:
        instead = f"; the recommended replacement is {self.replacement}" if self.replacement else ""
        return f"warning: {model} has an announced shutdown on {self.date}{instead} ({self.source})"


_APPEND_KEYS = ("type", "event_id", "audio")


def _append_frame(event: dict[str, Any]) -> str | None:
    """`json.dumps(event)` of an audio append whose audio is `jsonwire.B64` text, without a JSON pass over the
    audio: the bulk of what a session sends, and base64 needs no escaping. None for any other event."""
    if tuple(event) != _APPEND_KEYS or type(event["audio"]) is not jsonwire.B64 \
            or event["type"] != "input_audio_buffer.append":
        return None
    event_id = json.dumps(event["event_id"])
    return f'{{"type": "input_audio_buffer.append", "event_id": {event_id}, "audio": "{event["audio"]}"}}'


class Codec:
    """Translation between GA events and one vendor's frames for one session. This base class is GA itself."""

    def opened(self) -> list[dict[str, Any]]:
        """Events the machine sees as soon as the connection is open (none for GA: the server speaks first)."""
        return []

    def encode(self, event: dict[str, Any]) -> list[Frame]:
        """A GA client event as the frames to send."""
        return [_append_frame(event) or json.dumps(event)]

    def decode(self, frame: Frame) -> list[dict[str, Any]]:
        """One received frame as normalised GA server events; a malformed frame raises ValueError."""
        event = jsonwire.loads(frame)
        if not isinstance(event, dict):
            raise ValueError("not a JSON object")
        return [event]

    def closed(self, code: int | None, reason: str) -> tuple[str, str] | None:
        """A close frame as (failure kind, message); None: an ordinary disconnect."""
        return None

    def replies(self) -> list[dict[str, Any]]:
        """Events answered locally for the frames encoded so far (taken once); GA's server answers everything."""
        return []

    def session_headers(self, metadata: dict[str, str]) -> dict[str, str]:
        """Handshake headers for one session, from the plan's metadata (GA names the sample in each request)."""
        return {}


class Provider:
    """One vendor protocol. Subclasses are listed once in `_registry.PROVIDERS` and imported only when used.

    A subclass sets `name`, `default_url` and `key_env`, and overrides what differs from OpenAI GA: `endpoint`,
    `auth_headers`, `codec`, `session_update` (the GA session as the vendor wants it), `efforts` (the reasoning
    efforts it accepts), `check_profile` (validate a profile's extra session fields before any connection) and
    `shutdown` (announced shutdowns of its models).
    """

    name: ClassVar[str] = ""
    transport: ClassVar[str] = "websocket"  # Nova Sonic: "http2" (Bedrock's bidirectional stream), see README
    default_url: ClassVar[str | None] = None
    key_env: ClassVar[str | None] = None
    efforts: ClassVar[tuple[str, ...]] = ()  # reasoning efforts this provider's API accepts; () = none
    protocols: ClassVar[tuple[str, ...]] = ("ga",)  # the profile `protocol:` shapes it speaks
    priced: ClassVar[bool] = True  # does the vendor publish per-token prices for `pricing.py`?
    # Does the server acknowledge a manual turn's end before the client asks for the answer (GA's
    # `input_audio_buffer.committed`)? Without one, manual turns upload at real time by default (run.py).
    acknowledges_turn_end: ClassVar[bool] = True

    # -- connection -------------------------------------------------------------------------------------------

    def base_url(self, profile: RunnerProfile) -> str:
        if profile.url:
            return profile.url
        if self.default_url:
            return self.default_url
        raise UserError(f"profile {profile.name!r} needs an endpoint: pass --url ws://HOST:PORT/v1/realtime")

    def endpoint(self, profile: RunnerProfile, url_override: str | None) -> str:
        """The WebSocket URL, with the `model` query parameter."""
        return with_model(url_override or self.base_url(profile), profile.model)

    def key(self, profile: RunnerProfile, url: str) -> str | None:
        """The API key from the profile's variable; a missing key stops the run in one line naming it, except for
        loopback URLs (a local server needs none)."""
        variable = profile.auth_env or self.key_env
        if not variable:
            return None
        key = os.environ.get(variable, "").strip()
        if key or is_loopback(url):
            return key or None
        raise UserError(f"{variable} is not set: the {profile.name} profile needs an API key "
                        f"(export {variable}=...), or run offline with --model local")

    def auth_headers(self, profile: RunnerProfile, url: str) -> dict[str, str]:
        key = self.key(profile, url)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def headers(self, profile: RunnerProfile) -> dict[str, str]:
        """Protocol headers that are not secrets (OpenAI beta's `OpenAI-Beta`)."""
        return {}

    def codec(self, profile: RunnerProfile) -> Codec:
        return Codec()

    # -- session ----------------------------------------------------------------------------------------------

    def session_update(self, profile: RunnerProfile, session: dict[str, Any]) -> dict[str, Any]:
        """The GA session the runner built, with the profile's reasoning effort and extra session fields."""
        out = {**session, **profile.session_fields}
        if profile.reasoning_effort:
            out["reasoning"] = {"effort": profile.reasoning_effort}
        return out

    def check_profile(self, profile: RunnerProfile) -> None:
        """Refuse, in one line, a profile this provider cannot run (an effort it does not take, a mistyped field)."""
        if profile.protocol not in self.protocols:
            raise UserError(f"{profile.name}: protocol {profile.protocol!r} is not spoken by the {self.name} provider "
                            f"({', '.join(self.protocols)})")
        if profile.reasoning_effort and profile.reasoning_effort not in self.efforts_for(profile.model):
            allowed = self.efforts_for(profile.model)
            raise UserError(f"{profile.name}: reasoning effort {profile.reasoning_effort!r} is not accepted by "
                            f"{profile.model} ({self.name}); "
                            + (f"choose one of {', '.join(allowed)}" if allowed else "it is not a reasoning model"))

    def efforts_for(self, model: str) -> tuple[str, ...]:
        return self.efforts

    def shutdown(self, model: str) -> Shutdown | None:
        return None
