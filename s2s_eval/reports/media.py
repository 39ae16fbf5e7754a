"""Audio for the report's drill-down: copied into a folder beside the HTML, so the page plays it offline.

Everything comes from the run's log, never from the dataset or the TTS engine: output audio is what the run kept
(`output_audio`), and each spoken question is the record's `input_clip` (kept in the run directory, or in the
audio cache for runs made with `--no-audio`; schema-0 runs name kept clips in `input_audio`). A clip is checked
against the content hash the record gives, so a cache that changed since the run never plays the wrong question.

File names in the folder are made here (a slug plus a hash of the sample id), never taken from run data. A path
the journal names is copied only when it resolves (symlinks followed) to a regular file inside the run directory
(or, for a cache clip, the cache): a published report must never carry `../../secret` or `/etc/passwd` because a
journal said so. Such a record shows "audio unavailable" with the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2s_eval import audio, paths
from s2s_eval.log import contained_file
from s2s_eval.reports.aggregate import Run


@dataclass
class RunMedia:
    """Where one run's clips went (paths relative to the HTML file) and why input clips are missing, if they are."""

    output: dict[str, str] = field(default_factory=dict)
    input: dict[str, str] = field(default_factory=dict)
    input_note: str = ""
    output_note: str = ""
    # Per-sample reasons for a clip the journal names but the report will not copy.
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)  # (sample id, "in"/"out") → reason


def media_dir(out_html: Path) -> Path:
    """The folder beside `out_html` that holds its audio: `index.html` → `index_media/`."""
    return out_html.with_name(f"{out_html.stem}_media")


def _file_name(sample_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", sample_id).strip(".-")[:48] or "sample"
    return f"{slug}-{hashlib.sha256(sample_id.encode('utf-8')).hexdigest()[:10]}.wav"


def _place(source: Path, target: Path) -> None:
    """Hard-link `source` at `target` (instant, no extra space), else copy it; an identical file is left alone."""
    if target.exists():
        if target.stat().st_size == source.stat().st_size:
            return
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def _input_clip(run: Run, record: dict[str, Any]) -> tuple[Path | None, str]:
    """The question clip a record names, or None with why it is not there ("" when it names none)."""
    clip = record.get("input_clip")
    if clip is None:  # typed input, or a schema-0 run: only a kept clip can be found
        return contained_file(run.run_dir, record.get("input_audio"))
    if clip["kept"] is None:
        return None, "audio unavailable: the run kept no copy of this clip (--no-audio)"
    root = run.run_dir if clip["kept"] == "run" else paths.cache_dir()
    path, refused = contained_file(root, clip["path"])
    if path is None:
        return None, refused or "audio unavailable: the clip is gone"
    if hashlib.sha256(audio.read_wav(path)).hexdigest() != clip["sha256"]:
        return None, "audio unavailable: the file there now is not the clip the model heard"
    return path, ""


def _input_clips(run: Run, media: RunMedia) -> tuple[dict[str, Path], str]:
    """Each sample's question clip, as its record names it; a note when the run has none at all."""
    clips: dict[str, Path] = {}
    for record in run.records:
        path, refused = _input_clip(run, record)
        if path is not None:
            clips[str(record["sample_id"])] = path
        elif refused:
            media.unavailable[(str(record["sample_id"]), "in")] = refused
    if clips or media.unavailable:
        return clips, ""
    spoken = any(r.get("modality") is None or r["modality"].get("input") != "text" for r in run.records)
    return clips, ("no input audio: the run keeps no question clips (made before they were kept)" if spoken
                   else "no input audio: the questions were typed (--input text)")


def collect(runs: Sequence[Run], out_html: Path, *, inputs: bool = True) -> list[RunMedia]:
    """Place every run's output clips, and the input clips found, beside `out_html`; one RunMedia per run."""
    folder = media_dir(out_html)
    found = []
    for index, run in enumerate(runs, 1):
        media = RunMedia()
        for record in run.records:
            source, refused = contained_file(run.run_dir, record.get("output_audio"))
            if source is None:
                if refused:
                    media.unavailable[(str(record["sample_id"]), "out")] = refused
                continue
            target = folder / f"run{index}" / _file_name(str(record["sample_id"]))
            _place(source, target)
            media.output[str(record["sample_id"])] = target.relative_to(out_html.parent).as_posix()
        if not media.output:
            media.output_note = "no output audio: the run kept none (run without --no-audio to keep it)"
        if inputs:
            clips, media.input_note = _input_clips(run, media)
            for sample_id, source in clips.items():
                # Cache paths are content-addressed: runs that heard the same clip share one file here too.
                target = folder / "input" / f"{hashlib.sha256(str(source).encode()).hexdigest()[:16]}.wav"
                _place(source, target)
                media.input[sample_id] = target.relative_to(out_html.parent).as_posix()
        else:
            media.input_note = "no input audio: not looked up (--no-input-audio)"
        found.append(media)
    return found
