"""Where the built-in registries (`evals/`, `runners/`), the user's own, the outputs and the cache live.

The harness runs the same way from a checkout, an editable install and a wheel installed with pip from any folder:

- Built-ins ship with the code: in a wheel they are package data under `s2s_eval/builtin/` (mapped there at build
  time by `hatch_build.py`); in a checkout or an editable install they are the checkout's top-level folders, the one
  copy that is edited.
- The user's folder (`home()`) is `$S2S_HOME` when set, else the current directory. Its `evals/` and `runners/` add
  to the built-ins and override them by file name; its `runs/` and `datasets/` (the cache) receive the outputs, so
  everything a run writes lands in the folder it was started from unless said otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
_PACKAGED = PACKAGE / "builtin"  # present only in a built wheel
_CHECKOUT = PACKAGE.parent  # the source tree, when the package is imported from one


def home() -> Path:
    """The user's folder: `$S2S_HOME`, else the current directory."""
    if os.environ.get("S2S_HOME"):
        return Path(os.environ["S2S_HOME"]).resolve()
    return Path.cwd().resolve()


def cache_dir() -> Path:
    """Downloaded data and synthesised audio: `$S2S_CACHE_DIR`, else `<home>/datasets`."""
    return Path(os.environ.get("S2S_CACHE_DIR") or home() / "datasets").resolve()


def checkout() -> Path | None:
    """The source checkout the package runs from (a git work tree), or None for an installed wheel."""
    if _PACKAGED.is_dir() or not (_CHECKOUT / ".git").exists():
        return None
    return _CHECKOUT


def builtin(kind: str) -> Path:
    """The built-in registry folder of one kind (`evals` or `runners`), or of the dependency lock (`uv.lock`)."""
    return (_PACKAGED if _PACKAGED.is_dir() else _CHECKOUT) / kind


def user_registry(kind: str) -> Path | None:
    """The user's registry folder of one kind (`<home>/evals`, `<home>/runners`), if it exists and is not the
    built-in folder itself (as when working in the checkout)."""
    folder = home() / kind
    if not folder.is_dir() or folder.resolve() == builtin(kind).resolve():
        return None
    return folder
