"""Headline metrics of a run, computed from its journal records (the only source of truth)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from s2s_eval.graders.latency import LATENCY_FIELDS, describe


def _accuracy(records: list[dict[str, Any]]) -> dict[str, Any]:
    graded = [r for r in records if r.get("correct") is not None]
    correct = sum(1 for r in graded if r["correct"])
    return {
        "n": len(records),
        "graded": len(graded),
        "correct": correct,
        # Errors and ungraded samples count against nobody: accuracy is over graded samples only, and the
        # counts beside it say how many were left out.
        "accuracy": round(correct / len(graded), 6) if graded else None,
    }


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts, accuracy overall and per category, latency percentiles and token usage of a list of records."""
    records = list(records)
    by_category: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_category.setdefault(r.get("category") or "all", []).append(r)
    usage: Counter[str] = Counter()
    for r in records:
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            usage[key] += int((r.get("usage") or {}).get(key) or 0)
    ok = [r for r in records if r.get("status") == "ok"]
    return {
        "counts": {
            "total": len(records),
            "ok": len(ok),
            "error": len(records) - len(ok),
            "error_kinds": dict(Counter((r.get("error") or {}).get("kind", "unknown") for r in records
                                        if r.get("status") != "ok")),
        },
        **_accuracy(records),
        "by_category": {c: _accuracy(rs) for c, rs in sorted(by_category.items())},
        "grade_reasons": dict(Counter((r.get("grade") or {}).get("reason") for r in records
                                      if (r.get("grade") or {}).get("reason"))),
        "latency": {f: describe((r.get("latency") or {}).get(f) for r in ok) for f in LATENCY_FIELDS},
        "usage": dict(usage),
    }
