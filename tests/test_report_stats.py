"""The statistics behind reports and the gate, checked against scipy.stats, published values and hand sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from s2s_eval.reports import stats


def test_mcnemar_exact_matches_hand_computed_binomial_tails() -> None:
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(3, 0) == pytest.approx(0.25)  # 2 · (1/2)^3
    assert stats.mcnemar_exact(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)  # 2 · P(X ≤ 2), X ~ Bin(12, ½)
    assert stats.mcnemar_exact(5, 5) == 1.0
    assert stats.mcnemar_exact(2, 10) == stats.mcnemar_exact(10, 2)  # two-sided: symmetric
    # Thousands of discordant pairs do not underflow to 0 or overflow.
    p = stats.mcnemar_exact(2600, 2400)
    assert 0 < p < 0.01
    # It is scipy's exact binomial test of the discordant pairs, and agrees with a hand sum in log space.
    assert p == pytest.approx(scipy_stats.binomtest(2400, 5000, 0.5).pvalue, rel=1e-12)
    logs = [math.lgamma(5001) - math.lgamma(i + 1) - math.lgamma(5001 - i) - 5000 * math.log(2) for i in range(2401)]
    assert p == pytest.approx(2 * sum(math.exp(v) for v in logs), rel=1e-9)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II, score method.
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    (20, 20, 0.8389, 1.0),  # n/n mirrors 0/n
])
def test_proportion_ci_is_wilson_and_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    ci = stats.proportion_ci(k, n)
    assert ci is not None and ci.method == stats.WILSON and ci.estimate == k / n
    assert ci.low == pytest.approx(low, abs=6e-5) and ci.high == pytest.approx(high, abs=6e-5)
    reference = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert (ci.low, ci.high) == pytest.approx((reference.low, reference.high), abs=1e-12)


def test_proportion_ci_never_has_zero_width() -> None:
    """The old percentile bootstrap said 0/20 was 0.0%–0.0%; Wilson's 0/n and n/n intervals reach (z²/(n+z²))."""
    for n in (1, 5, 20, 100, 10_000):
        for k in (0, n):
            ci = stats.proportion_ci(k, n)
            assert ci is not None and ci.high - ci.low == pytest.approx(1.959964**2 / (n + 1.959964**2), rel=1e-6)
    old = stats.bootstrap_proportion_ci(0, 20)
    assert old is not None and old.high - old.low == 0  # what the issue reported
    assert stats.proportion_ci(0, 0) is None


def test_holm_matches_a_hand_computed_step_down() -> None:
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06; back in the given order.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []
    assert stats.holm([0.02]) == [0.02]


def test_fisher_exact_is_scipys() -> None:
    assert stats.fisher_exact(18, 20, 10, 20) == pytest.approx(scipy_stats.fisher_exact([[18, 2], [10, 10]]).pvalue)
    assert stats.fisher_exact(10, 20, 10, 20) == 1.0


def test_paired_difference_ci_covers_the_difference_and_narrows_with_n() -> None:
    small = stats.paired_difference_ci(5, 4, 1, 0)
    large = stats.paired_difference_ci(500, 40, 10, 450)
    assert small and large and small.method == stats.BONETT_PRICE
    assert small.estimate == pytest.approx(-0.3) and small.low <= -0.3 <= small.high
    assert large.estimate == pytest.approx(-0.03) and large.low < -0.03 < large.high < 0
    assert large.high - large.low < small.high - small.low
    # Bonett and Price (2012): (c+1)/(n+2) − (b+1)/(n+2) ± z·√((p̃b + p̃c − d̃²)/(n+2)), by hand for b=4, c=1, n=10.
    pb, pc = 5 / 12, 2 / 12
    half = 1.959964 * math.sqrt((pb + pc - (pc - pb) ** 2) / 12)
    assert (small.low, small.high) == pytest.approx((pc - pb - half, pc - pb + half), abs=1e-6)
    # Runs that agree on every item still get an interval, narrowing with n.
    agree = stats.paired_difference_ci(10, 0, 0, 10)
    assert agree and agree.estimate == 0 and agree.low < 0 < agree.high
    # Large n: close to the Wald interval of a paired difference.
    wald = 1.959964 * math.sqrt((0.04 + 0.01 - 0.03**2) / 1000)
    assert large.high - large.low == pytest.approx(2 * wald, rel=0.02)


def test_difference_ci_of_independent_shares_is_newcombes() -> None:
    ci = stats.difference_ci(10, 20, 18, 20)
    a, b = stats.proportion_ci(10, 20), stats.proportion_ci(18, 20)
    assert ci and a and b and ci.estimate == pytest.approx(0.4) and ci.method == stats.NEWCOMBE
    # Newcombe (1998) method 10 with no correlation: the two Wilson half-widths added in quadrature.
    assert ci.low == pytest.approx(0.4 - math.hypot(0.9 - b.low, a.high - 0.5))
    assert ci.high == pytest.approx(0.4 + math.hypot(b.high - 0.9, 0.5 - a.low))


def test_normal_quantiles_are_scipys() -> None:
    assert stats.Z_975 == pytest.approx(scipy_stats.norm.ppf(0.975), rel=1e-15)
    assert stats.Z_80 == pytest.approx(scipy_stats.norm.ppf(0.80), rel=1e-15)


def test_power_and_sample_size_match_connors_formula() -> None:
    # psi = 0.3, delta = 0.05: n = (1.959964·√0.3 + 0.841621·√(0.3 − 0.0025))² / 0.0025 = 939.51 → 940.
    assert stats.pairs_needed(0.3, 0.05) == 940
    assert stats.mcnemar_power(940, 0.3, 0.05) == pytest.approx(0.80, abs=0.002)
    assert stats.mcnemar_power(10, 0.3, 0.05) < 0.1
    # Identical runs (no discordant pairs) still need enough pairs to have seen a drop.
    assert stats.mcnemar_power(50, 0.0, 0.05) < 0.8 < stats.mcnemar_power(400, 0.0, 0.05)


def test_detectable_difference_inverts_the_power_formulas() -> None:
    # The smallest drop 940 pairs see with 80% power at 30% discordance is the 5 pp that needs 940 pairs.
    assert stats.detectable_paired_difference(940, 0.3) == pytest.approx(0.05, abs=5e-4)
    assert stats.detectable_paired_difference(100, 0.3) > stats.detectable_paired_difference(1000, 0.3)
    assert stats.detectable_paired_difference(0, 0.3) is None
    # Independent shares: (z_.975 + z_.80) · √(2 · 0.25 / n) at p = 0.5.
    assert stats.detectable_difference(200, 0.5, 200, 0.5) == pytest.approx(2.801585 * math.sqrt(0.5 / 200), rel=1e-5)
    assert stats.detectable_difference(20, 0.0, 20, 0.0) > 0  # a 0/n run does not claim infinite power


def test_repeated_tries_order_and_the_two_level_bootstrap() -> None:
    passed, tried = [0, 5, 3, 2, 5, 1], [5, 5, 5, 5, 5, 5]
    figures = stats.repeated_tries(passed, tried)
    assert figures is not None and figures["k"] == 5 and figures["items"] == 6
    assert figures["pass_at_1"]["estimate"] == pytest.approx(16 / 30)
    assert figures["pass_at_k"]["estimate"] == pytest.approx(5 / 6)
    assert figures["pass_hat_k"]["estimate"] == pytest.approx(2 / 6)
    assert figures["verdict_flips"]["estimate"] == pytest.approx(3 / 6)
    assert figures["pass_hat_k"]["estimate"] <= figures["pass_at_1"]["estimate"] <= figures["pass_at_k"]["estimate"]
    assert figures["pass_at_1"]["method"] == stats.TWO_LEVEL_BOOTSTRAP
    ci = stats.pass_at_1_ci(passed, tried)
    assert ci and ci.low < ci.estimate < ci.high
    assert ci == stats.pass_at_1_ci(passed, tried)  # seeded
    assert ci == stats.pass_at_1_ci(passed[::-1], tried[::-1])  # and free of the journal's order
    # Items whose tries all agree leave only the item level: 100 items, half always right, half never, is a share
    # of 0.5 over 100 items, whose bootstrap sd is 0.05.
    steady = stats.pass_at_1_ci([5, 0] * 50, [5] * 100)
    assert steady and steady.high - steady.low == pytest.approx(2 * 1.96 * 0.05, abs=0.03)
    assert stats.repeated_tries([], []) is None
    assert stats.repeated_tries([1], [1])["verdict_flips"] is None  # type: ignore[index]  # one try cannot flip


def test_paired_pass_at_1_difference() -> None:
    same = stats.paired_pass_at_1_difference([(1, 5), (5, 5)] * 20, [(1, 5), (5, 5)] * 20)
    assert same and same.estimate == 0 and same.low < 0 < same.high
    better = stats.paired_pass_at_1_difference([(1, 5)] * 50, [(4, 5)] * 50)
    assert better and better.estimate == pytest.approx(0.6) and better.low > 0.4


def test_paired_quantile_difference_finds_a_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.lognormal(6, 0.25, 500)
    ci = stats.paired_quantile_difference(base, base + 150)
    assert ci and ci.estimate == pytest.approx(150) and ci.low == pytest.approx(150) == ci.high
    assert ci.method == stats.BOOTSTRAP
    noisy = stats.paired_quantile_difference(base, rng.lognormal(6, 0.25, 500) + 150)
    assert noisy and noisy.low < 150 < noisy.high and noisy.low > 50
    assert stats.paired_quantile_difference([1.0], [2.0]) is None


def test_ecdf_thins_but_keeps_both_ends() -> None:
    xs, ys = stats.ecdf(list(range(10_000, 0, -1)), max_points=100)
    assert len(xs) <= 100 and xs[0] == 1 and xs[-1] == 10_000 and ys[-1] == 1.0
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
    assert stats.ecdf([None, float("nan")])[0].size == 0


def test_wilson_covers_within_the_band_where_any_interval_can() -> None:
    """Exact coverage (a sum over every count, no simulation) of the 95% accuracy interval on the grid
    `benchmarks/interval_coverage.py` simulates. At n=20, p=0.95 the counts 18..20 carry 92.5% and 17..20 98.4%:
    no deterministic interval lands in [93%, 97.5%] there, and Wilson takes the lower step."""
    def coverage(n: int, p: float) -> float:
        pmf = scipy_stats.binom.pmf(np.arange(n + 1), n, p)
        likely = [k for k in range(n + 1) if pmf[k] > 1e-9]  # the rest cannot move the sum
        return float(sum(pmf[k] for k in likely if (ci := stats.proportion_ci(k, n)) and ci.low <= p <= ci.high))

    for n in (20, 100, 1000):
        for p in (0.02, 0.5, 0.95):
            if (n, p) != (20, 0.95):
                assert 0.93 <= coverage(n, p) <= 0.975, (n, p, coverage(n, p))
    steps = scipy_stats.binom.sf([17, 16], 20, 0.95)  # P(X >= 18), P(X >= 17)
    assert steps[0] < 0.93 and steps[1] > 0.975
    assert coverage(20, 0.95) == pytest.approx(steps[0])


def test_quantile_ci_is_a_seeded_percentile_bootstrap_around_the_quantile() -> None:
    values = [float(v) for v in range(1, 101)]
    p90 = stats.quantile_ci(values, q=0.9)
    assert p90 is not None and p90.estimate == pytest.approx(90.1) and p90.method == stats.BOOTSTRAP
    assert 80 < p90.low < p90.estimate < p90.high <= 100
    assert stats.quantile_ci(list(reversed(values)), q=0.9) == p90  # seeded, and order-free
    assert stats.quantile_ci([5.0]) is None and stats.quantile_ci([]) is None
