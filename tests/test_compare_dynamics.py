"""`s2s-eval compare` on turn-taking runs (issue 16): the takeover, yield and false-yield rates are paired outcomes
gated like accuracy, the yield and turn-end latencies like TTFA; the command runs as a real subprocess, so the exit
codes are what a CI job sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2s_eval.reports import stats
from s2s_eval.reports.compare import Thresholds, compare
from tests.synthetic_runs import DUPLEX, make_dynamics_run
from tests.test_compare import run_compare

CUE = {"cue_onset_ms": 3000.0}


def scenarios(*, false_yields: int = 2, yields: int = 36, takeovers: int = 3,
              turn_end_shift_ms: float = 0.0) -> dict[str, list[dict[str, Any]]]:
    """40 samples of each scenario: `false_yields` backchannels stopped the model, `yields` interruptions made
    it yield (at 200 + 5i ms), `takeovers` pauses were taken over; turn-end latency 600 + 10i ms, shifted."""
    return {
        "pause": [{"takeover": i < takeovers} for i in range(40)],
        "interruption": [{"yielded": i < yields, "yield_kind": "while_generating" if i < yields else None,
                          "yield_latency_ms": 200.0 + 5 * i if i < yields else None, **CUE} for i in range(40)],
        "backchannel": [{"false_yield": i < false_yields, **CUE} for i in range(40)],
        "turn_end": [{"turn_end_latency_ms": 600.0 + 10 * i + turn_end_shift_ms} for i in range(40)],
    }


def metrics(result: Any) -> dict[str, Any]:
    return {m.name: m for m in result.metrics}


def test_unchanged_dynamics_pass(tmp_path: Path) -> None:
    base = make_dynamics_run(tmp_path / "base", "gpt-realtime", scenarios())
    again = make_dynamics_run(tmp_path / "again", "gpt-realtime", scenarios())
    done = run_compare(base, again, "--fail-on-regression", "--json", tmp_path / "out.json")
    assert done.returncode == 0, done.stdout + done.stderr
    by_name = {m["name"]: m for m in json.loads((tmp_path / "out.json").read_text())["metrics"]}
    for name, pairs in (("takeover_rate", 40), ("yield_rate", 40), ("false_yield_rate", 40),
                        ("yield_latency_p50_ms", 36), ("turn_end_latency_p50_ms", 40)):
        assert by_name[name]["pairs"] == pairs and by_name[name]["difference"] == 0 and not by_name[name]["regression"]
    assert "false-yield rate (backchannel): 5.0% → 5.0%" in done.stdout
    assert "verdict: regression" not in done.stdout


def test_a_significant_rise_of_false_yields_fails_the_gate(tmp_path: Path) -> None:
    base = make_dynamics_run(tmp_path / "base", "gpt-realtime", scenarios(false_yields=2))
    jumpy = make_dynamics_run(tmp_path / "jumpy", "gpt-realtime", scenarios(false_yields=22))
    done = run_compare(base, jumpy, "--fail-on-regression")
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("false-yield rate"))
    p = stats.mcnemar_exact(0, 20)  # 20 backchannels stopped the new run only
    assert "5.0% → 55.0% (+50.0 pp" in line and f"McNemar p={p:.3g}" in line, line
    assert "REGRESSION beyond a 5 pp rise" in line, line
    m = metrics(compare(base, jumpy, Thresholds()))
    assert m["false_yield_rate"].regression and m["false_yield_rate"].details["only_in_new"] == 20
    assert not m["takeover_rate"].regression and not m["yield_rate"].regression
    # Fewer false yields is better, never a regression, however significant.
    assert not metrics(compare(jumpy, base, Thresholds()))["false_yield_rate"].regression


def test_a_drop_of_yields_and_slower_turn_ends_regress(tmp_path: Path) -> None:
    base = make_dynamics_run(tmp_path / "base", "gpt-realtime", scenarios(yields=36))
    stubborn = make_dynamics_run(tmp_path / "stubborn", "gpt-realtime", scenarios(yields=16, turn_end_shift_ms=400))
    m = metrics(compare(base, stubborn, Thresholds()))
    assert m["yield_rate"].regression and m["yield_rate"].difference == -0.5
    assert m["turn_end_latency_p50_ms"].regression and m["turn_end_latency_p50_ms"].difference == 400
    assert m["yield_latency_p50_ms"].pairs == 16 and m["yield_latency_p50_ms"].underpowered
    # More yields is better; a looser latency threshold tolerates the slower turn ends.
    assert not metrics(compare(stubborn, base, Thresholds()))["yield_rate"].regression
    loose = metrics(compare(base, stubborn, Thresholds(max_ttfa_increase_ms=500)))
    assert not loose["turn_end_latency_p50_ms"].regression


def test_other_full_duplex_settings_are_a_warning(tmp_path: Path) -> None:
    base = make_dynamics_run(tmp_path / "base", "gpt-realtime", scenarios())
    other = make_dynamics_run(tmp_path / "other", "gpt-realtime", scenarios(),
                              duplex={**DUPLEX, "max_pause_ms": 1000.0})
    warnings = "\n".join(compare(base, other, Thresholds()).warnings)
    assert "full-duplex settings differ" in warnings and '"max_pause_ms": 1000.0' in warnings


def test_runs_without_dynamics_compare_as_before(tmp_path: Path) -> None:
    from tests.synthetic_runs import make_run

    base = make_run(tmp_path / "base", "gpt-realtime", 40, 0.8, seed=1)
    assert [m.name for m in compare(base, base, Thresholds()).metrics] == ["accuracy", "ttfa_p50_ms", "error_rate"]
