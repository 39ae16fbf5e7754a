"""The error a client event can earn: sent as an `error` event, and the session stays usable."""

from __future__ import annotations


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, param: str | None = None,
                 error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.error_type = code, message, param, error_type
