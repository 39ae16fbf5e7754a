"""Statistics for reports and comparisons: intervals, exact tests, Holm's correction, power, empirical CDFs.

Each interval says which method made it (`Interval.method`), and each method is chosen for what it estimates:

- a share of n independent verdicts (accuracy, pass@k, pass^k, success rate): the Wilson score interval
  (`scipy.stats.binomtest(...).proportion_ci`). It never has zero width, so 0/20 reads 0.0%-16.1%, not 0.0%-0.0%
  (a percentile bootstrap of a proportion collapses at 0 and n and under-covers at small n).
  `benchmarks/interval_coverage.py` measures its coverage against the old bootstrap; see its docstring for why
  Wilson and not Clopper-Pearson, Jeffreys or mid-p;
- a paired difference of two shares (the same items, two models): Bonett and Price's adjusted Wald interval, never
  zero-width; a difference of independent shares: Newcombe's hybrid score interval from the two Wilson intervals;
- a test of a paired difference: McNemar's exact test, the two-sided exact binomial test of the discordant pairs
  (`scipy.stats.binomtest`); unpaired shares: Fisher's exact test;
- latency quantiles, paired quantile differences and pass@1 over repeated tries (clustered: tries within an item):
  the percentile bootstrap, since no closed form fits. Everything resampled is seeded: the same runs give the same
  intervals, so a report or a gate decision is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

RESAMPLES = 2000
SEED = 20250828
LEVEL = 0.95
ALPHA = 0.05
POWER = 0.80
# Standard normal quantiles: z(0.975) for a two-sided 5% test, z(0.80) for 80% power (tests check them).
Z_975 = 1.959963984540054
Z_80 = 0.8416212335729143
# Bootstrap index matrices are drawn in chunks of at most this many cells, so memory stays bounded.
_CHUNK_CELLS = 4_000_000

WILSON = "Wilson score"
BONETT_PRICE = "Bonett-Price adjusted Wald"
NEWCOMBE = "Newcombe score"
BOOTSTRAP = "bootstrap"
TWO_LEVEL_BOOTSTRAP = "two-level bootstrap (items, then tries)"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval, and the method that made it."""

    estimate: float
    low: float
    high: float
    method: str = ""

    def as_dict(self) -> dict[str, float | str]:
        return {"estimate": round(self.estimate, 6), "low": round(self.low, 6), "high": round(self.high, 6),
                "method": self.method}


def _scipy() -> ModuleType:
    """scipy.stats, imported on first use: it takes seconds to import, and every run summarises itself."""
    from scipy import stats as scipy_stats

    return scipy_stats


def _z(level: float) -> float:
    return Z_975 if level == LEVEL else float(_scipy().norm.ppf(1 - (1 - level) / 2))


def _tails(level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    return alpha / 2, 1.0 - alpha / 2


def proportion_ci(successes: int, n: int, *, level: float = LEVEL) -> Interval | None:
    """Wilson score interval of a share (e.g. accuracy over graded samples); None when n is 0."""
    if n <= 0:
        return None
    ci = _scipy().binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Interval(successes / n, float(ci.low), float(ci.high), WILSON)


def bootstrap_proportion_ci(successes: int, n: int, *, level: float = LEVEL, resamples: int = RESAMPLES,
                            seed: int = SEED) -> Interval | None:
    """The percentile bootstrap of a share that reports used before Wilson: kept only so
    `benchmarks/interval_coverage.py` can show its coverage beside Wilson's. Do not use it for a report."""
    if n <= 0:
        return None
    p = successes / n
    draws = np.random.default_rng(seed).binomial(n, p, size=resamples) / n
    low, high = np.quantile(draws, _tails(level))
    return Interval(p, float(low), float(high), "percentile bootstrap")


def mcnemar_exact(base_only: int, new_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (right only in base, right only in new): under
    "no change" each discordant pair falls either way with probability 1/2, an exact binomial test."""
    n = base_only + new_only
    if n == 0:
        return 1.0
    return float(_scipy().binomtest(int(base_only), n, 0.5).pvalue)


def fisher_exact(right_a: int, n_a: int, right_b: int, n_b: int) -> float:
    """Two-sided p-value of Fisher's exact test that two independent shares are equal (unpaired items)."""
    table = [[right_a, n_a - right_a], [right_b, n_b - right_b]]
    return float(_scipy().fisher_exact(table).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the family-wise error stays at alpha however many
    comparisons are made, and (unlike Bonferroni) the smallest p-value alone pays the full multiplier."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))  # monotone: never below an earlier step
        adjusted[i] = running
    return adjusted


def _newcombe(estimate: float, p_x: float, ci_x: Interval, p_y: float, ci_y: Interval, phi: float,
              method: str) -> Interval:
    """Newcombe's square-and-add interval of x - y from the two Wilson intervals and their correlation phi."""
    down = math.sqrt(max(0.0, (p_x - ci_x.low) ** 2 - 2 * phi * (p_x - ci_x.low) * (ci_y.high - p_y)
                         + (ci_y.high - p_y) ** 2))
    up = math.sqrt(max(0.0, (ci_x.high - p_x) ** 2 - 2 * phi * (ci_x.high - p_x) * (p_y - ci_y.low)
                       + (p_y - ci_y.low) ** 2))
    return Interval(estimate, max(-1.0, estimate - down), min(1.0, estimate + up), method)


def paired_difference_ci(both: int, base_only: int, new_only: int, neither: int, *,
                         level: float = LEVEL) -> Interval | None:
    """Interval of share(new) - share(base) from the 2x2 table of paired verdicts: Bonett and Price's adjusted Wald
    interval (2012), one added to each discordant count and two to n.

    Closed form, and never zero-width: two runs that agree on all of 20 items have not shown they agree on all
    items (Newcombe's paired score interval, by contrast, collapses to a point when no pair is discordant).
    """
    n = both + base_only + new_only + neither
    if n <= 0:
        return None
    z = _z(level)
    lost, gained = (base_only + 1) / (n + 2), (new_only + 1) / (n + 2)
    centre = gained - lost
    half = z * math.sqrt(max(0.0, lost + gained - centre * centre) / (n + 2))
    return Interval((new_only - base_only) / n, max(-1.0, centre - half), min(1.0, centre + half), BONETT_PRICE)


def difference_ci(right_a: int, n_a: int, right_b: int, n_b: int, *, level: float = LEVEL) -> Interval | None:
    """Interval of share(b) - share(a) for independent samples (Newcombe's hybrid score, method 10 of 1998)."""
    ci_a, ci_b = proportion_ci(right_a, n_a, level=level), proportion_ci(right_b, n_b, level=level)
    if ci_a is None or ci_b is None:
        return None
    return _newcombe(ci_b.estimate - ci_a.estimate, ci_b.estimate, ci_b, ci_a.estimate, ci_a, 0.0, NEWCOMBE)


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


def detectable_paired_difference(n: int, discordant: float, *, power: float = POWER) -> float | None:
    """The smallest accuracy difference (a fraction) the two-sided 5% McNemar test sees with `power` on n pairs
    whose verdicts differ in a `discordant` share (Connor's approximation, as `mcnemar_power`); None when n is 0."""
    if n <= 0:
        return None
    if mcnemar_power(n, discordant, 1.0) < power:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(50):  # power rises with the difference: bisect to well under 0.1 pp
        mid = (low + high) / 2
        low, high = (mid, high) if mcnemar_power(n, discordant, mid) < power else (low, mid)
    return high


def detectable_difference(n_a: int, p_a: float, n_b: int, p_b: float, *, power: float = POWER) -> float | None:
    """The smallest difference of two independent shares a two-sided 5% test sees with `power` (normal
    approximation at the observed shares, each floored at 1/(2n) so a 0/n run does not claim infinite power)."""
    if n_a <= 0 or n_b <= 0:
        return None
    def var(p: float, n: int) -> float:
        p = min(max(p, 0.5 / n), 1 - 0.5 / n)
        return p * (1 - p) / n
    z_power = Z_80 if power == POWER else float(_scipy().norm.ppf(power))
    return min(1.0, (Z_975 + z_power) * math.sqrt(var(p_a, n_a) + var(p_b, n_b)))


def _resampled(m: int, resamples: int, rng: np.random.Generator,
               statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`statistic` of `resamples` bootstrap draws of m item indices (one row each), drawn in chunks so memory stays
    bounded at large m. Each chunk's indices are drawn right before `statistic` runs on them: a statistic that draws
    from the same generator (the two-level bootstraps) keeps one fixed order of draws for a seed."""
    out = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // m)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        out[start:start + rows] = statistic(rng.integers(0, m, size=(rows, m)))
    return out


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
    diffs = _resampled(m, resamples, np.random.default_rng(seed),
                       lambda idx: np.quantile(b[idx], q, axis=1) - np.quantile(a[idx], q, axis=1))
    low, high = np.quantile(diffs, _tails(level))
    return Interval(float(np.quantile(b, q) - np.quantile(a, q)), float(low), float(high), BOOTSTRAP)


def quantile_ci(values: Sequence[float], *, q: float = 0.5, level: float = LEVEL, resamples: int = RESAMPLES,
                seed: int = SEED) -> Interval | None:
    """Percentile-bootstrap interval of one sample's quantile_q (a latency p50 or p90 of one run), resampled and
    seeded as `paired_quantile_difference` is. None with fewer than two values."""
    data = np.sort(np.asarray(values, dtype=np.float64))  # sorted: the interval does not depend on journal order
    m = data.size
    if m < 2:
        return None
    draws = _resampled(m, resamples, np.random.default_rng(seed), lambda idx: np.quantile(data[idx], q, axis=1))
    low, high = np.quantile(draws, _tails(level))
    return Interval(float(np.quantile(data, q)), float(low), float(high), BOOTSTRAP)


def pass_at_1_ci(passed: Sequence[int], tried: Sequence[int], *, level: float = LEVEL, resamples: int = RESAMPLES,
                 seed: int = SEED) -> Interval | None:
    """pass@1 (the mean over items of each item's share of right tries) with a two-level bootstrap interval.

    Tries of one item are not independent of each other (an item is hard or easy), so items are resampled first and
    then, within each drawn item, its tries: a Binomial(k_i, c_i / k_i) draw. None when no item has a graded try.
    """
    # Sorted, so the interval does not depend on the journal's order (a merged run equals its unsharded twin).
    counts = sorted((int(ci), int(ki)) for ci, ki in zip(passed, tried, strict=True) if ki > 0)
    c = np.array([ci for ci, _ in counts], dtype=np.float64)
    k = np.array([ki for _, ki in counts], dtype=np.int64)
    m = k.size
    if m == 0:
        return None
    shares = c / k
    rng = np.random.default_rng(seed)
    means = _resampled(m, resamples, rng, lambda idx: (rng.binomial(k[idx], shares[idx]) / k[idx]).mean(axis=1))
    low, high = np.quantile(means, _tails(level))
    return Interval(float(shares.mean()), float(low), float(high), TWO_LEVEL_BOOTSTRAP)


def paired_pass_at_1_difference(base: Sequence[tuple[int, int]], new: Sequence[tuple[int, int]], *,
                                level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED) -> Interval | None:
    """pass@1(new) - pass@1(base) over the same items, each given as (right tries, graded tries), with a two-level
    bootstrap: items are drawn once for both runs (they are paired), then each run's tries within each item."""
    pairs = sorted((b, n) for b, n in zip(base, new, strict=True) if b[1] > 0 and n[1] > 0)  # order-free
    m = len(pairs)
    if m == 0:
        return None
    kb = np.array([b[1] for b, _ in pairs])
    kn = np.array([n[1] for _, n in pairs])
    pb = np.array([b[0] for b, _ in pairs]) / kb
    pn = np.array([n[0] for _, n in pairs]) / kn
    rng = np.random.default_rng(seed)
    diffs = _resampled(m, resamples, rng, lambda idx: (rng.binomial(kn[idx], pn[idx]) / kn[idx]
                                                        - rng.binomial(kb[idx], pb[idx]) / kb[idx]).mean(axis=1))
    low, high = np.quantile(diffs, _tails(level))
    return Interval(float((pn - pb).mean()), float(low), float(high), TWO_LEVEL_BOOTSTRAP)


def repeated_tries(passed: Sequence[int], tried: Sequence[int]) -> dict[str, object] | None:
    """Figures of `--attempts K` over items with at least one graded try: pass@1 (mean share of right tries),
    pass@k (at least one right), pass^k (every try right, as tau-bench reports it) and verdict flips (the share of
    items with two or more graded tries whose verdicts differ), each with its interval and method."""
    pairs = [(int(c), int(k)) for c, k in zip(passed, tried, strict=True) if k > 0]
    if not pairs:
        return None
    n = len(pairs)
    repeated = [(c, k) for c, k in pairs if k > 1]
    pass_1 = pass_at_1_ci([c for c, _ in pairs], [k for _, k in pairs])
    pass_k = proportion_ci(sum(c > 0 for c, _ in pairs), n)
    pass_hat_k = proportion_ci(sum(c == k for c, k in pairs), n)
    flips = proportion_ci(sum(0 < c < k for c, k in repeated), len(repeated))
    assert pass_1 is not None and pass_k is not None and pass_hat_k is not None
    return {"k": max(k for _, k in pairs), "items": n, "pass_at_1": pass_1.as_dict(), "pass_at_k": pass_k.as_dict(),
            "pass_hat_k": pass_hat_k.as_dict(), "verdict_flips": flips.as_dict() if flips else None,
            "items_repeated": len(repeated)}


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
