"""Is an address on this machine? One answer for the runner, the judge and transcription clients, and the server."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(url: str) -> bool:
    """True for URLs (ws, wss, http, https) whose host is on this machine, where an API key is optional."""
    return is_loopback_host(urlsplit(url).hostname or "")
