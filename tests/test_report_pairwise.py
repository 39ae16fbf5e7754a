"""A report of three models of known accuracy: the Holm-corrected pairwise table and the "which pairs differ" matrix,
checked against scipy computed here, in the HTML source and in real Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from s2s_eval.reports.html import build_report
from tests.browser import require_chromium
from tests.cdp import open_page
from tests.synthetic_runs import make_run
from tests.test_report import tables

N = 200
# Alpha and beta are both right on 90% of the items (each misses a different tenth); gamma on every other item.
MODELS = {"alpha": lambda i: i % 10 != 0, "beta": lambda i: i % 10 != 5, "gamma": lambda i: i % 2 == 0}


def three_models(tmp_path: Path) -> Path:
    dirs = [make_run(tmp_path / "runs" / name, name, N, 0.0, correct_of=right) for name, right in MODELS.items()]
    return build_report(dirs, tmp_path / "reports" / "index.html", audio=False)


def expected() -> dict[tuple[str, str], float]:
    """Holm-adjusted McNemar p-values, by hand: exact binomial tests of the discordant pairs, then step-down."""
    names = list(MODELS)
    raw = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            a_only = sum(MODELS[a](k) and not MODELS[b](k) for k in range(N))
            b_only = sum(MODELS[b](k) and not MODELS[a](k) for k in range(N))
            raw[(a, b)] = scipy_stats.binomtest(a_only, a_only + b_only, 0.5).pvalue
    ordered = sorted(raw, key=raw.__getitem__)
    adjusted, running = {}, 0.0
    for rank, pair in enumerate(ordered):
        running = max(running, min(1.0, (len(raw) - rank) * raw[pair]))
        adjusted[pair] = running
    return adjusted


def short(label: str) -> str:
    return label.split(" (", 1)[0]


def test_pairwise_table_is_holm_corrected_and_equal_models_are_not_distinguishable(tmp_path: Path) -> None:
    html = three_models(tmp_path).read_text(encoding="utf-8")
    # Labels read `profile (provider/model · effort E)`: the profile name is the part before the bracket.
    rows = [[short(r[0]), short(r[1]), *r[2:]] for r in tables(html)["pairwise"]]
    assert [(r[0], r[1]) for r in rows] == [("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")]
    holm = expected()
    for row in rows:
        a, b, n, acc_a, acc_b, diff, _ci, test, _p, p_holm, detectable, distinguishable = row
        assert n == str(N) and test == "McNemar exact"
        assert float(p_holm) == pytest.approx(holm[(a, b)], rel=1e-2)
        assert detectable.endswith(" pp") and 0 < float(detectable.split()[0]) < 100
        assert distinguishable == ("yes" if holm[(a, b)] < 0.05 else "no")
    by_pair = {(r[0], r[1]): r for r in rows}
    assert by_pair[("alpha", "beta")][3:6] == ["90.0%", "90.0%", "+0.0 pp"]
    assert by_pair[("alpha", "beta")][-1] == "no" and float(by_pair[("alpha", "beta")][9]) == 1.0
    assert by_pair[("alpha", "gamma")][-1] == "yes" and by_pair[("beta", "gamma")][-1] == "yes"
    matrix = tables(html)["distinguishable"]  # rows without their <th> model name
    assert matrix == [["—", "≈ p=1", "≠ p=" + f"{holm[('alpha', 'gamma')]:.2g}"],
                                           ["≈ p=1", "—", "≠ p=" + f"{holm[('beta', 'gamma')]:.2g}"],
                                           ["≠ p=" + f"{holm[('alpha', 'gamma')]:.2g}",
                                            "≠ p=" + f"{holm[('beta', 'gamma')]:.2g}", "—"]]


def test_two_models_get_no_pairwise_section(tmp_path: Path) -> None:
    dirs = [make_run(tmp_path / "runs" / name, name, 40, 0.5, seed=1) for name in ("alpha", "beta")]
    html = build_report(dirs, tmp_path / "index.html", audio=False).read_text(encoding="utf-8")
    assert "pairwise" not in tables(html) and 'id="pairwise-1"' not in html


def test_pairwise_view_renders_in_chromium(tmp_path: Path) -> None:
    require_chromium()
    out = three_models(tmp_path)
    with open_page(out.as_uri(), width=1280, height=1000) as page:
        page.settle()
        assert page.evaluate("document.documentElement.dataset.ready") == "1", page.problems
        cells = page.evaluate("""Array.from(document.querySelectorAll('table.distinguishable td[data-pair]'))
            .map(td => [td.dataset.pair, td.className, td.innerText.trim(), td.getBoundingClientRect().width > 0])""")
        shown = {" | ".join(short(x) for x in pair.split(" | ")): (cls.split()[-1], text, visible)
                 for pair, cls, text, visible in cells}
        assert shown["alpha | beta"][0] == "no" and shown["alpha | beta"][1].startswith("≈")
        assert shown["alpha | gamma"][0] == "yes" and shown["beta | gamma"][0] == "yes"
        assert all(visible for _, _, visible in shown.values())
        heading = page.evaluate("document.querySelector('#pairwise-1 h2').innerText")
        assert "Which models differ" in heading
        assert not page.problems, page.problems
