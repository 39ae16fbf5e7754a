"""The run directory contract: `spec.json`, append-only `samples.jsonl`, `summary.json`.

`samples.jsonl` holds one JSON object per finished sample. Each line is written whole and flushed before the
sample counts as done, so a crash (even `kill -9`) loses at most the samples in flight, and `--resume` skips every
sample already journaled. A last line without its newline (a crash mid-write) is torn: ignored on read and cut on
resume.

Every line is a `SampleRecord` and `spec.json` a `RunSpec`: the writer validates what it writes, the readers
validate what they read (upgrading lines of an earlier schema version) and refuse a newer version in one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from s2s_eval.errors import DataError, UserError
from s2s_eval.files import atomic_write_json
from s2s_eval.graders.summary import summarise
from s2s_eval.log._record import SCHEMA_VERSION, SampleRecord
from s2s_eval.log._spec import RunSpec

SPEC = "spec.json"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"

# Fields every record carries (the contract in ARCHITECTURE.md); extra fields are allowed.
RECORD_FIELDS = ("sample_id", "eval", "model", "status", "error", "correct", "score", "response_text",
                 "latency", "usage", "attempts")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader never sees a half-written file."""
    atomic_write_json(path, data, indent=2, default=str)


def _invalid(where: str, exc: ValidationError) -> DataError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return DataError(f"{where}: not a sample record of schema version {SCHEMA_VERSION} or earlier "
                     f"({field}: {first['msg']})")


def _version(data: dict[str, Any], where: str) -> int:
    version = data.get("schema_version", 0)  # lines and specs written before versioning are version 0
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UserError(f"{where}: written with schema version {version}; this s2s-eval reads versions up to "
                        f"{SCHEMA_VERSION}: upgrade s2s-eval")
    return version


def parse_record(data: Any, where: str) -> SampleRecord:
    """A journal line's object as a `SampleRecord`; lines of an earlier version are upgraded."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: a journal line must be a JSON object")
    version = _version(data, where)
    try:
        record = SampleRecord.model_validate(data)
    except ValidationError as exc:
        raise _invalid(where, exc) from None
    record.schema_version = version
    return record


def _parse_line(line: str, where: str) -> SampleRecord:
    """One journal line, validated straight from its JSON (the fast path, about twice as fast as parsing then
    validating); anything unusual takes the slow path, which says precisely what is wrong."""
    try:
        record = SampleRecord.model_validate_json(line)
    except ValidationError:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{where}: not a JSON line; the journal is corrupt") from None
        return parse_record(data, where)
    if "schema_version" not in record.model_fields_set:
        record.schema_version = 0  # written before versioning
    elif record.schema_version > SCHEMA_VERSION:
        _version({"schema_version": record.schema_version}, where)  # refuses, in one line
    return record


def sample_records(run_dir: Path) -> Iterator[SampleRecord]:
    """Yield the journaled records of a run, typed; a torn final line (crash mid-write) is skipped."""
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
            yield _parse_line(line, f"{path}:{number}")


def read_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The journaled records as validated JSON objects: every field of `SampleRecord` is present."""
    for record in sample_records(run_dir):
        yield record.as_dict()


def run_spec(run_dir: Path) -> RunSpec:
    """A run directory's `spec.json`, validated; one clear line when it is missing, not JSON or not a spec."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    path = run_dir / SPEC
    if not path.exists():
        raise DataError(f"{run_dir}: not a run directory (no {SPEC})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a run spec (a JSON object)")
    version = _version(data, str(path))
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    spec.schema_version = version
    return spec


def read_spec(run_dir: Path) -> dict[str, Any]:
    """`spec.json` as a validated JSON object (see `run_spec` for the typed one)."""
    return run_spec(run_dir).as_dict()


def contained_file(root: Path, named: object) -> tuple[Path | None, str]:
    """The regular file a journal names relative to `root`, or None with why it is refused.

    Absolute paths, `..` escapes and symlinks that lead out of `root` are refused, as are devices, FIFOs and
    folders: only a regular file that really lives under `root` may be copied into a report.
    """
    if not isinstance(named, str) or not named:
        return None, ""
    if Path(named).is_absolute():
        return None, "audio unavailable: the journal names an absolute path"
    base = root.resolve()
    target = (base / named).resolve()
    if not target.is_relative_to(base):
        return None, "audio unavailable: the journal names a path outside the run directory"
    if not target.exists():
        return None, "audio unavailable: the file the journal names is missing"
    if not target.is_file():
        return None, "audio unavailable: the journal names something that is not a regular file"
    return target, ""


class Journal:
    """Append-only writer of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None

    def done_ids(self) -> set[str]:
        """Ids of the samples already journaled (for `--resume`)."""
        return {r.sample_id for r in sample_records(self.run_dir)}

    def write_spec(self, spec: RunSpec | dict[str, Any]) -> None:
        """Write `spec.json` at the current schema version (validated: a malformed spec is a bug, raised here)."""
        model = spec if isinstance(spec, RunSpec) else RunSpec.model_validate(spec)
        write_json(self.run_dir / SPEC, {**model.as_dict(), "schema_version": SCHEMA_VERSION})

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

    def append(self, record: SampleRecord | dict[str, Any]) -> None:
        """Append one finished sample (validated, at the current schema version) and flush it to the OS."""
        model = record if isinstance(record, SampleRecord) else SampleRecord.model_validate(record)
        model = model.model_copy(update={"schema_version": SCHEMA_VERSION})
        assert self._file is not None, "Journal.open() first"
        self._file.write(model.line() + "\n")
        # flush() hands the line to the OS, which keeps it through a process crash (kill -9). fsync per sample
        # would also survive power loss but blocks the event loop for milliseconds and skews latency.
        self._file.flush()

    def write_summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        summary = {**summarise(read_records(self.run_dir)), **(extra or {}), "schema_version": SCHEMA_VERSION}
        write_json(self.run_dir / SUMMARY, summary)
        return summary

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
