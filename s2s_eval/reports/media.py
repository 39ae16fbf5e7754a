"""Audio for the report's drill-down: copied into a folder beside the HTML, so the page plays it offline.

Output audio is what the run kept (`output_audio`, a path inside the run directory). A run keeps a question clip
(`input_audio`) only when the TTS cache cannot reproduce it (perturbed, a voice mix, an official recording);
otherwise the spoken question is looked up in the TTS cache: the run's `spec.json` holds its eval spec and
TTS settings, the local dataset gives each sample's question text, and the synthesiser maps text to its cached
clip. That works only where the dataset is on disk and the cache still holds clips made with the same engine
version; otherwise each run says why it has no input audio, and the page shows that reason instead of a player.

File names in the folder are made here (a slug plus a hash of the sample id), never taken from run data. A path
the journal names is copied only when it resolves (symlinks followed) to a regular file inside the run directory:
a published report must never carry `../../secret` or `/etc/passwd` because a journal said so. Such a record shows
"audio unavailable" with the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2s_eval.errors import UserError
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


def _cache_lookup(run: Run, data_dir: Path | None) -> tuple[Callable[[dict[str, Any]], Path | None], Path]:
    """A function from a record to its question's clip in the TTS cache (None: not there), and the cache folder.

    Raises UserError with the reason when the lookup is impossible for the whole run.
    """
    from s2s_eval.datasets import load_samples
    from s2s_eval.datasets.spec import EvalSpec
    from s2s_eval.speech.tts import Synthesizer

    spec = run.spec
    dataset = spec.get("dataset") or {}
    local = Path(dataset["location"]) if dataset.get("kind") == "local" and dataset.get("location") else None
    folder = data_dir or (local if local and local.is_dir() else None)
    if folder is None:
        raise UserError("the run read its dataset online; pass the report --data-dir to find the questions")
    try:
        eval_spec = EvalSpec(**spec["eval"])
    except Exception as exc:  # a spec written by another harness version
        raise UserError(f"its eval spec cannot be read ({type(exc).__name__})") from None
    samples, _ = load_samples(eval_spec, folder)
    texts = {s.sample_id: s.prompt_text for s in samples}
    synths: dict[str, Any] = {}

    def synth_for(voice: str | None) -> Any:
        label = voice or eval_spec.tts.voice
        if label not in synths:  # voice mixes speak each sample with one voice
            synths[label] = Synthesizer(eval_spec.tts.for_voice(label) if voice else eval_spec.tts)
        return synths[label]

    def lookup(record: dict[str, Any]) -> Path | None:
        text = texts.get(str(record.get("sample_id")))
        if text is None:
            return None
        synth = synth_for(record.get("voice") if isinstance(record.get("voice"), str) else None)
        made_with = {k: v for k, v in (record.get("tts") or spec.get("tts") or {}).items()
                     if k not in ("source", "verification")}
        if made_with and synth.describe() != made_with:  # another engine version: another clip, not cached here
            return None
        return synth.path(text)

    return lookup, synth_for(None).root


def _input_clips(run: Run, data_dir: Path | None, media: RunMedia) -> tuple[dict[str, Path], str]:
    """Each sample's question clip: kept in the run directory (`input_audio`), else found in the TTS cache."""
    clips: dict[str, Path] = {}
    for r in run.records:
        path, refused = contained_file(run.run_dir, r.get("input_audio"))
        if path is not None:
            clips[str(r["sample_id"])] = path
        elif refused:
            media.unavailable[(str(r["sample_id"]), "in")] = refused
    missing = [r for r in run.records
               if str(r.get("sample_id")) not in clips and (str(r.get("sample_id")), "in") not in media.unavailable]
    if not missing:
        return clips, ""
    which = "" if not clips else f" for {len(missing)} samples"
    try:
        lookup, root = _cache_lookup(run, data_dir)
        for record in missing:
            path = lookup(record)
            if path is not None and path.is_file():
                clips[str(record["sample_id"])] = path
    except UserError as exc:
        return clips, f"no input audio{which}: the run keeps none, and {exc}"
    except Exception as exc:  # a missing dataset file, an uninstalled TTS engine: say so, keep the report
        return clips, f"no input audio{which}: the run keeps none, and the TTS cache lookup failed ({exc})"
    found = len(clips) - (len(run.records) - len(missing))
    if found < len(missing):
        return clips, (f"no input audio for {len(missing) - found} samples: not kept in the run, and not in the TTS "
                       f"cache ({root}) with this engine version")
    return clips, ""


def collect(runs: Sequence[Run], out_html: Path, *, data_dir: Path | None = None,
            inputs: bool = True) -> list[RunMedia]:
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
            clips, media.input_note = _input_clips(run, data_dir, media)
            for sample_id, source in clips.items():
                # Cache paths are content-addressed: runs that heard the same clip share one file here too.
                target = folder / "input" / f"{hashlib.sha256(str(source).encode()).hexdigest()[:16]}.wav"
                _place(source, target)
                media.input[sample_id] = target.relative_to(out_html.parent).as_posix()
        else:
            media.input_note = "no input audio: not looked up (--no-input-audio)"
        found.append(media)
    return found
