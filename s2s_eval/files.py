"""Files written whole or not at all.

Run directories, caches and reports are read while they are written (a report of a running run, a cache shared by
parallel TTS workers and processes) and must survive a crash mid-write. So every file is written under a unique
temporary name beside its destination and renamed over it: a rename within one folder is atomic, a reader sees the
old file or the new one, never half of one, and concurrent writers of the same path do not trample each other's
temporary file (the last rename wins). The temporary file is removed if the write fails.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically; the folder must exist."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` as UTF-8, atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any, **dumps: Any) -> None:
    """Write `data` as one JSON document (UTF-8, non-ASCII kept, a final newline) to `path`, atomically.

    `dumps` goes to `json.dumps` (`indent`, `sort_keys`, `default`).
    """
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, **dumps) + "\n")
