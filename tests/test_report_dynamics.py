"""Conversational dynamics in the report (issue 16): two turn-taking runs of known behaviour, their figures counted
here by hand, the report's section showing both side by side (in the source and in real Chromium), the scenario's
verdict and timeline in the drill-down, and no section for runs without full-duplex records."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats

from s2s_eval.log import read_records
from s2s_eval.reports import aggregate, dynamics
from s2s_eval.reports.html import build_report
from tests.browser import require_chromium
from tests.cdp import open_page
from tests.synthetic_runs import DUPLEX, dynamics_record, make_dynamics_run, make_run
from tests.test_report import page_data, tables

CUE = {"cue_onset_ms": 3000.0}


def steady() -> dict[str, list[dict[str, Any]]]:
    """Waits through most pauses, yields to most interruptions (both kinds), rarely stops for a backchannel."""
    yields = [("while_generating", 200.0), ("while_generating", 220.0), ("while_generating", 240.0),
              ("while_generating", 260.0), ("during_playback", 400.0), ("during_playback", 500.0)]
    interruptions = [{"yielded": True, "yield_kind": kind, "yield_latency_ms": ms, **CUE} for kind, ms in yields]
    interruptions += [{"yielded": False, **CUE}, {"yielded": None, **CUE}]  # the last: not measured
    for facts, addressed in zip(interruptions, (True, True, True, False), strict=False):
        facts["addressed"] = addressed
    return {
        "pause": [{"takeover": i < 2, "turn_end_latency_ms": {2: 500.0, 3: 1100.0}.get(i)} for i in range(10)],
        "interruption": interruptions,
        "backchannel": [{"false_yield": i == 0, **CUE} for i in range(6)],
        "turn_end": [{"turn_end_latency_ms": 600.0 + 100 * i} for i in range(5)],
    }


def jumpy() -> dict[str, list[dict[str, Any]]]:
    """Takes over most pauses, yields to half the interruptions (never judged), stops for most backchannels."""
    return {
        "pause": [{"takeover": i < 7} for i in range(10)],
        "interruption": [{"yielded": i < 4, "yield_kind": "while_generating" if i < 4 else None,
                          "yield_latency_ms": 300.0 + 20 * i if i < 4 else None, **CUE} for i in range(8)],
        "backchannel": [{"false_yield": i < 4, **CUE} for i in range(6)],
        "turn_end": [{"turn_end_latency_ms": 300.0 + 100 * i} for i in range(5)],
    }


# What the module docstring promises, counted by hand from the facts above (numpy's linear percentiles).
EXPECTED = {
    "steady": {"takeover": (2, 10), "yield": (6, 7), "addressed": (3, 4), "false_yield": (1, 6),
               "yield_latency": (6, 250.0, 450.0), "yield_while_generating": (4, 230.0, 254.0),
               "yield_during_playback": (2, 450.0, 490.0), "turn_end_latency": (7, 800.0, 1040.0)},
    "jumpy": {"takeover": (7, 10), "yield": (4, 8), "addressed": (0, 0), "false_yield": (4, 6),
              "yield_latency": (4, 330.0, 354.0), "yield_while_generating": (4, 330.0, 354.0),
              "yield_during_playback": (0, None, None), "turn_end_latency": (5, 500.0, 660.0)},
}


def two_runs(tmp_path: Path) -> list[Path]:
    steady_run = make_dynamics_run(tmp_path / "runs" / "steady", "steady", steady())
    # A failed session's facts are not a measurement: this takeover must not count.
    failed = dynamics_record("pause_99", "steady", "pause", rng=random.Random(0), takeover=True)
    failed.update(status="error", error={"kind": "timeout", "class": "transient", "message": "no response.done"})
    with (steady_run / "samples.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(failed) + "\n")
    jumpy_run = make_dynamics_run(tmp_path / "runs" / "jumpy", "jumpy", jumpy(),
                                  duplex={**DUPLEX, "policy": "stop_at_playback_end", "max_pause_ms": 1500.0})
    return [steady_run, jumpy_run]


def wilson(hits: int, n: int) -> tuple[float, float]:
    ci = scipy_stats.binomtest(hits, n).proportion_ci(method="wilson")
    return ci.low, ci.high


def test_figures_are_the_hand_counts(tmp_path: Path) -> None:
    runs = aggregate.load_runs(two_runs(tmp_path))
    figures = dynamics.run_figures(runs)
    assert [f.label.split(" ")[0] for f in figures] == ["steady", "jumpy"]
    for f, want in zip(figures, EXPECTED.values(), strict=True):
        rates = {key: rate for key, _, rate in f.rates()}
        for key in ("takeover", "yield", "addressed", "false_yield"):
            hits, n = want[key]
            assert (rates[key].hits, rates[key].n) == (hits, n), key
            if n == 0:  # nothing measured: no estimate and no interval, never 0%
                assert rates[key].estimate is None and rates[key].ci is None
                continue
            assert rates[key].estimate == pytest.approx(hits / n)
            assert (rates[key].ci.low, rates[key].ci.high) == pytest.approx(wilson(hits, n)), key
            assert rates[key].ci.method == "Wilson score"
        latencies = {key: q for key, _, q in f.latencies()}
        for key in ("yield_latency", "yield_while_generating", "yield_during_playback", "turn_end_latency"):
            n, p50, p90 = want[key]
            q = latencies[key]
            assert q.n == n, key
            if n == 0:
                assert q.p50 is None and q.p90 is None
                continue
            assert (q.p50.estimate, q.p90.estimate) == pytest.approx((p50, p90)), key
            for interval in (q.p50, q.p90):
                assert interval.method == "bootstrap" and interval.low <= interval.estimate <= interval.high
        assert f.scenarios == {"pause": 10, "interruption": 8, "backchannel": 6, "turn_end": 5}
    assert (figures[0].policy, figures[0].max_pause_ms, figures[0].frame_ms) == ("stop_at_speech_started", 2000.0, 20)
    assert (figures[1].policy, figures[1].max_pause_ms) == ("stop_at_playback_end", 1500.0)
    # Seeded: the same run gives the same intervals.
    again = dynamics.run_figures(aggregate.load_runs(two_runs(tmp_path / "again")))
    assert again[0].turn_end_latency.p90 == figures[0].turn_end_latency.p90


def test_settings_come_from_the_records_when_the_spec_has_none(tmp_path: Path) -> None:
    run = make_dynamics_run(tmp_path / "old", "old", {"pause": [{"takeover": False}]})
    spec = json.loads((run / "spec.json").read_text())
    del spec["runner"]["duplex"]
    (run / "spec.json").write_text(json.dumps(spec))
    parts = dynamics.dynamics_of(read_records(run))
    f = dynamics.figures(parts, spec=spec)
    assert (f.policy, f.max_pause_ms, f.frame_ms) == ("stop_at_speech_started", 2000.0, None)
    assert f.turn_end_latency.n == 0 and f.turn_end_latency.p50 is None


def section_rows(html: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in tables(html)["dynamics"]}


def test_report_shows_both_runs_side_by_side(tmp_path: Path) -> None:
    out = build_report(two_runs(tmp_path), tmp_path / "reports" / "index.html", audio=False)
    html = out.read_text(encoding="utf-8")
    assert 'id="dynamics"' in html and 'href="#dynamics"' in html and 'id="chart-yield"' in html
    rows = section_rows(html)
    assert rows["Playback policy"] == ["stop_at_speech_started", "stop_at_playback_end"]
    assert rows["Max pause (ms)"] == ["2,000", "1,500"]
    assert rows["Scenarios run"][0] == "pause 10 · interruption 8 · backchannel 6 · turn_end 5"
    for name, key in (("Takeover rate (pause)", "takeover"), ("Yield rate (interruption)", "yield"),
                      ("False-yield rate (backchannel)", "false_yield"), ("Addressed the interruption", "addressed")):
        for cell, want in zip(rows[name], EXPECTED.values(), strict=True):
            hits, n = want[key]
            if n == 0:
                assert cell == "not measured"
                continue
            low, high = wilson(hits, n)
            assert cell.startswith(f"{100 * hits / n:.1f}% {hits}/{n}"), (name, cell)
            assert f"95% CI {100 * low:.1f}%–{100 * high:.1f}%" in cell, (name, cell)
    for name, key in (("Yield latency", "yield_latency"), ("… yielded while generating,", "yield_while_generating"),
                      ("… yielded during playback,", "yield_during_playback"),
                      ("Turn-end latency", "turn_end_latency")):
        for p, index in (("p50", 1), ("p90", 2)):
            for cell, want in zip(rows[f"{name} {p}"], EXPECTED.values(), strict=True):
                if want[key][0] == 0:
                    assert cell == "not measured", (name, cell)
                else:
                    assert cell.startswith(f"{want[key][index]:,.0f} ms n={want[key][0]}"), (name, p, cell)
    # The drill-down carries each scenario's verdict, facts and timeline; a None fact is left out, not 0.
    data = page_data(html)
    drills = [s["dynamics"] for s in data["samples"] if "dynamics" in s]
    assert len(drills) == 2 * 29 + 1
    pause = next(d for d in drills if d["scenario"] == "pause" and d["facts"].get("takeover") == "yes")
    assert "turn_end_latency_ms" not in pause["facts"] and pause["timeline"]
    assert {data["events"][i] for i, _ in pause["timeline"]} >= {"caller.first_frame", "caller.voiced_end"}


def test_no_section_without_dynamics_records(tmp_path: Path) -> None:
    out = build_report([make_run(tmp_path / "runs" / "bba", "gpt-realtime", 8, 0.5)], tmp_path / "index.html",
                       audio=False)
    html = out.read_text(encoding="utf-8")
    assert '<section class="card" id="dynamics">' not in html and 'href="#dynamics"' not in html
    assert 'class="dynamics"' not in html and page_data(html)["samples"] and not any(
        "dynamics" in s for s in page_data(html)["samples"])


def test_dynamics_section_renders_in_chromium(tmp_path: Path) -> None:
    """Real Chromium: the section shows both runs' takeover, yield, false-yield and turn-end figures, its chart
    decodes, and a scenario's drill-down shows its verdict and timeline, with no console error."""
    require_chromium()
    out = build_report(two_runs(tmp_path), tmp_path / "reports" / "index.html", audio=False)
    with open_page(out.as_uri(), width=1280, height=1000) as page:
        page.settle()
        assert page.evaluate("document.documentElement.dataset.ready") == "1", page.problems
        shown = page.evaluate("""(() => {
            const cell = (metric, run) => document.querySelector(
                '#dynamics tr[data-metric="' + metric + '"] td[data-run="' + run + '"]').innerText;
            const out = {};
            for (const m of ['takeover', 'yield', 'false_yield', 'turn_end_latency_p50']) {
                out[m] = [cell(m, 0), cell(m, 1)];
            }
            const img = document.getElementById('chart-yield');
            out.chart = [img.complete, img.naturalWidth];
            out.visible = document.getElementById('dynamics').getBoundingClientRect().height;
            return out;
        })()""")
        assert shown["takeover"][0].startswith("20.0%") and shown["takeover"][1].startswith("70.0%"), shown
        assert shown["yield"][0].startswith("85.7%") and shown["yield"][1].startswith("50.0%"), shown
        assert shown["false_yield"][0].startswith("16.7%") and shown["false_yield"][1].startswith("66.7%"), shown
        assert shown["turn_end_latency_p50"][0].startswith("800 ms")
        assert shown["turn_end_latency_p50"][1].startswith("500 ms"), shown
        assert shown["chart"][0] and shown["chart"][1] > 200 and shown["visible"] > 300, shown
        opened = page.evaluate("""(() => {
            const row = Array.from(document.querySelectorAll('#sample-table tbody tr')).find(
                r => r.cells[1].textContent.replace(/\\s/g, '') === 'interruption_4' && r.dataset.m === '0');
            row.querySelector('button.more').click();
            const box = row.nextElementSibling.querySelector('.dynamics-drill');
            return {text: box.textContent, events: box.querySelectorAll('table.events tr').length};
        })()""")
        assert "Conversational dynamics · interruption" in opened["text"], opened
        assert "yield_kindduring_playback" in opened["text"] and "yield_latency_ms400 ms" in opened["text"], opened
        assert opened["events"] == 4  # first frame, cue onset, voiced end, playback stopped
        page.settle()
        assert page.problems == [], page.problems
