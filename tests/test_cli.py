"""The `s2s-eval` command and `make eval` as a user meets them: one clear line on bad input, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run([sys.executable, "-m", "s2s_eval", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**environment, **(env or {})})


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_real_api_profile_without_its_key_stops_at_once() -> None:
    done = cli("run", "--model", "gpt-realtime", "--eval", "big_bench_audio", "--limit", "1")
    assert_one_clear_line(done, "OPENAI_API_KEY")


def test_unknown_profile_and_eval_list_what_exists() -> None:
    assert_one_clear_line(cli("run", "--model", "nope", "--eval", "big_bench_audio"), "unknown model profile",
                          "gpt-realtime")
    assert_one_clear_line(cli("run", "--model", "local", "--eval", "nope"), "unknown eval", "big_bench_audio")


def test_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    done = cli("run", "--model", "local", "--eval", "big_bench_audio", "--data-dir", str(tmp_path / "none"))
    assert_one_clear_line(done, "not found")


def test_openai_compatible_needs_a_url() -> None:
    assert_one_clear_line(cli("run", "--model", "openai-compatible", "--eval", "big_bench_audio"), "--url")


def test_local_run_then_report(data_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = cli("run", "--model", "local", "--eval", "big_bench_audio", "--limit", "4", "--data-dir", str(data_dir),
               "--out", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert "4 samples, 0 errors" in done.stdout
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) == 4
    report = tmp_path / "report.html"
    done = cli("report", str(run_dir), "--out", str(report))
    assert done.returncode == 0, done.stderr
    assert "<img" in report.read_text() or "<svg" in report.read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_eval_with_a_real_profile_and_no_key_names_the_variable() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(["make", "--no-print-directory", "eval", "MODEL=gpt-realtime", "LIMIT=1",
                           f"PYTHON={sys.executable}"], capture_output=True, text=True, cwd=ROOT, env=environment,
                          timeout=600)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    tool_lines = [line for line in done.stderr.splitlines() if line.startswith("s2s-eval:")]
    assert len(tool_lines) == 1 and "OPENAI_API_KEY" in tool_lines[0]
