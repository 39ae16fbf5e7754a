"""Where the project's registries (`runners/`, `evals/`) and caches live."""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """The project folder: `$S2S_HOME`, else the current directory if it holds `runners/`, else the checkout."""
    if os.environ.get("S2S_HOME"):
        return Path(os.environ["S2S_HOME"]).resolve()
    cwd = Path.cwd()
    if (cwd / "runners").is_dir() and (cwd / "evals").is_dir():
        return cwd
    return _CHECKOUT


def cache_dir() -> Path:
    """Local cache of downloaded data and synthesised audio: `$S2S_CACHE_DIR`, else `<home>/datasets`."""
    return Path(os.environ.get("S2S_CACHE_DIR") or home() / "datasets").resolve()


def registry(kind: str) -> Path:
    """The folder of YAML registries of one kind (`runners` or `evals`)."""
    return home() / kind
