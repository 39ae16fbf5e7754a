"""JSON and base64 for Realtime frames, on the runner's and the reference server's hot paths.

orjson parses a 100 ms audio frame in about a third of the time `json` takes and serialises one in a twentieth;
pybase64's strict decode is about twenty times faster than `base64`'s (`benchmarks/latency_scale.py` and the
issue 17 note give the CPU per session). Whatever the fast libraries refuse falls back to the standard library,
so a malformed frame fails exactly as before, with `json`'s error, and what `json` accepts beyond strict JSON
(NaN, integers wider than 64 bits, lone surrogates) still reads as before.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

import orjson
import pybase64

__all__ = ["B64", "b64decode", "b64decode_strict", "b64encode", "dumps", "loads"]


def loads(frame: str | bytes) -> Any:
    """Parse one frame; a malformed one raises `json.JSONDecodeError` (or `UnicodeDecodeError`) as `json.loads`."""
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError:
        return json.loads(frame)  # the standard library's verdict and its error message


def dumps(event: Any) -> str:
    """Serialise one event (compact separators; non-ASCII text as UTF-8, not escaped)."""
    try:
        return orjson.dumps(event).decode("utf-8")
    except TypeError:  # an integer wider than 64 bits, a non-string key: what only `json` writes
        return json.dumps(event)


class B64(str):
    """Base64 text made by `b64encode`: its characters need no escaping in JSON, so a codec may splice it into a
    frame as it is (`providers/_base.py`)."""

    __slots__ = ()


def b64encode(data: bytes) -> B64:
    return B64(pybase64.b64encode(data).decode("ascii"))


def b64decode(data: str | bytes) -> bytes:
    """Decode leniently (characters outside the alphabet are skipped), as `base64.b64decode` does by default."""
    return pybase64.b64decode(data)


def b64decode_strict(data: str | bytes) -> bytes:
    """Decode, refusing anything that is not base64 (`binascii.Error`, a ValueError), as `validate=True` does."""
    try:
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        import base64  # noqa: PLC0415

        return base64.b64decode(data, validate=True)  # the standard library's verdict (and error) on odd input
