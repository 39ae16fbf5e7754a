"""The run directory contract: `spec.json`, append-only `samples.jsonl`, `summary.json`.

`samples.jsonl` holds one JSON object per finished sample. Each line is written whole and flushed before the
sample counts as done, so a crash (even `kill -9`) loses at most the samples in flight, and `--resume` skips every
sample already journaled. A last line without its newline (a crash mid-write) is torn: ignored on read and cut on
resume.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from s2s_eval.errors import DataError
from s2s_eval.files import atomic_write_json
from s2s_eval.graders.summary import summarise

SPEC = "spec.json"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"

# Fields every record carries (the contract in ARCHITECTURE.md); extra fields are allowed.
RECORD_FIELDS = ("sample_id", "eval", "model", "status", "error", "correct", "score", "response_text",
                 "latency", "usage", "attempts")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader never sees a half-written file."""
    atomic_write_json(path, data, indent=2, default=str)


def read_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Yield the journaled records of a run; a torn final line (crash mid-write) is skipped."""
    path = Path(run_dir) / SAMPLES
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:  # line by line: a journal can be far larger than memory allows
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):  # only the last line can lack its newline
                # Torn by a crash mid-write, even when its JSON is whole: `Journal.open` cuts such a line, so
                # counting it here would let a resume skip the sample and then lose its record.
                return
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{number}: not a JSON line; the journal is corrupt") from None


def read_spec(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / SPEC
    if not path.exists():
        raise DataError(f"{run_dir}: not a run directory (no {SPEC})")
    return json.loads(path.read_text(encoding="utf-8"))


class Journal:
    """Append-only writer of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None

    def done_ids(self) -> set[str]:
        """Ids of the samples already journaled (for `--resume`)."""
        return {r["sample_id"] for r in read_records(self.run_dir)}

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_json(self.run_dir / SPEC, spec)

    def open(self) -> None:
        path = self.run_dir / SAMPLES
        self._drop_torn_tail(path)
        self._file = path.open("a", encoding="utf-8")

    @staticmethod
    def _drop_torn_tail(path: Path) -> None:
        """Cut a half-written last line left by a crash, so the next append starts on a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("r+b") as f:
            end = f.seek(0, os.SEEK_END)
            position = end
            while position > 0:  # back from the end, a block at a time: the journal may not fit in memory
                start = max(0, position - 65536)
                f.seek(start)
                block = f.read(position - start)
                if position == end and block.endswith(b"\n"):
                    return
                newline = block.rfind(b"\n")
                if newline >= 0:
                    f.truncate(start + newline + 1)
                    return
                position = start
            f.truncate(0)

    def append(self, record: dict[str, Any]) -> None:
        """Append one finished sample and flush it to the OS before returning."""
        missing = [k for k in RECORD_FIELDS if k not in record]
        if missing:
            raise ValueError(f"journal record lacks {missing}")
        assert self._file is not None, "Journal.open() first"
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        # flush() hands the line to the OS, which keeps it through a process crash (kill -9). fsync per sample
        # would also survive power loss but blocks the event loop for milliseconds and skews latency.
        self._file.flush()

    def write_summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        summary = {**summarise(read_records(self.run_dir)), **(extra or {})}
        write_json(self.run_dir / SUMMARY, summary)
        return summary

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
