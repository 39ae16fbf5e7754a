"""The HTML report: one self-contained file comparing runs side by side, with its audio in a folder beside it.

All dataset and model text is untrusted. The template environment autoescapes everything and never marks run
data `|safe`; the drill-down data sits in an inert JSON block whose `<`, `>` and `&` are escaped; the page's one
script builds the drill-down with `textContent` only. A Content-Security-Policy allows exactly that script (by its
hash), embedded `data:` images and the audio folder, so a hostile transcript stays text even if an escape were
ever missed. No CDN, no fetch: the page works offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from s2s_eval.files import atomic_write_text
from s2s_eval.reports import aggregate, charts, charts_latency, conditions, drilldown, dynamics, media, pairwise, stats

if TYPE_CHECKING:
    import pandas as pd

TEMPLATES = Path(__file__).with_name("templates")
NOT_MEASURED = "not measured"
LATENCY_COLUMNS = (("ttfa_ms", "TTFA", (50, 90, 99)), ("ttft_ms", "TTFT", (50, 90)), ("total_ms", "Total", (50, 90)))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ms=format_ms, pct=format_pct, usd=format_usd, metric=format_metric,
                       cost=lambda v: "not priced" if _absent(v) else format_usd(v))
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


def format_usd(value: float | None) -> str:
    """Dollars with enough decimals for a fraction of a cent; None is "not measured"."""
    if _absent(value):
        return NOT_MEASURED
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}"


def format_metric(value: float | None) -> str:
    """A metric mean in its own units (WER, a 0–2 score, a share): three significant decimals."""
    return NOT_MEASURED if _absent(value) else f"{value:.3f}"


def _when(iso_time: Any) -> str:
    """An ISO time as `2025-08-29 10:00:00 UTC`; anything unparsable is shown as it was written."""
    when = aggregate.parse_time(iso_time)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else str(iso_time or "")


def _run_facts(run: aggregate.Run, run_media: media.RunMedia | None) -> dict[str, Any]:
    spec = run.spec
    model, harness, tts = spec.get("model") or {}, spec.get("harness") or {}, spec.get("tts") or {}
    dataset = spec.get("dataset") or {}
    revision = dataset.get("revision") or ""
    if dataset.get("content_sha256"):
        revision = f"{revision} · sha256 {str(dataset['content_sha256'])[:10]}".strip(" ·")
    return {
        "run_id": run.run_id, "label": run.label, "model_id": model.get("model") or "",
        "provider": model.get("provider") or "", "description": model.get("description") or "",
        "eval": run.eval_name, "samples": len(run.records),
        "started_at": _when(spec.get("started_at")), "harness": harness.get("version") or "",
        "git_commit": (harness.get("git_commit") or "")[:10],
        "tts": " / ".join(str(tts[k]) for k in ("engine", "voice", "engine_version") if tts.get(k)),
        "concurrency": run.concurrency, "dataset": revision,
        "condition": run.condition.describe(),
        "audio_notes": [n for n in (run_media.output_note, run_media.input_note) if n] if run_media else [],
        "audio_counts": (len(run_media.output), len(run_media.input)) if run_media else (0, 0),
    }


def current_groups(groups: Sequence[aggregate.Group]) -> list[aggregate.Group]:
    """The groups the comparison charts show: per model and eval, the runs of its latest day.

    Older days of the same model under the same condition are history: the trend chart shows them. Runs of one day
    (a concurrency or perturbation sweep, repeats) and runs under other conditions (modality, level) all stay.
    """
    latest: dict[tuple[str, str, conditions.Condition], dt.date] = {}
    for g in groups:
        if g.started_at is not None:
            key = (g.name, g.eval, g.condition)
            latest[key] = max(latest.get(key, g.started_at.date()), g.started_at.date())
    return [g for g in groups
            if g.started_at is None or g.started_at.date() == latest[(g.name, g.eval, g.condition)]]


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


def _headline_chart(groups: Sequence[aggregate.Group], colours: dict[str, str]) -> str:
    panels: dict[str, list[charts.Bar]] = defaultdict(list)
    for g in groups:
        ci = g.accuracy_ci
        panels[g.eval].append(charts.Bar(g.label, g.summary["accuracy"], ci.low if ci else None,
                                         ci.high if ci else None))
    return charts.data_uri(charts.headline_chart(dict(panels), colours))


def _latency_charts(groups: Sequence[aggregate.Group], colours: dict[str, str]) -> dict[str, str | None]:
    """CDF of TTFA per model and accuracy vs TTFA; a chart is None when nothing in it was measured."""
    several_evals = len({g.eval for g in groups}) > 1
    out: dict[str, str | None] = {"cdf": None, "scatter": None}
    series = [charts_latency.Series(f"{g.label} · {g.eval}" if several_evals else g.label, colours[g.label],
                                    g.ttfa_ms, dashed=several_evals and i % 2 == 1)
              for i, g in enumerate(groups) if g.ttfa_ms]
    if series:
        out["cdf"] = charts.data_uri(charts_latency.cdf_chart(series, "Time to first audio: cumulative share"))
    points = [charts_latency.Point(g.label, g.eval, colours[g.label], g.summary["latency"]["ttfa_ms"]["p50"],
                                   g.summary["accuracy"], g.accuracy_ci.low if g.accuracy_ci else None,
                                   g.accuracy_ci.high if g.accuracy_ci else None)
              for g in groups
              if g.summary["accuracy"] is not None and g.summary["latency"]["ttfa_ms"]["p50"] is not None]
    if points:
        out["scatter"] = charts.data_uri(charts_latency.scatter_chart(points, "Accuracy vs time to first audio"))
    return out


def _concurrency_chart(groups: Sequence[aggregate.Group], name_colours: dict[str, str]) -> str | None:
    """TTFA against concurrency per model and eval, when the runs differ in concurrency; else None.

    Models measured at two or more levels get a line; when none was, every model shows its single level.
    """
    if len({g.concurrency for g in groups if g.concurrency is not None}) < 2:
        return None
    by_model: dict[tuple[str, str], dict[int, list[aggregate.Group]]] = defaultdict(lambda: defaultdict(list))
    for g in groups:
        if g.concurrency is not None:
            by_model[(g.name, g.eval)][g.concurrency].append(g)
    swept = {key: levels for key, levels in by_model.items() if len(levels) > 1} or by_model
    several_evals = len({e for _, e in swept}) > 1
    lines = []
    for (name, eval_name), levels in swept.items():
        points = []
        for level in sorted(levels):
            latest = max(levels[level], key=lambda g: g.started_at or dt.datetime.min.replace(tzinfo=dt.UTC))
            ttfa = latest.summary["latency"]["ttfa_ms"]
            points.append((level, ttfa["p50"], ttfa["p90"]))
        lines.append((f"{name} · {eval_name}" if several_evals else name, name_colours[name], points))
    return charts.data_uri(charts_latency.concurrency_chart(lines, "Time to first audio vs concurrency"))


def _trend_charts(groups: Sequence[aggregate.Group], name_colours: dict[str, str]) -> list[dict[str, str]]:
    """Per eval, accuracy and TTFA over dated runs of each model and concurrency that ran at least twice.

    Runs of one model at different concurrency, modality or perturbation level are a sweep, not a history: each
    is its own series.
    """
    Key = tuple[str, int | None, conditions.Condition]
    by_eval: dict[str, dict[Key, list[aggregate.Group]]] = defaultdict(lambda: defaultdict(list))
    for g in groups:
        if g.started_at is not None:
            by_eval[g.eval][(g.name, g.concurrency, g.condition)].append(g)
    out = []
    for eval_name, models in by_eval.items():
        variants: dict[str, set[Key]] = defaultdict(set)
        for key in models:
            variants[key[0]].add(key)
        series = []
        for (name, level, condition), runs in models.items():
            if len({g.started_at for g in runs}) < 2:
                continue
            points = [charts_latency.TrendPoint(
                g.started_at, g.summary["accuracy"], g.accuracy_ci.low if g.accuracy_ci else None,
                g.accuracy_ci.high if g.accuracy_ci else None, g.summary["latency"]["ttfa_ms"]["p50"])
                for g in runs if g.started_at is not None]
            label = name
            if len({k[1] for k in variants[name]}) > 1:
                label += f" · concurrency {level}"
            if len({k[2] for k in variants[name]}) > 1:
                label += f" · {condition.describe()}"
            series.append((label, name_colours[name], points))
        if series:
            chart = charts_latency.trend_chart(series, f"{eval_name}: accuracy and TTFA over time")
            out.append({"eval": eval_name, "uri": charts.data_uri(chart), "runs": sum(len(s[2]) for s in series)})
    return out


def _rate_cell(rate: dynamics.Rate) -> dict[str, Any]:
    if rate.n == 0:
        return {"text": NOT_MEASURED}
    ci = rate.ci
    return {"text": format_pct(rate.estimate), "sub": f"{rate.hits}/{rate.n}",
            "ci": f"95% CI {format_pct(ci.low)}–{format_pct(ci.high)}" if ci else "", "method": ci.method if ci else ""}


def _quantile_cell(quantiles: dynamics.Quantiles, interval: stats.Interval | None) -> dict[str, Any]:
    if quantiles.n == 0 or interval is None:
        return {"text": NOT_MEASURED}
    return {"text": f"{format_ms(interval.estimate)} ms", "sub": f"n={quantiles.n}",
            "ci": f"95% CI {format_ms(interval.low)}–{format_ms(interval.high)}", "method": interval.method}


def _dynamics_section(figures: Sequence[dynamics.DynamicsFigures], colours: dict[str, str]) -> dict[str, Any] | None:
    """The conversational dynamics table (a row per figure, a column per run) and the yield latency CDF; None
    when no run has dynamics records."""
    if not figures:
        return None
    rows: list[dict[str, Any]] = [
        {"key": "scenarios", "name": "Scenarios run", "cells": [
            {"text": " · ".join(f"{s} {n}" for s, n in f.scenarios.items() if n) or NOT_MEASURED} for f in figures]},
        {"key": "policy", "name": "Playback policy", "cells": [{"text": f.policy or NOT_MEASURED} for f in figures]},
        {"key": "max_pause", "name": "Max pause (ms)",
         "cells": [{"text": format_ms(f.max_pause_ms)} for f in figures]},
    ]
    for key, name, _ in figures[0].rates():
        rows.append({"key": key, "name": name, "rate": True,
                     "cells": [_rate_cell(next(r for k, _, r in f.rates() if k == key)) for f in figures]})
    for key, name, _ in figures[0].latencies():
        for p in ("p50", "p90"):
            cells = []
            for f in figures:
                q = next(q for k, _, q in f.latencies() if k == key)
                cells.append(_quantile_cell(q, getattr(q, p)))
            rows.append({"key": f"{key}_{p}", "name": f"{name} {p}", "cells": cells,
                         "indent": key in {f"yield_{kind}" for kind in dynamics.YIELD_KINDS}})
    series = [charts_latency.Series(f.label, colours[f.label], f.yield_latency.values)
              for f in figures if f.yield_latency.values]
    chart = charts.data_uri(charts_latency.cdf_chart(series, "Yield latency: cumulative share",
                                                     "Yield latency: the caller's cue onset → the model's audio stops "
                                                     "(ms)", "Share of yields")) if series else None
    return {"labels": [f.label for f in figures], "rows": rows, "chart_uri": chart,
            "settings": [(f.label, f.policy, f.max_pause_ms, f.frame_ms) for f in figures]}


def _script() -> tuple[str, str]:
    """The page's script and its CSP source (`'sha256-…'`): the only script the page may run."""
    code = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    return code, f"'sha256-{digest}'"


def provider_costs(runs: Sequence[aggregate.Run], groups: Sequence[aggregate.Group]) -> list[dict[str, Any]]:
    """Cost per provider over the report's runs: runs, samples, priced samples, USD and USD per 100 samples.

    A provider none of whose samples is priced shows `None` ("not priced"), never $0.
    """
    rows: dict[str, dict[str, Any]] = {}
    for group in groups:
        provider = runs[group.run_index].provider
        row = rows.setdefault(provider, {"provider": provider, "runs": set(), "samples": 0, "priced": 0, "usd": 0.0})
        cost = group.summary.get("cost") or {}
        row["runs"].add(group.run_index)
        row["samples"] += (group.summary.get("counts") or {}).get("total", 0)
        row["priced"] += cost.get("priced_samples") or 0
        row["usd"] += cost.get("usd") or 0.0
    return [{**row, "runs": len(row["runs"]), "usd": row["usd"] if row["priced"] else None,
             "usd_per_100_samples": 100 * row["usd"] / row["priced"] if row["priced"] else None}
            for row in rows.values()]


def render_report(runs: Sequence[aggregate.Run], generated_at: dt.datetime | None = None,
                  run_media: Sequence[media.RunMedia] | None = None) -> str:
    """The report page of already loaded runs, as an HTML string."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    run_media = list(run_media) if run_media is not None else [media.RunMedia() for _ in runs]
    labels = [run.label for run in runs]
    groups = aggregate.groups(runs)
    current = current_groups(groups)
    current_labels = list(dict.fromkeys(g.label for g in current))
    # The compared (latest) runs take the first colours, so a model's colour matches its trend line's.
    colours = charts.model_colours([*current_labels, *labels])
    name_colours = charts.model_colours([g.name for g in current] + [run.name for run in runs])
    evals = list(dict.fromkeys(g.eval for g in groups))
    names = list(dict.fromkeys(run.name for run in runs))
    title = f"{', '.join(evals)}: {' vs '.join(names) if len(names) <= 3 else f'{len(names)} models'}"
    samples = aggregate.sample_rows(runs)
    script, script_hash = _script()
    has_cfb = any(g.metric(aggregate.SUCCESS_METRICS) or g.metric(aggregate.CALL_ACCURACY_METRICS) for g in groups)
    return _environment().get_template("report.html.j2").render(
        title=title,
        generated_at=generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        runs=[_run_facts(run, m) for run, m in zip(runs, run_media, strict=True)],
        colours=colours,
        model_index={label: i for i, label in enumerate(labels)},
        # A label shows as its model name plus, where needed, the run id that tells it apart (set in lighter type).
        label_parts={run.label: (run.name, run.label[len(run.name):].strip()) for run in runs},
        groups=groups,
        provider_costs=provider_costs(runs, current),
        current=current,
        hidden_history=len(groups) - len(current),
        has_cfb=has_cfb,
        success_metrics=aggregate.SUCCESS_METRICS,
        call_metrics=aggregate.CALL_ACCURACY_METRICS,
        latency_columns=LATENCY_COLUMNS,
        headline_uri=_headline_chart(current, colours),
        sections=_category_sections(aggregate.category_frame(current), current_labels, colours),
        pairwise=pairwise.eval_pairs(current),
        latency_charts=_latency_charts(current, colours),
        dynamics=_dynamics_section(dynamics.run_figures(runs), colours),
        level_sections=conditions.level_sections(current, name_colours),
        modality=conditions.modality_rows(current),
        voice_rows=conditions.voice_rows(current),
        concurrency_uri=_concurrency_chart(groups, name_colours),
        trends=_trend_charts(groups, name_colours),
        samples=samples,
        filter_evals=sorted({r.eval for r in samples}),
        filter_categories=sorted({r.category for r in samples}),
        data=drilldown.json_script(drilldown.payload(samples, run_media)),
        script=Markup(script),  # the project's own file, not run data; CSP allows exactly these bytes
        script_hash=Markup(script_hash),  # base64 and quotes of our own making
    )


def build_report(run_dirs: Sequence[Path], out: Path, *, audio: bool = True, input_audio: bool = True) -> Path:
    """Write one HTML report comparing the given run directories, its audio in a folder beside it; return its path.

    Metrics are recomputed from each run's `samples.jsonl` (a crashed run has no `summary.json`). The file is
    written whole to a temporary name and renamed, so a reader never sees half a report.
    """
    runs = aggregate.load_runs(run_dirs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_media = (media.collect(runs, out, inputs=input_audio) if audio
                 else [media.RunMedia(output_note="no output audio: not copied (--no-audio)",
                                      input_note="no input audio: not copied (--no-audio)") for _ in runs])
    html = render_report(runs, run_media=run_media)
    atomic_write_text(out, html)
    return out
