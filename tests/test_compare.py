"""`s2s-eval compare`: paired tests decide the exit code; underpowered and mismatched comparisons are flagged.

Runs are synthetic run directories in the runner's exact layout; the command runs as a real subprocess, so exit
codes and the one-line errors are what a CI job sees.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from s2s_eval.reports import stats
from s2s_eval.reports.compare import Thresholds, compare
from tests.synthetic_runs import make_run


def run_compare(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s2s_eval", "compare", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_identical_runs_pass(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", "gpt-realtime", 400, 0.8, seed=1)
    done = run_compare(base, base, "--fail-on-regression", "--json", tmp_path / "out.json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["verdict"] == "no significant regression"
    assert not result["underpowered"] and not result["warnings"]
    accuracy = result["metrics"][0]
    assert accuracy["difference"] == 0 and accuracy["p_value"] == 1.0 and accuracy["pairs"] == 400
    assert "verdict: no significant regression" in done.stdout


def test_clear_significant_drop_fails_only_with_the_flag(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", "gpt-realtime", 400, 0.8, seed=1)
    new = make_run(tmp_path / "new", "gpt-realtime", 400, 0.5, seed=2)
    gated = run_compare(base, new, "--fail-on-regression")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "REGRESSION beyond 5 pp" in gated.stdout and "verdict: regression" in gated.stdout
    assert run_compare(base, new).returncode == 0  # reported, but only the gate flag makes it fail
    # A threshold larger than the drop tolerates it, significant or not.
    assert run_compare(base, new, "--fail-on-regression", "--max-accuracy-drop", "50").returncode == 0


def test_small_sample_drop_is_underpowered_not_a_failure(tmp_path: Path) -> None:
    # 80% -> 50% on 10 questions: a big drop, but McNemar p = 0.25 with 3 discordant pairs.
    base = make_run(tmp_path / "base", "gpt-realtime", 10, 0, correct_of=lambda i: i < 8)
    new = make_run(tmp_path / "new", "gpt-realtime", 10, 0, correct_of=lambda i: i < 5)
    done = run_compare(base, new, "--fail-on-regression", "--min-pairs", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "underpowered: 10 pairs give" in done.stdout and "verdict: underpowered" in done.stdout
    # The verdict says how many pairs would have been enough, and what this n could have detected.
    needed = stats.pairs_needed(3 / 10, 0.05)
    assert f"about {needed:,} are needed" in done.stdout and needed > 10
    assert re.search(r"detectable with 80% power: \d+\.\d pp", done.stdout)


def test_significant_drop_below_min_pairs_does_not_fail_the_gate(tmp_path: Path) -> None:
    # 20 right -> 0 right on 20 questions is significant (p < 2e-6), but 20 pairs are under --min-pairs 30.
    base = make_run(tmp_path / "base", "gpt-realtime", 20, 0, correct_of=lambda i: True)
    new = make_run(tmp_path / "new", "gpt-realtime", 20, 0, correct_of=lambda i: False)
    done = run_compare(base, new, "--fail-on-regression")
    assert done.returncode == 0 and "only 20 pairs (fewer than --min-pairs 30)" in done.stdout
    # Significant on 20 pairs, yet the gate says how many it wants before it passes or fails anything.
    # (Every pair is discordant here, so seeing a 5 pp drop among such noise takes thousands.)
    needed = stats.pairs_needed(1.0, 0.05)
    assert f"about {needed:,} are needed for 80% power against a 5 pp drop" in done.stdout and needed > 1000
    assert run_compare(base, new, "--fail-on-regression", "--min-pairs", "20").returncode == 1


def test_ttfa_regression_beyond_threshold(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", "gpt-realtime", 200, 0.8, seed=1, ttfa_scale=1.0)
    slower = make_run(tmp_path / "slower", "gpt-realtime", 200, 0.8, seed=1, ttfa_scale=1.6)  # same answers
    done = run_compare(base, slower, "--fail-on-regression")
    assert done.returncode == 1, done.stdout
    assert "TTFA p50" in done.stdout and "REGRESSION beyond 100 ms" in done.stdout
    assert run_compare(base, slower, "--fail-on-regression", "--max-ttfa-increase-ms", "1000").returncode == 0


def test_mismatches_are_flagged(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", "gpt-realtime", 300, 0.8, seed=1)
    new = make_run(tmp_path / "new", "gpt-realtime", 250, 0.8, seed=1, dataset_sha="cd" * 32,
                   tts={"engine": "edge", "voice": "en-US-AriaNeural", "rate": 175},
                   judge={"configured": True, "model": "gpt-4.1", "prompt_versions": {"bba": 2}})
    result = compare(base, new, Thresholds())
    text = "\n".join(result.warnings)
    assert "mismatched subsets: 50 sample(s) only in base, 0 only in new" in text
    assert "dataset revisions differ" in text and "TTS settings differ" in text and "judges differ" in text
    assert result.paired == 250 and len(result.only_base) == 50
    # A run heard through noise, or typed, is not the same measurement as a clean spoken one.
    spec = json.loads((new / "spec.json").read_text())
    spec["perturbation"] = {"kind": "noise", "level": 10.0, "unit": "dB SNR", "noise": "white", "seed": 0}
    spec["runner"]["input_modality"] = "text"
    (new / "spec.json").write_text(json.dumps(spec))
    text = "\n".join(compare(base, new, Thresholds()).warnings)
    assert "input perturbations differ" in text and "input modalities differ" in text


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    good = make_run(tmp_path / "good", "gpt-realtime", 40, 0.8)
    other_eval = make_run(tmp_path / "mc", "gpt-realtime", 40, 0.8, eval_name="multichallenge")
    corrupt = make_run(tmp_path / "corrupt", "gpt-realtime", 40, 0.8)
    (corrupt / "spec.json").write_text("{not json", encoding="utf-8")
    disjoint = make_run(tmp_path / "disjoint", "gpt-realtime", 4, 0.8)
    (disjoint / "samples.jsonl").write_text(
        (disjoint / "samples.jsonl").read_text().replace('"navigate_0"', '"zzz_0"').replace(
            '"formal_fallacies_0"', '"zzz_1"').replace('"object_counting_0"', '"zzz_2"').replace(
            '"web_of_lies_0"', '"zzz_3"'))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        (tmp_path / "missing", good): "no such run directory",
        (empty, good): "not a run directory (no spec.json)",
        (good, other_eval): "compare two runs of one eval",
        (corrupt, good): "spec.json: not valid JSON",
        (good, disjoint): "share no sample id",
    }
    for (a, b), message in cases.items():
        done = run_compare(a, b, "--fail-on-regression")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (a, b, done.stdout, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("s2s-eval: error:") and message in lines[0], lines
    done = run_compare(good, good, "--alpha", "2")
    assert done.returncode == 2 and "must be between 0 and 1" in done.stderr


def test_a_run_that_mostly_failed_fails_the_gate(tmp_path: Path) -> None:
    # Accuracy pairs only graded samples: 97% errors would leave ~12 pairs, "underpowered", and the gate open.
    base = make_run(tmp_path / "base", "gpt-realtime", 400, 0.8, seed=1)
    outage = make_run(tmp_path / "outage", "gpt-realtime", 400, 0.8, seed=2, error_rate=0.97)
    done = run_compare(base, outage, "--fail-on-regression", "--json", tmp_path / "out.json")
    assert done.returncode == 1, done.stdout + done.stderr
    errors = json.loads((tmp_path / "out.json").read_text())["metrics"][2]
    assert errors["name"] == "error_rate" and errors["regression"] and errors["base"] == 0
    assert errors["new"] > 0.9 and errors["pairs"] == 400
    line = next(x for x in done.stdout.splitlines() if x.startswith("error rate:"))
    assert f"0.0% → {errors['new'] * 100:.1f}%" in line and "REGRESSION" in line and "ceiling" in line
    assert "verdict: regression" in done.stdout
    # Reported either way; only the gate flag turns it into a failure.
    assert run_compare(base, outage).returncode == 0


def test_a_normal_error_rate_passes_and_a_significant_rise_fails(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", "gpt-realtime", 400, 0.8, seed=1, error_rate=0.01)
    usual = make_run(tmp_path / "usual", "gpt-realtime", 400, 0.8, seed=1, error_rate=0.015)
    done = run_compare(base, usual, "--fail-on-regression")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: no significant regression" in done.stdout
    # 8% errors is under the 10% ceiling but a significant rise of about 7 pp over 1%.
    worse = make_run(tmp_path / "worse", "gpt-realtime", 400, 0.8, seed=1, error_rate=0.08)
    result = compare(base, worse, Thresholds())
    errors = result.metrics[2]
    assert errors.new is not None and 0.05 < errors.new < 0.1 and errors.regression and result.regression
    assert errors.p_value is not None and errors.p_value < 0.05 and "rose significantly" in errors.note
    assert run_compare(base, worse, "--fail-on-regression", "--max-error-increase", "20").returncode == 0
    # The ceiling holds whatever the base: a run that is 30% errors is not a measurement of the model.
    both_bad = make_run(tmp_path / "bad", "gpt-realtime", 400, 0.8, seed=1, error_rate=0.3)
    assert run_compare(both_bad, both_bad, "--fail-on-regression").returncode == 1
    assert run_compare(both_bad, both_bad, "--fail-on-regression", "--max-error-rate", "50").returncode == 0
