"""Atomic writes (`s2s_eval/files.py`): whole files only, nothing left behind, concurrent writers of one path."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from s2s_eval.files import atomic_write_bytes, atomic_write_json, atomic_write_text


def test_each_writer_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    atomic_write_text(path, "old")
    atomic_write_json(path, {"answer": "é", "n": 1}, indent=2)
    assert path.read_text(encoding="utf-8") == '{\n  "answer": "é",\n  "n": 1\n}\n'
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()})  # not serialisable: fails before anything is written
    assert json.loads(path.read_text()) == {"v": 1}
    occupied = tmp_path / "report.html"
    (occupied / "media").mkdir(parents=True)
    with pytest.raises(OSError):
        atomic_write_text(occupied, "<html>")  # written, then the rename fails: a folder holds the name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "summary.json"]


def test_concurrent_writers_of_one_path_leave_one_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write_bytes, args=(path, p)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["clip.wav"]
