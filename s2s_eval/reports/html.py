"""The HTML report: one self-contained file (no scripts, no external fetches) comparing runs side by side.

All dataset and model text is untrusted. The template environment autoescapes everything, the template never
marks data `|safe`, and a Content-Security-Policy forbids scripts and every fetch except embedded `data:` images,
so a hostile transcript stays text even if an escape were ever missed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from s2s_eval.reports import aggregate, charts

if TYPE_CHECKING:
    import pandas as pd

TEMPLATES = Path(__file__).with_name("templates")
NOT_MEASURED = "not measured"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ms=format_ms, pct=format_pct)
    return env


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_ms(value: float | None) -> str:
    """Milliseconds for display (`1,234` or `42.5`); None is "not measured", never 0 or blank."""
    if _absent(value):
        return NOT_MEASURED
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def format_pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal (`82.8%`); None is "not measured"."""
    return NOT_MEASURED if _absent(value) else f"{value * 100:.1f}%"


def _when(iso_time: Any) -> str:
    """An ISO time as `2025-08-29 10:00:00 UTC`; anything unparsable is shown as it was written."""
    try:
        when = dt.datetime.fromisoformat(str(iso_time))
    except ValueError:
        return str(iso_time or "")
    return (when.astimezone(dt.UTC) if when.tzinfo else when).strftime("%Y-%m-%d %H:%M:%S") + (
        " UTC" if when.tzinfo else "")


def _run_facts(run: aggregate.Run) -> dict[str, Any]:
    spec = run.spec
    model, harness, tts = spec.get("model") or {}, spec.get("harness") or {}, spec.get("tts") or {}
    return {
        "run_id": run.run_id, "label": run.label, "model_id": model.get("model") or "",
        "provider": model.get("provider") or "", "description": model.get("description") or "",
        "eval": run.eval_name, "samples": len(run.records),
        "started_at": _when(spec.get("started_at")), "harness": harness.get("version") or "",
        "git_commit": (harness.get("git_commit") or "")[:10],
        "tts": " / ".join(str(tts[k]) for k in ("engine", "voice") if tts.get(k)),
    }


def _category_sections(frame: pd.DataFrame, labels: list[str], colours: dict[str, str]) -> list[dict[str, Any]]:
    """Per eval: the category × model table and its chart."""
    sections = []
    for eval_name, part in frame.groupby("eval", sort=False):
        pivot = aggregate.accuracy_pivot(part, labels)
        cells = {(row.category, row.label): row for row in part.itertuples(index=False)}
        rows = [{"category": category, "overall": category == aggregate.OVERALL,
                 "cells": [cells.get((category, label)) for label in pivot.columns]} for category in pivot.index]
        chart = charts.accuracy_chart(pivot, colours, f"{eval_name}: accuracy by category", aggregate.OVERALL)
        sections.append({"eval": eval_name, "labels": list(pivot.columns), "rows": rows,
                         "chart_uri": charts.data_uri(chart)})
    return sections


def render_report(runs: Sequence[aggregate.Run], generated_at: dt.datetime | None = None) -> str:
    """The report page of already loaded runs, as an HTML string."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    labels = [run.label for run in runs]
    colours = charts.model_colours(labels)
    groups = aggregate.groups(runs)
    evals = list(dict.fromkeys(g.eval for g in groups))
    names = list(dict.fromkeys(run.name for run in runs))
    title = f"{', '.join(evals)}: {' vs '.join(names) if len(names) <= 3 else f'{len(names)} models'}"
    return _environment().get_template("report.html.j2").render(
        title=title,
        generated_at=generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        runs=[_run_facts(run) for run in runs],
        colours=colours,
        # A label shows as its model name plus, where needed, the run id that tells it apart (set in lighter type).
        label_parts={run.label: (run.name, run.label[len(run.name):].strip()) for run in runs},
        groups=groups,
        latency_fields=(("ttfa_ms", "TTFA"), ("ttft_ms", "TTFT"), ("total_ms", "Total")),
        sections=_category_sections(aggregate.category_frame(groups), labels, colours),
        samples=aggregate.sample_rows(runs),
    )


def build_report(run_dirs: Sequence[Path], out: Path) -> Path:
    """Write one self-contained HTML report comparing the given run directories; return its path.

    Metrics are recomputed from each run's `samples.jsonl` (a crashed run has no `summary.json`). The file is
    written whole to a temporary name and renamed, so a reader never sees half a report.
    """
    html = render_report(aggregate.load_runs(run_dirs))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
