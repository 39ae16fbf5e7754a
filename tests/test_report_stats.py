"""The statistics behind reports and the gate, checked against values computed by hand or by another method."""

from __future__ import annotations

import math

import numpy as np
import pytest

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


def test_proportion_ci_agrees_with_the_normal_approximation_for_large_n() -> None:
    ci = stats.proportion_ci(320, 400)
    assert ci is not None and ci.estimate == 0.8
    half = 1.959964 * math.sqrt(0.8 * 0.2 / 400)
    assert ci.low == pytest.approx(0.8 - half, abs=0.006) and ci.high == pytest.approx(0.8 + half, abs=0.006)
    assert stats.proportion_ci(0, 0) is None


def binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_proportion_ci_is_the_percentile_bootstrap_of_a_binomial_for_small_n() -> None:
    """Resampling 10 outcomes of which 7 are right draws Bin(10, 0.7)/10, so the 95% percentile interval's ends are
    that distribution's 2.5% and 97.5% quantiles, up to Monte Carlo error (sd √(0.025·0.975/2000) ≈ 0.0035 in
    probability at 2000 resamples). (Not Wilson's 0.397 to 0.892: the method is the bootstrap.)"""
    # By hand: P(X ≤ 3) = 0.0106 < 0.025 < P(X ≤ 4) = 0.0473, both far from 0.025, so the low end is 4/10 exactly.
    # P(X ≤ 9) = 0.9718 is within Monte Carlo error of 0.975: the high end is 9/10 or 10/10 (or in between).
    assert binomial_cdf(3, 10, 0.7) == pytest.approx(0.0106, abs=1e-4)
    assert binomial_cdf(4, 10, 0.7) == pytest.approx(0.0473, abs=1e-4)
    assert binomial_cdf(9, 10, 0.7) == pytest.approx(0.9718, abs=1e-4)
    ci = stats.proportion_ci(7, 10)
    assert ci is not None and ci.estimate == 0.7
    assert ci.low == pytest.approx(0.4) and 0.9 <= ci.high <= 1.0
    # The mirror case: for Bin(10, 0.3), P(X ≤ 5) = 0.9527 < 0.975 < P(X ≤ 6) = 0.9894, so the high end is 6/10.
    assert binomial_cdf(5, 10, 0.3) == pytest.approx(0.9527, abs=1e-4)
    assert binomial_cdf(6, 10, 0.3) == pytest.approx(0.9894, abs=1e-4)
    mirror = stats.proportion_ci(3, 10)
    assert mirror is not None and mirror.high == pytest.approx(0.6) and 0.0 <= mirror.low <= 0.1
    # Seeded: the same counts give the same interval; another seed draws other resamples.
    assert stats.proportion_ci(320, 400) == stats.proportion_ci(320, 400)
    assert stats.proportion_ci(320, 400, seed=1) != stats.proportion_ci(320, 400)


def test_paired_difference_ci_covers_the_difference_and_narrows_with_n() -> None:
    small = stats.paired_difference_ci(5, 4, 1, 0)
    large = stats.paired_difference_ci(500, 40, 10, 450)
    assert small and large
    assert small.estimate == pytest.approx(-0.3) and small.low <= -0.3 <= small.high
    assert large.estimate == pytest.approx(-0.03) and large.low < -0.03 < large.high < 0
    assert large.high - large.low < small.high - small.low


def test_power_and_sample_size_match_connors_formula() -> None:
    # psi = 0.3, delta = 0.05: n = (1.959964·√0.3 + 0.841621·√(0.3 − 0.0025))² / 0.0025 = 939.51 → 940.
    assert stats.pairs_needed(0.3, 0.05) == 940
    assert stats.mcnemar_power(940, 0.3, 0.05) == pytest.approx(0.80, abs=0.002)
    assert stats.mcnemar_power(10, 0.3, 0.05) < 0.1
    # Identical runs (no discordant pairs) still need enough pairs to have seen a drop.
    assert stats.mcnemar_power(50, 0.0, 0.05) < 0.8 < stats.mcnemar_power(400, 0.0, 0.05)


def test_paired_quantile_difference_finds_a_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.lognormal(6, 0.25, 500)
    ci = stats.paired_quantile_difference(base, base + 150)
    assert ci and ci.estimate == pytest.approx(150) and ci.low == pytest.approx(150) == ci.high
    noisy = stats.paired_quantile_difference(base, rng.lognormal(6, 0.25, 500) + 150)
    assert noisy and noisy.low < 150 < noisy.high and noisy.low > 50
    assert stats.paired_quantile_difference([1.0], [2.0]) is None


def test_ecdf_thins_but_keeps_both_ends() -> None:
    xs, ys = stats.ecdf(list(range(10_000, 0, -1)), max_points=100)
    assert len(xs) <= 100 and xs[0] == 1 and xs[-1] == 10_000 and ys[-1] == 1.0
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
    assert stats.ecdf([None, float("nan")])[0].size == 0
