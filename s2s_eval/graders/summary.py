"""Headline metrics of a run, computed from its journal records (the only source of truth).

Records are consumed one at a time, keeping only counters and latency values, so a summary of a million-sample
run needs megabytes, not the journal in memory.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from s2s_eval.graders.latency import LATENCY_FIELDS, describe
from s2s_eval.reports import stats

EXTRA_LATENCY = ("output_leading_silence_ms", "ttfa_voiced_ms")
# Per-sample metrics that are a verdict (0 or 1), so their mean is a pass rate with a Wilson interval like accuracy.
SHARE_METRICS = ("success", "success_rate")


@dataclass
class _Tally:
    n: int = 0
    graded: int = 0
    correct: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.n += 1
        if record["correct"] is not None:
            self.graded += 1
            self.correct += bool(record["correct"])

    def as_dict(self) -> dict[str, Any]:
        # Errors and ungraded samples count against nobody: accuracy is over graded samples only, and the
        # counts beside it say how many were left out.
        return {"n": self.n, "graded": self.graded, "correct": self.correct,
                "accuracy": round(self.correct / self.graded, 6) if self.graded else None}


@dataclass
class _Summary:
    overall: _Tally = field(default_factory=_Tally)
    categories: defaultdict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    errors: Counter[str] = field(default_factory=Counter)
    error_classes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latency: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    usage: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    retried: int = 0
    cost_usd: float = 0.0
    priced: int = 0
    metrics: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0]))
    # Share metrics that met a value other than 0 or 1 (then a mean, not a share: no interval for a proportion).
    graded_scale: set[str] = field(default_factory=set)
    # Per item of `--attempts K`: graded tries that were right, and graded tries (two small ints per item).
    tries_passed: list[int] = field(default_factory=list)
    tries_graded: list[int] = field(default_factory=list)

    def add(self, r: dict[str, Any]) -> None:
        """One record, as `SampleRecord` guarantees it (every field present; see s2s_eval/log)."""
        self.overall.add(r)
        self.categories[r["category"] or "all"].add(r)
        if r["status"] == "ok":
            for key in (*LATENCY_FIELDS, *EXTRA_LATENCY):
                if r["latency"][key] is not None:
                    self.latency[key].append(float(r["latency"][key]))
        else:
            error = r["error"] or {"kind": "unknown", "class": "unknown"}
            self.errors[error["kind"]] += 1
            self.error_classes[error["class"]] += 1
        grade = r["grade"]
        if grade and grade["reason"]:
            self.reasons[grade["reason"]] += 1
        measured = {**(grade["metrics"] if grade else {}), "pass_at_1": r["pass_at_1"],
                    "asr_wer": r["asr"].get("wer") if r["asr"] else None}
        for name, value in measured.items():
            if value is not None:  # a running sum and count: memory does not grow with the run
                self.metrics[name][0] += float(value)
                self.metrics[name][1] += 1
                if name in SHARE_METRICS and value not in (0, 1):
                    self.graded_scale.add(name)
        if r["trials"]:
            verdicts = [t["correct"] for t in r["trials"] if t["correct"] is not None]
            self.tries_passed.append(sum(verdicts))
            self.tries_graded.append(len(verdicts))
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            self.usage[key] += int(r["usage"].get(key) or 0)  # usage is the provider's object: fields may be null
        self.attempts += r["attempts"]
        self.retried += r["attempts"] > 1
        if r["cost_usd"] is not None:
            self.cost_usd += float(r["cost_usd"])
            self.priced += 1


def _metric(total: float, n: int, *, share: bool) -> dict[str, Any]:
    """A metric's mean over the samples that have it; a share of 0/1 verdicts (ComplexFuncBench `success`) also
    gets its Wilson score interval, like accuracy."""
    out: dict[str, Any] = {"mean": round(total / n, 6), "n": n}
    if share:
        ci = stats.proportion_ci(round(total), n)
        out["ci"] = ci.as_dict() if ci else None
    return out


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts, accuracy overall and per category, latency percentiles, tokens, attempts and cost, of records as
    `s2s_eval.log.read_records` gives them (validated: every field of `SampleRecord` present)."""
    s = _Summary()
    for record in records:
        s.add(record)
    total = s.overall.n
    accuracy_ci = stats.proportion_ci(s.overall.correct, s.overall.graded)
    return {
        "counts": {"total": total, "ok": total - sum(s.errors.values()), "error": sum(s.errors.values()),
                   "error_kinds": dict(s.errors), "error_classes": dict(s.error_classes)},
        **s.overall.as_dict(),
        # Wilson score; with `--attempts K` accuracy is pass@k, and `trials` has pass@1, pass^k and verdict flips.
        "accuracy_ci": accuracy_ci.as_dict() if accuracy_ci else None,
        "trials": stats.repeated_tries(s.tries_passed, s.tries_graded),
        "by_category": {c: t.as_dict() for c, t in sorted(s.categories.items())},
        "grade_reasons": dict(s.reasons),
        "metrics": {name: _metric(total, n, share=name in SHARE_METRICS and name not in s.graded_scale)
                    for name, (total, n) in sorted(s.metrics.items())},
        "latency": {key: describe(s.latency[key]) for key in (*LATENCY_FIELDS, *EXTRA_LATENCY)},
        "usage": dict(s.usage),
        "attempts": {"total": s.attempts, "samples_retried": s.retried},
        "cost": {"usd": round(s.cost_usd, 6) if s.priced else None, "priced_samples": s.priced,
                 "usd_per_100_samples": round(100 * s.cost_usd / s.priced, 6) if s.priced else None},
    }
