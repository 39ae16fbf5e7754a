"""URL helpers shared by providers."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from s2s_eval.errors import UserError


def with_model(url: str, model: str, parameter: str = "model") -> str:
    """`url` with `?model=<model>` unless it already names one; only ws:// and wss:// URLs are accepted."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise UserError(f"the endpoint must be a ws:// or wss:// URL, got {url!r}")
    query = dict(parse_qsl(parts.query))
    if parameter:
        query.setdefault(parameter, model)
    return urlunsplit(parts._replace(query=urlencode(query)))
