"""How often the report's 95% accuracy interval covers the true accuracy: simulated runs, old method beside new.

For each n in {20, 100, 1000} and true accuracy p in {0.02, 0.5, 0.95}, draws 2,000 runs of n independent verdicts
(seeded) and counts the runs whose interval contains p. A 95% interval should cover in about 95% of runs; the band
asked of it is [93%, 97.5%]. The old percentile bootstrap is printed beside Wilson, the method reports use now, and
the exact coverage (a sum over every possible count, no simulation error) beside both.

Why Wilson. Every interval for a share is discrete: with n verdicts only n + 1 counts can happen, so its coverage at a
given p is the probability of the counts whose interval contains p, and it moves in steps. At n = 20, p = 0.95 the
counts 18..20 carry 92.5% of the probability and 17..20 carry 98.4%: *no* non-randomised method can cover between
93% and 97.5% there. Wilson takes the lower step (92.5%); Clopper-Pearson, Wilson with continuity correction,
Jeffreys and mid-p all take the upper one (98.4%). Elsewhere Wilson is inside the band in every cell (its exact
coverage is 94.0%-96.6%), while Clopper-Pearson and the continuity-corrected Wilson over-cover at p = 0.02 (99.3%
at n = 20, 98.5% at n = 100) and Jeffreys and mid-p at n = 100, p = 0.02 (98.5%). Wilson is the method with the
most cells in the band and the one closest to 95% on average; the n = 20, p = 0.95 cell is printed as it is (at
the default seed its 2,000 simulated runs happen to land on 93.0%, but its exact coverage, 92.45%, is under the band:
the last column says so).

Run: `.venv/bin/python benchmarks/interval_coverage.py [--runs 2000] [--seed 7]` (a few seconds).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import numpy as np
from scipy import stats as scipy_stats

from s2s_eval.reports import stats

SIZES = (20, 100, 1000)
SHARES = (0.02, 0.5, 0.95)
BAND = (0.93, 0.975)


@functools.cache
def wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.proportion_ci(k, n)
    assert ci is not None
    return ci.low, ci.high


@functools.cache
def bootstrap(k: int, n: int) -> tuple[float, float]:
    ci = stats.bootstrap_proportion_ci(k, n)  # seeded with stats.SEED, as the old reports were
    assert ci is not None
    return ci.low, ci.high


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    ci = scipy_stats.binomtest(k, n).proportion_ci(method="exact")
    return ci.low, ci.high


def wilson_cc(k: int, n: int) -> tuple[float, float]:
    ci = scipy_stats.binomtest(k, n).proportion_ci(method="wilsoncc")
    return ci.low, ci.high


def jeffreys(k: int, n: int) -> tuple[float, float]:
    low = 0.0 if k == 0 else float(scipy_stats.beta.ppf(0.025, k + 0.5, n - k + 0.5))
    high = 1.0 if k == n else float(scipy_stats.beta.ppf(0.975, k + 0.5, n - k + 0.5))
    return low, high


ALTERNATIVES = {"Clopper-Pearson": clopper_pearson, "Wilson cc": wilson_cc, "Jeffreys": jeffreys}


def exact_coverage(n: int, p: float, method: Callable[[int, int], tuple[float, float]] = wilson) -> float:
    """Coverage without simulation: the probability of the counts whose interval holds p."""
    pmf = scipy_stats.binom.pmf(np.arange(n + 1), n, p)
    likely = [k for k in range(n + 1) if pmf[k] > 1e-9]  # the rest cannot move the sum
    return float(sum(pmf[k] for k in likely if method(k, n)[0] <= p <= method(k, n)[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="simulated runs per cell")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"coverage of the 95% accuracy interval, {args.runs:,} simulated runs per cell (band {BAND[0]:.1%}-"
          f"{BAND[1]:.1%})")
    print(f"{'n':>5} {'p':>5} | {'bootstrap (old)':>15} | {'Wilson (new)':>12} {'in band':>7} | "
          f"{'Wilson exact':>12} {'in band':>7}")
    inside = exact_inside = 0
    for n in SIZES:
        for p in SHARES:
            counts = rng.binomial(n, p, size=args.runs)
            old = np.mean([bootstrap(int(k), n)[0] <= p <= bootstrap(int(k), n)[1] for k in counts])
            new = np.mean([wilson(int(k), n)[0] <= p <= wilson(int(k), n)[1] for k in counts])
            ok = BAND[0] <= new <= BAND[1]
            inside += ok
            exact = exact_coverage(n, p)
            exact_ok = BAND[0] <= exact <= BAND[1]
            exact_inside += exact_ok
            print(f"{n:>5} {p:>5} | {old:>15.2%} | {new:>12.2%} {'yes' if ok else 'NO':>7} | "
                  f"{exact:>12.2%} {'yes' if exact_ok else 'NO':>7}")
    cells = len(SIZES) * len(SHARES)
    print(f"Wilson inside the band in {inside} of {cells} simulated cells and {exact_inside} of {cells} exactly")
    print("\nexact coverage of the alternatives considered (no simulation)")
    print(f"{'n':>5} {'p':>5} | " + " | ".join(f"{name:>15}" for name in ALTERNATIVES))
    for n in SIZES:
        for p in SHARES:
            print(f"{n:>5} {p:>5} | " + " | ".join(f"{exact_coverage(n, p, m):>15.2%}" for m in ALTERNATIVES.values()))


if __name__ == "__main__":
    main()
