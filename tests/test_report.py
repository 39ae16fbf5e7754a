"""The HTML report: right numbers, hostile text kept inert, and a page that renders in a real browser."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2s_eval.reports.aggregate import model_labels
from s2s_eval.reports.html import build_report
from tests.browser import dump_dom, require_chromium, screenshot

SCRIPT_ATTACK = "<script>document.body.setAttribute('data-pwned','1')</script>"
IMG_ATTACK = "<img src=x onerror=\"document.title='pwned'\">"
ODD_CATEGORY = 'q&a "quoted" \'single\''
ODD_SAMPLE_ID = 'q&a_"0"'
CATEGORIES = ("navigate", "web_of_lies", "object_counting", ODD_CATEGORY)


def record(sample_id: str, model: str, category: str, *, correct: bool | None, status: str = "ok",
           ttfa: float | None = None, ttft: float | None = None, total: float | None = None,
           text: str = "The answer is No.", reason: str | None = "matched") -> dict[str, Any]:
    error = None if status == "ok" else {"kind": "timeout", "message": "no response.done within 60 s"}
    grade = None if status != "ok" or correct is None else {
        "correct": correct, "score": float(correct), "reason": reason, "extracted": "No" if correct else "Yes"}
    return {
        "sample_id": sample_id, "eval": "big_bench_audio", "model": model, "category": category, "status": status,
        "error": error, "correct": correct, "score": None if correct is None else float(correct), "grade": grade,
        "target": "No", "response_text": text if status == "ok" else None,
        "latency": {"ttfa_ms": ttfa, "ttft_ms": ttft, "total_ms": total},
        "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}, "attempts": 1,
    }


def realtime_records() -> list[dict[str, Any]]:
    """Twelve samples with measured latencies: a mix of correct, incorrect, ungraded and one error."""
    records = []
    for i in range(12):
        category = CATEGORIES[i % 4]
        sample_id = ODD_SAMPLE_ID if category == ODD_CATEGORY and i == 3 else f"{category}_{i}"
        status = "error" if i == 5 else "ok"
        correct = None if status == "error" or i == 10 else i % 3 != 0
        text = SCRIPT_ATTACK if i == 1 else IMG_ATTACK if i == 2 else "The answer is No."
        records.append(record(sample_id, "gpt-realtime", category, correct=correct, status=status,
                              ttfa=None if status == "error" else 300.0 + 37.0 * i,
                              ttft=None if status == "error" else 450.0 + 41.0 * i,
                              total=None if status == "error" else 1200.0 + 113.0 * i, text=text))
    return records


def local_records() -> list[dict[str, Any]]:
    """Eight samples with no latency measured at all (e.g. an offline engine), two of them errors."""
    return [record(f"{CATEGORIES[i % 4]}_{i}" if i != 3 else ODD_SAMPLE_ID, "local", CATEGORIES[i % 4],
                   correct=None if i in (2, 6) else i % 2 == 0, status="error" if i in (2, 6) else "ok")
            for i in range(8)]


def write_run(root: Path, run_id: str, name: str, model_id: str, records: list[dict[str, Any]]) -> Path:
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    spec = {
        "run_id": run_id, "started_at": "2025-08-29T10:00:00+00:00",
        "harness": {"name": "s2s-eval", "version": "0.1.0", "git_commit": "0123456789abcdef"},
        "model": {"name": name, "model": model_id, "provider": "openai", "url": "wss://example.invalid/v1/realtime",
                  "description": f"Profile text is untrusted too: {SCRIPT_ATTACK}"},
        "eval": {"name": "big_bench_audio"}, "dataset": {"source": "local"},
        "tts": {"engine": "espeak", "voice": "en-us", "rate": 1.0, "version": "1.51"},
        "runner": {"concurrency": 4}, "host": {"os": "linux"},
    }
    (run_dir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    # No summary.json and a torn last line, as a run killed mid-write leaves them: the report reads the journal.
    torn = '{"sample_id": "navigate_99", "eval": "big_bench_'
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + torn, encoding="utf-8")
    return run_dir


class TableText(HTMLParser):
    """Cell texts of the body rows of every `<table class=NAME>`, keyed by NAME; a colspan=N cell counts N times."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None
        self._span = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = []
            self._span = int(dict(attrs).get("colspan") or 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].extend([" ".join("".join(self._cell).split())] * self._span)
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = TableText()
    parser.feed(html)
    return parser.tables


def ms(value: float) -> str:
    return f"{value:,.0f}"


def expected_overview(records: list[dict[str, Any]]) -> dict[str, str]:
    """The overview figures of one run, computed here from the records rather than with the harness code."""
    graded = [r for r in records if r["correct"] is not None]
    correct = [r for r in graded if r["correct"]]
    ok = [r for r in records if r["status"] == "ok"]
    row = {"samples": str(len(records)), "graded": str(len(graded)),
           "accuracy": f"{100 * len(correct) / len(graded):.1f}%", "errors": str(len(records) - len(ok))}
    for field in ("ttfa_ms", "ttft_ms", "total_ms"):
        values = [r["latency"][field] for r in ok if r["latency"][field] is not None]
        for p in (50, 90):
            row[f"{field}_p{p}"] = ms(float(np.percentile(values, p))) if values else "not measured"
    return row


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    runs = {"gpt-realtime": realtime_records(), "local": local_records()}
    dirs = [write_run(tmp_path / "runs", "20250829T100000Z-gpt-realtime", "gpt-realtime", "gpt-realtime-2025-08-28",
                      runs["gpt-realtime"]),
            write_run(tmp_path / "runs", "20250829T100500Z-local", "local", "scripted", runs["local"])]
    out = build_report(dirs, tmp_path / "reports" / "index.html")
    return out, runs


def test_overview_numbers_match_the_records(report: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    out, runs = report
    assert out.is_file()
    overview = tables(out.read_text(encoding="utf-8"))["overview"]
    assert [row[0] for row in overview] == ["gpt-realtime", "local"]
    for row, records in zip(overview, runs.values(), strict=True):
        want = expected_overview(records)
        samples, graded, accuracy, errors, *latency = row[2:]
        assert (samples, graded) == (want["samples"], want["graded"])
        assert accuracy.startswith(want["accuracy"]), (accuracy, want["accuracy"])
        assert errors.split()[0] == want["errors"]
        assert latency == [want[f"{f}_p{p}"] for f in ("ttfa_ms", "ttft_ms", "total_ms") for p in (50, 90)]
    # The local run measured no latency at all: every latency cell says so, none shows 0 or nothing.
    assert overview[1][6:] == ["not measured"] * 6


def test_category_table_matches_the_records(report: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    out, runs = report
    rows = {row[0]: row[1:] for row in tables(out.read_text(encoding="utf-8"))["categories"]}
    assert list(rows) == [*sorted(CATEGORIES), "overall"]
    for column, records in enumerate(runs.values()):
        for category in CATEGORIES:
            graded = [r for r in records if r["category"] == category and r["correct"] is not None]
            cell = rows[category][column]
            if graded:
                correct = sum(r["correct"] for r in graded)
                assert cell == f"{100 * correct / len(graded):.1f}% {correct}/{len(graded)}"
            else:
                assert cell == "not measured"


def test_hostile_text_is_escaped_in_the_source(report: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    html = report[0].read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert SCRIPT_ATTACK not in html and IMG_ATTACK not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html), "an event handler attribute in the page"
    assert "&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;,&#39;1&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;" in html
    assert "q&amp;a &#34;quoted&#34; &#39;single&#39;" in html
    # Read back as text, the hostile strings are shown exactly as the model said them.
    samples = tables(html)["samples"]
    assert {SCRIPT_ATTACK, IMG_ATTACK} <= {row[-1] for row in samples}
    assert sum(row[1] == ODD_SAMPLE_ID and row[2] == ODD_CATEGORY for row in samples) == 2
    # Self-contained: every src/href is an embedded data: URI, nothing is fetched.
    assert "url(" not in html and "@import" not in html
    assert re.findall(r"""<[^>]*\s(?:src|href)\s*=\s*["']?(?!data:)[^"'\s>]+""", html) == []


def test_model_labels_tell_runs_of_one_model_apart() -> None:
    assert model_labels(["gpt-realtime", "local"], ["a", "b"]) == ["gpt-realtime", "local"]
    assert model_labels(["local", "local", "x"], ["n1", "n2", "n3"]) == ["local (n1)", "local (n2)", "x"]
    assert model_labels(["local", "local"], ["n1", "n1"]) == ["local (n1) #1", "local (n1) #2"]


def test_report_renders_in_chromium(report: tuple[Path, Any], tmp_path: Path) -> None:
    require_chromium()
    out = report[0]
    dom = dump_dom(out)
    body = re.search(r"<body[^>]*>", dom)
    assert body and "data-pwned" not in body.group(0), "a transcript's <script> ran"
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and title.group(1) != "pwned" and title.group(1).startswith("s2s-eval report")
    assert "<script" not in dom.lower()
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) == 1, images  # only the chart: the transcript's <img> stayed text
    uri = re.search(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', images[0])
    assert uri and b"<svg" in base64.b64decode(uri.group(1))
    for name in ('class="overview"', 'class="categories"', 'class="samples"'):
        assert f"<table {name}>" in dom
    shot = screenshot(out, tmp_path / "report.png", width=1280, height=2000)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 30_000
