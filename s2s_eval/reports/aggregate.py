"""Gather run directories into what a report shows: runs, per-(model, eval) summaries, category accuracy, samples.

Every metric comes from `graders.summary.summarise` over the journal records, never from `summary.json`: a crashed
run has none, and one definition of accuracy and latency percentiles keeps reports and summaries in agreement.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from s2s_eval.errors import UserError
from s2s_eval.graders.summary import summarise
from s2s_eval.log import read_records, read_spec
from s2s_eval.reports import stats
from s2s_eval.reports.conditions import Condition, VoiceAccuracy, by_voice, condition_of

OVERALL = "overall"
# Per-sample metrics ComplexFuncBench's grader reports (averaged in the summary); shown as their own columns.
SUCCESS_METRICS = ("success", "success_rate")
CALL_ACCURACY_METRICS = ("call_accuracy",)


@dataclass(frozen=True)
class Run:
    """One run directory as read for a report; `label` is `name`, made unique within the report if need be."""

    run_dir: Path
    run_id: str
    name: str
    label: str
    spec: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def eval_name(self) -> str:
        return str((self.spec.get("eval") or {}).get("name") or _first(self.records, "eval") or "unknown")

    @property
    def started_at(self) -> dt.datetime | None:
        """When the run started (timezone-aware UTC), or None when its spec does not say."""
        return parse_time(self.spec.get("started_at"))

    @functools.cached_property
    def condition(self) -> Condition:
        """How the run's questions were put: modality and perturbation (from its records, else its spec)."""
        return condition_of(self.records, self.spec)

    @property
    def provider(self) -> str:
        """Who serves the model (`openai`, `azure`, `xai`, ...), from the profile in its spec."""
        return str((self.spec.get("model") or {}).get("provider") or "unknown")

    @property
    def series(self) -> str:
        """What makes runs "the same model" for trends, sweeps and modality tables: the profile name, and the
        reasoning effort when the run set one (the same model at another effort is another series)."""
        return f"{self.name} · effort {self.reasoning_effort}" if self.reasoning_effort else self.name

    @property
    def reasoning_effort(self) -> str | None:
        """The reasoning effort the run asked for; None when it set none (the model's default, or no reasoning)."""
        return (self.spec.get("model") or {}).get("reasoning_effort")

    @property
    def concurrency(self) -> int | None:
        """Sessions at once the run was configured with (`spec.runner.concurrency`)."""
        value = (self.spec.get("runner") or {}).get("concurrency")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Group:
    """The records of one model on one eval, with their summary (from `summarise`) and what charts need."""

    label: str
    eval: str
    summary: dict[str, Any]
    name: str = ""
    run_index: int = 0
    started_at: dt.datetime | None = None
    concurrency: int | None = None
    accuracy_ci: stats.Interval | None = None
    ttfa_ms: tuple[float, ...] = field(default=(), repr=False)
    condition: Condition = Condition()  # modality and perturbation: a sweep's levels are runs of one day
    voices: tuple[VoiceAccuracy, ...] = ()  # accuracy per voice of a voice mix (empty for one voice)
    # sample id -> correct, for samples that ran and were graded: what pairwise comparisons pair on.
    verdicts: Mapping[str, bool] = field(default_factory=dict, repr=False, compare=False)

    @property
    def trials(self) -> dict[str, Any] | None:
        """pass@1, pass@k, pass^k and verdict flips of `--attempts K` (see `stats.repeated_tries`), else None."""
        return self.summary.get("trials")

    def metric(self, names: Sequence[str]) -> dict[str, Any] | None:
        """The first of `names` the summary has a mean for (`{"mean", "n"}`), else None."""
        metrics = self.summary.get("metrics") or {}
        return next((metrics[n] for n in names if n in metrics), None)

    @property
    def other_metrics(self) -> dict[str, dict[str, Any]]:
        """Summary metrics beyond accuracy and the ComplexFuncBench columns (pass@1, judge agreement, ASR WER)."""
        shown = {*SUCCESS_METRICS, *CALL_ACCURACY_METRICS}
        return {k: v for k, v in (self.summary.get("metrics") or {}).items() if k not in shown}


@dataclass(frozen=True)
class SampleRow:
    """One line of the per-sample table, all text still untrusted (the template escapes it)."""

    label: str
    sample_id: str
    eval: str
    category: str
    status: str
    verdict: str
    reason: str
    extracted: str
    target: str
    ttfa_ms: float | None
    response_text: str
    run_index: int = 0
    record: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _first(records: list[dict[str, Any]], key: str) -> Any:
    return next((r[key] for r in records if r.get(key)), None)


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO time as an aware UTC datetime (naive times are taken as UTC); None when absent or unparsable."""
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


def load_runs(run_dirs: Sequence[Path]) -> list[Run]:
    """Read each run's spec and journal, and give every run a model label unique within the report."""
    if not run_dirs:
        raise UserError("no run directories given: pass one or more runs/<run_id> directories")
    loaded = [(run_dir, read_spec(run_dir), list(read_records(run_dir))) for run_dir in map(Path, run_dirs)]
    names = [str((spec.get("model") or {}).get("name") or _first(records, "model") or run_dir.name)
             for run_dir, spec, records in loaded]
    run_ids = [str(spec.get("run_id") or run_dir.name) for run_dir, spec, _ in loaded]
    labels = model_labels(names, run_ids, [model_detail(spec) for _, spec, _ in loaded])
    return [Run(run_dir, run_id, name, label, spec, records)
            for (run_dir, spec, records), run_id, name, label in zip(loaded, run_ids, names, labels, strict=True)]


def model_detail(spec: dict[str, Any]) -> str:
    """`provider/model · effort E` from a run's profile: what a label adds to the profile name, so runs of several
    providers and reasoning levels read apart on one page (`effort –` when the run set none)."""
    model = spec.get("model") or {}
    served = f"{model.get('provider') or 'unknown'}/{model.get('model') or 'unknown'}"
    return f"{served} · effort {model.get('reasoning_effort') or '–'}"


def model_labels(names: Sequence[str], run_ids: Sequence[str], details: Sequence[str] | None = None) -> list[str]:
    """The model name of each run with its provider, model and effort (`details`), and the run id added where
    several runs would still share a label (nightly runs)."""
    bases = [f"{name} ({detail})" if detail else name
             for name, detail in zip(names, details or [""] * len(names), strict=True)]
    counts = Counter(bases)
    labels = [f"{base} ({run_id})" if counts[base] > 1 else base for base, run_id in zip(bases, run_ids, strict=True)]
    # Two run directories may even share a run id (copies in different folders): number them, still unique.
    seen: Counter[str] = Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if labels.count(label) == 1 else f"{label} #{seen[label]}")
    return unique


def groups(runs: Sequence[Run]) -> list[Group]:
    """One summary per (model, eval), in run order; a run's records normally all share one eval."""
    out = []
    for index, run in enumerate(runs):
        by_eval: dict[str, list[dict[str, Any]]] = {}
        for record in run.records:
            by_eval.setdefault(str(record.get("eval") or run.eval_name), []).append(record)
        for eval_name, records in (by_eval or {run.eval_name: []}).items():
            summary = summarise(records)
            ttfa = tuple(float(v) for r in records if r.get("status") == "ok"
                         for v in [(r.get("latency") or {}).get("ttfa_ms")] if isinstance(v, int | float))
            verdicts = {str(r.get("sample_id")): bool(r["correct"]) for r in records
                        if r.get("status") == "ok" and isinstance(r.get("correct"), bool)}
            out.append(Group(run.label, eval_name, summary, name=run.series, run_index=index,
                             started_at=run.started_at, concurrency=run.concurrency,
                             accuracy_ci=stats.proportion_ci(summary["correct"], summary["graded"]), ttfa_ms=ttfa,
                             condition=run.condition, voices=tuple(by_voice(records)), verdicts=verdicts))
    return out


def category_frame(all_groups: Sequence[Group]) -> pd.DataFrame:
    """Long table of accuracy per eval, category and model, plus one `overall` row per (eval, model).

    Columns: eval, category, label, graded, correct, accuracy (a fraction, NaN when nothing was graded).
    Evals keep report order, categories are sorted, `overall` comes last.
    """
    rows = []
    for group in all_groups:
        for category, acc in group.summary["by_category"].items():
            category = f"{category} (category)" if category == OVERALL else category  # keep `overall` unique
            rows.append({"eval": group.eval, "category": category, "label": group.label, "overall": False,
                         "graded": acc["graded"], "correct": acc["correct"], "accuracy": acc["accuracy"]})
        rows.append({"eval": group.eval, "category": OVERALL, "label": group.label, "overall": True,
                     "graded": group.summary["graded"], "correct": group.summary["correct"],
                     "accuracy": group.summary["accuracy"]})
    columns = ["eval", "category", "label", "overall", "graded", "correct", "accuracy"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["accuracy"] = frame["accuracy"].astype("float64")
    eval_order = {name: i for i, name in enumerate(dict.fromkeys(frame["eval"]))}  # evals in report order
    return (frame.assign(eval_order=frame["eval"].map(eval_order))
            .sort_values(["eval_order", "overall", "category"], kind="stable")
            .drop(columns="eval_order").reset_index(drop=True))


def accuracy_pivot(frame: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Accuracy of one eval as category (rows, `overall` last) × model label (columns, report order)."""
    order = list(dict.fromkeys(frame["category"]))
    pivot = frame.pivot(index="category", columns="label", values="accuracy")
    return pivot.reindex(index=order, columns=[label for label in labels if label in set(frame["label"])])


def verdict(record: dict[str, Any]) -> str:
    """correct / incorrect / ungraded / error: a sample that failed to run is an error whatever its grade."""
    if record.get("status") != "ok":
        return "error"
    if record.get("correct") is None:
        return "ungraded"
    return "correct" if record["correct"] else "incorrect"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _natural(text: str) -> list[Any]:
    """Sort key that puts navigate_2 before navigate_10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def sample_rows(runs: Sequence[Run]) -> list[SampleRow]:
    """Every sample of every run, ordered by eval and sample id, so the models' answers to one question sit together."""
    rows = []
    for index, run in enumerate(runs):
        for record in run.records:
            grade = record.get("grade") or {}
            error = record.get("error") or {}
            reason = grade.get("reason")
            if record.get("status") != "ok":
                reason = ": ".join(_text(x) for x in (error.get("kind"), error.get("message")) if x) or reason
            row = SampleRow(
                label=run.label, sample_id=_text(record.get("sample_id")),
                eval=_text(record.get("eval") or run.eval_name), category=_text(record.get("category")),
                status=_text(record.get("status")), verdict=verdict(record), reason=_text(reason),
                extracted=_text(grade.get("extracted")), target=_text(record.get("target")),
                ttfa_ms=(record.get("latency") or {}).get("ttfa_ms"), response_text=_text(record.get("response_text")),
                run_index=index, record=record)
            rows.append((row.eval, _natural(row.sample_id), index, row))
    rows.sort(key=lambda item: item[:3])
    return [row for *_, row in rows]
