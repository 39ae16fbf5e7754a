"""`s2s-eval sweep`: one eval across perturbation levels against the embedded server, a run per level, one report."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest

from s2s_eval.cli import main
from s2s_eval.errors import UserError
from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import RunOptions
from s2s_eval.runners.sweep import level_name, sweep
from tests.cdp import open_page


def test_sweep_over_three_snr_levels_makes_a_run_each_and_one_report(data_dir: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, report = tmp_path / "sweep", tmp_path / "sweep.html"
    code = main(["sweep", "--model", "local", "--eval", "big_bench_audio", "--limit", "4", "--data-dir", str(data_dir),
                 "--perturb", "noise", "--levels", "30,20,10", "--noise", "pink", "--out", str(out),
                 "--report", str(report)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert sorted(p.name for p in out.iterdir()) == ["noise-10", "noise-20", "noise-30"]
    heard = {}
    for level in (30, 20, 10):
        run_dir = out / f"noise-{level}"
        spec = read_spec(run_dir)
        assert spec["perturbation"] == {"kind": "noise", "level": float(level), "unit": "dB SNR", "noise": "pink",
                                        "seed": 0}
        records = list(read_records(run_dir))
        assert len(records) == 4 and all(r["status"] == "ok" for r in records)
        for r in records:
            assert r["perturbation"]["level"] == float(level)
            assert abs(r["perturbation"]["measured_snr_db"] - level) < 0.5
        heard[level] = {r["sample_id"] for r in records}
        assert f"noise {level}: {run_dir}: 4 samples, 0 errors" in printed
    assert heard[30] == heard[20] == heard[10]  # the same samples at every level
    html = report.read_text()
    assert report.is_file() and f"report: {report}" in printed
    assert all(read_spec(out / f"noise-{level}")["run_id"] in html for level in (30, 20, 10))
    # The accuracy-vs-SNR chart and its table: one row per level, cleanest first, each with the run's accuracy.
    assert "Accuracy vs noise (dB SNR) · big_bench_audio" in html
    chart = re.search(r'id="chart-levels-1" src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert chart and b"<svg" in base64.b64decode(chart.group(1))
    table = html[html.index('<table class="levels">'):]
    table = table[:table.index("</table>")]
    levels = re.findall(r'<tr>\s*<td class="num">([^<]+)</td>\s*<td class="num">([^<]+)<span class="sub">(\d+)/(\d+)',
                        table)
    assert [row[0] for row in levels] == ["30", "20", "10"]
    for level, accuracy, correct, graded in levels:
        records = list(read_records(out / f"noise-{level}"))
        assert int(correct) == sum(r["correct"] is True for r in records)
        assert int(graded) == sum(r["correct"] is not None for r in records)
        assert accuracy.strip() == f"{100 * int(correct) / int(graded):.1f}%"
    assert 'id="trends"' not in html  # levels of one sweep are not a history
    # In a real browser: the chart decodes, the section is linked from the header, and nothing logs an error.
    with open_page(report.as_uri(), width=1280, height=900) as page:
        page.settle()
        size = page.evaluate("(i => [i.complete, i.naturalWidth, i.naturalHeight])"
                             "(document.getElementById('chart-levels-1'))")
        assert size[0] and size[1] > 200 and size[2] > 100, size
        assert page.evaluate("document.querySelector('a[href=\"#levels-1\"]') !== null")
        assert page.problems == [], page.problems


def test_levels_are_checked_before_any_run(tmp_path: Path) -> None:
    base = RunOptions(model="local", eval="big_bench_audio", limit=1, progress=False)
    with pytest.raises(UserError, match="the tempo factor must be between 0.25 and 4"):
        asyncio.run(sweep(base, "rate", [1.5, 0.0], tmp_path / "s"))
    with pytest.raises(UserError, match="a level is repeated"):
        asyncio.run(sweep(base, "noise", [10, 10.0], tmp_path / "s"))
    with pytest.raises(UserError, match="telephone has no level to sweep"):
        asyncio.run(sweep(base, "telephone", [1], tmp_path / "s"))
    assert not (tmp_path / "s").exists()
    assert level_name("rate", 1.25) == "rate-1.25" and level_name("noise", -5.0) == "noise--5"


def test_sweep_cli_refuses_bad_levels(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--model", "local", "--eval", "big_bench_audio", "--perturb", "noise", "--levels", "loud"])
    assert "expected numbers separated by commas" in capsys.readouterr().err
