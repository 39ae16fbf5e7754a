"""Latency statistics: one definition of percentiles for run summaries, reports and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

LATENCY_FIELDS = ("ttfa_ms", "ttft_ms", "total_ms")
PERCENTILES = (50, 90, 99)


def describe(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """n, mean, p50/p90/p99, min and max of the measured values (None = not measured, left out)."""
    data = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if data.size == 0:
        return {"n": 0, "mean": None, "min": None, "max": None, **{f"p{p}": None for p in PERCENTILES}}
    stats: dict[str, float | int | None] = {
        "n": int(data.size),
        "mean": round(float(data.mean()), 3),
        "min": round(float(data.min()), 3),
        "max": round(float(data.max()), 3),
    }
    for p in PERCENTILES:
        stats[f"p{p}"] = round(float(np.percentile(data, p)), 3)
    return stats
