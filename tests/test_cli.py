"""The `s2s-eval` command and `make eval` as a user meets them: one clear line on bad input, never a traceback."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
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


# The charts a one-run report promises, by their alt text, and labels each must draw: matplotlib writes every text it
# draws as a comment beside its glyph paths (`svg.fonttype` "path"), so a chart with these is the chart named.
# LOCAL is the local profile's label in a report: profile name, then provider/model and reasoning effort.
LOCAL = "local (local/s2s-eval-reference · effort –)"
REPORT_CHARTS = {
    "Bar chart: accuracy per eval and model": {"big bench audio", LOCAL, "Accuracy"},
    "Bar chart: accuracy by category and model for big_bench_audio": {
        "big_bench_audio: accuracy by category", "formal fallacies", "navigate", "object counting", "web of lies",
        "overall", LOCAL},
    "Cumulative distribution of time to first audio per model": {
        "Time to first audio: cumulative share", "Time to first audio (ms)", f"{LOCAL} (n=4)"},
    "Scatter plot: accuracy against median time to first audio": {"Accuracy vs time to first audio", LOCAL},
}
SVG = "{http://www.w3.org/2000/svg}svg"


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def report_charts(html: str) -> dict[str, set[str]]:
    """Alt text → the texts drawn in that chart, for every `<img>` of the page; each must be a well-formed SVG."""
    parser = _Images()
    parser.feed(html)
    charts: dict[str, set[str]] = {}
    for image in parser.images:
        alt, src = image.get("alt") or "", image.get("src") or ""
        match = re.fullmatch(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", src)
        assert match, f"{alt!r}: not an SVG data URI: {src[:60]!r}"
        svg = base64.b64decode(match.group(1), validate=True)
        root = ET.fromstring(svg, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
        assert root.tag == SVG and len(svg) > 10_000, (alt, root.tag, len(svg))
        assert alt not in charts, f"two charts with the alt text {alt!r}"
        charts[alt] = {(node.text or "").strip() for node in root.iter() if node.tag is ET.Comment}
    return charts


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
    charts = report_charts(report.read_text())
    assert set(REPORT_CHARTS) <= set(charts), sorted(charts)
    for alt, labels in REPORT_CHARTS.items():
        for label in labels:  # a long tick label is drawn wrapped, one text per line
            drawn = label in charts[alt] or set(textwrap.fill(label, 18).splitlines()) <= charts[alt]
            assert drawn, (alt, label, sorted(charts[alt]))


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
