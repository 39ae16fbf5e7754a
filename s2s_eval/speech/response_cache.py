"""A disk cache of paid API replies (judge verdicts, transcriptions), so a rerun does not pay twice.

Each entry is one JSON file named by the SHA-256 of its canonical request, written atomically (unique temporary
name, then rename), so concurrent writers and a crash mid-write never leave a torn entry behind. An unreadable
entry counts as a miss and is overwritten. Entries hold requests and replies only: never headers or keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from s2s_eval.files import atomic_write_json

__all__ = ["ResponseCache", "request_key"]


def request_key(request: Any) -> str:
    """SHA-256 (hex) of `request` as canonical JSON (sorted keys, no whitespace, UTF-8)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Entries under `root/<first two hex digits>/<key>.json`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None if absent or unreadable."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store `entry` under `key`, atomically."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, entry, indent=1)
