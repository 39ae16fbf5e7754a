"""Every pair of models on one eval: the accuracy difference, its test, and whether it survives Holm's correction.

With six models a report makes fifteen comparisons; at 5% each, one of them would look "significant" by chance
most of the time. Holm's step-down correction keeps the chance of any false "A beats B" at 5% across the eval.
Where the two runs graded the same items the test is McNemar's (exact, on the discordant pairs) over those items;
otherwise Fisher's exact test on the two shares. Every comparison shows the smallest difference its n could
detect with 80% power, so "not distinguishable" reads as "not shown", never as "equal".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from s2s_eval.reports import stats
from s2s_eval.reports.aggregate import Group


@dataclass(frozen=True)
class Pair:
    """Model b against model a on one eval: b's accuracy minus a's, in fractions."""

    a: str
    b: str
    paired: bool
    n: int  # paired items, or the smaller of the two graded counts when unpaired
    accuracy_a: float
    accuracy_b: float
    difference: stats.Interval
    test: str
    p_value: float
    p_holm: float = 1.0
    detectable: float | None = None

    @property
    def distinguishable(self) -> bool:
        return self.p_holm < stats.ALPHA


@dataclass(frozen=True)
class EvalPairs:
    """The pairwise comparisons of one eval, and the models in report order (for the matrix)."""

    eval: str
    labels: tuple[str, ...]
    pairs: tuple[Pair, ...]

    def cell(self, row: str, column: str) -> Pair | None:
        return next((p for p in self.pairs if {p.a, p.b} == {row, column}), None)


def _compare(a: Group, b: Group) -> Pair | None:
    common = sorted(a.verdicts.keys() & b.verdicts.keys())
    # Paired when the runs graded the same items (a few missing on one side still pair; the rest is left out).
    if common and len(common) >= 0.5 * max(len(a.verdicts), len(b.verdicts)):
        both = sum(a.verdicts[i] and b.verdicts[i] for i in common)
        a_only = sum(a.verdicts[i] and not b.verdicts[i] for i in common)
        b_only = sum(b.verdicts[i] and not a.verdicts[i] for i in common)
        n = len(common)
        ci = stats.paired_difference_ci(both, a_only, b_only, n - both - a_only - b_only)
        assert ci is not None
        return Pair(a.label, b.label, True, n, (both + a_only) / n, (both + b_only) / n, ci, "McNemar exact",
                    stats.mcnemar_exact(a_only, b_only),
                    detectable=stats.detectable_paired_difference(n, (a_only + b_only) / n))
    n_a, n_b = len(a.verdicts), len(b.verdicts)
    if not n_a or not n_b:
        return None
    right_a, right_b = sum(a.verdicts.values()), sum(b.verdicts.values())
    ci = stats.difference_ci(right_a, n_a, right_b, n_b)
    assert ci is not None
    return Pair(a.label, b.label, False, min(n_a, n_b), right_a / n_a, right_b / n_b, ci, "Fisher exact",
                stats.fisher_exact(right_a, n_a, right_b, n_b),
                detectable=stats.detectable_difference(n_a, right_a / n_a, n_b, right_b / n_b))


def eval_pairs(groups: Sequence[Group], *, min_models: int = 3) -> list[EvalPairs]:
    """Per eval with at least `min_models` models graded: every pair, Holm-corrected within the eval."""
    by_eval: dict[str, list[Group]] = {}
    for g in groups:
        if g.verdicts:
            by_eval.setdefault(g.eval, []).append(g)
    out = []
    for eval_name, members in by_eval.items():
        if len(members) < min_models:
            continue
        pairs = [p for a, b in itertools.combinations(members, 2) if (p := _compare(a, b)) is not None]
        adjusted = stats.holm([p.p_value for p in pairs])
        pairs = [Pair(**{**p.__dict__, "p_holm": q}) for p, q in zip(pairs, adjusted, strict=True)]
        out.append(EvalPairs(eval_name, tuple(g.label for g in members), tuple(pairs)))
    return out
