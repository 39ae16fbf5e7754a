"""Statistics for reports and comparisons: bootstrap intervals, McNemar's exact test, power, empirical CDFs.

Everything is seeded: the same runs give the same intervals, so a report or a gate decision is reproducible.
numpy only (no scipy): the normal quantiles needed are fixed constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
SEED = 20250828
LEVEL = 0.95
# Standard normal quantiles: z(0.975) for a two-sided 5% test, z(0.80) for 80% power.
Z_975 = 1.959963984540054
Z_80 = 0.8416212335729143
# Bootstrap index matrices are drawn in chunks of at most this many cells, so memory stays bounded.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval."""

    estimate: float
    low: float
    high: float


def _tails(level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    return alpha / 2, 1.0 - alpha / 2


def proportion_ci(successes: int, n: int, *, level: float = LEVEL, resamples: int = RESAMPLES,
                  seed: int = SEED) -> Interval | None:
    """Percentile-bootstrap interval of a share (e.g. accuracy over graded samples); None when n is 0.

    Resampling n Bernoulli outcomes with replacement and counting successes is a binomial draw, so the bootstrap
    is exact and O(resamples). All-right or all-wrong samples give a zero-width interval: that is what the
    bootstrap says, and the report shows n beside it.
    """
    if n <= 0:
        return None
    p = successes / n
    draws = np.random.default_rng(seed).binomial(n, p, size=resamples) / n
    low, high = np.quantile(draws, _tails(level))
    return Interval(p, float(low), float(high))


def _log_binom_pmf(k: int, n: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2.0)


def mcnemar_exact(base_only: int, new_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (right only in base, right only in new).

    Under "no change" each discordant pair falls either way with probability 1/2, so the smaller count is
    Binomial(b + c, 1/2); the tail is summed in log space so thousands of pairs do not underflow.
    """
    n = base_only + new_only
    if n == 0:
        return 1.0
    k = min(base_only, new_only)
    logs = [_log_binom_pmf(i, n) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return min(1.0, 2.0 * tail)


def paired_difference_ci(both: int, base_only: int, new_only: int, neither: int, *, level: float = LEVEL,
                         resamples: int = RESAMPLES, seed: int = SEED) -> Interval | None:
    """Paired-bootstrap interval of accuracy(new) − accuracy(base) from the 2×2 table of paired verdicts.

    Resampling pairs with replacement is a multinomial draw over the four cells, so this is exact and cheap.
    """
    n = both + base_only + new_only + neither
    if n <= 0:
        return None
    probs = np.array([both, base_only, new_only, neither], dtype=np.float64) / n
    cells = np.random.default_rng(seed).multinomial(n, probs, size=resamples)
    diffs = (cells[:, 2] - cells[:, 1]) / n
    low, high = np.quantile(diffs, _tails(level))
    return Interval((new_only - base_only) / n, float(low), float(high))


def mcnemar_power(n: int, discordant: float, drop: float) -> float:
    """Approximate power of the two-sided 5% McNemar test to detect an accuracy drop of `drop` (a fraction).

    `discordant` is the share of pairs whose verdicts differ; a drop of `drop` needs at least that share, so it is
    raised to `drop` when smaller (identical runs still need enough pairs to see a real drop). Connor (1987).
    """
    if n <= 0 or drop <= 0:
        return 0.0
    psi = min(1.0, max(discordant, drop))
    spread = psi - drop * drop
    if spread <= 0:
        return 1.0
    z = (drop * math.sqrt(n) - Z_975 * math.sqrt(psi)) / math.sqrt(spread)
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def pairs_needed(discordant: float, drop: float) -> int:
    """Pairs the McNemar test needs for 80% power against a drop of `drop` (see `mcnemar_power`)."""
    if drop <= 0:
        return 0
    psi = min(1.0, max(discordant, drop))
    spread = max(psi - drop * drop, 0.0)
    return math.ceil(((Z_975 * math.sqrt(psi) + Z_80 * math.sqrt(spread)) / drop) ** 2)


def paired_quantile_difference(base: Sequence[float], new: Sequence[float], *, q: float = 0.5,
                               level: float = LEVEL, resamples: int = RESAMPLES,
                               seed: int = SEED) -> Interval | None:
    """Paired-bootstrap interval of quantile_q(new) − quantile_q(base) over samples measured in both runs.

    Pairs are resampled together (a long question may be slow in both runs). None with fewer than two pairs.
    """
    a = np.asarray(base, dtype=np.float64)
    b = np.asarray(new, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    m = a.size
    if m < 2:
        return None
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // m)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        idx = rng.integers(0, m, size=(rows, m))
        diffs[start:start + rows] = np.quantile(b[idx], q, axis=1) - np.quantile(a[idx], q, axis=1)
    low, high = np.quantile(diffs, _tails(level))
    return Interval(float(np.quantile(b, q) - np.quantile(a, q)), float(low), float(high))


def ecdf(values: Sequence[float], max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF as (sorted values, cumulative share), thinned to at most `max_points` steps for plotting.

    Thinning keeps evenly spaced ranks plus the first and last value, so the curve's shape and ends are exact.
    """
    data = np.sort(np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64))
    if data.size == 0:
        return data, data
    shares = np.arange(1, data.size + 1) / data.size
    if data.size > max_points:
        keep = np.unique(np.linspace(0, data.size - 1, max_points).round().astype(int))
        data, shares = data[keep], shares[keep]
    return data, shares
