"""The HTML report: numbers that match the records, hostile text kept inert, charts for what was measured, audio
beside the page, and a page that renders and behaves in a real browser (filters, drill-down, players)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from s2s_eval.reports.aggregate import model_labels
from s2s_eval.reports.html import build_report
from tests.browser import require_chromium
from tests.cdp import open_page
from tests.synthetic_runs import make_run

SCRIPT_ATTACK = "<script>document.body.setAttribute('data-pwned','1')</script>"
IMG_ATTACK = "<img src=x onerror=\"document.title='pwned'\">"
# Aimed at the drill-down's JSON block: end the element, then run a script.
BREAKOUT_ATTACK = "</script><script>document.body.setAttribute('data-pwned','2')</script><!--"
ODD_CATEGORY = 'q&a "quoted" \'single\''
ODD_SAMPLE_ID = 'q&a_"0"'
CATEGORIES = ("navigate", "web_of_lies", "object_counting", ODD_CATEGORY)


def record(sample_id: str, model: str, category: str, *, correct: bool | None, status: str = "ok",
           ttfa: float | None = None, ttft: float | None = None, total: float | None = None,
           text: str = "The answer is No.", reason: str | None = "matched") -> dict[str, Any]:
    error = None if status == "ok" else {"kind": "timeout", "message": "no response.done within 60 s"}
    grade = None if status != "ok" or correct is None else {
        "correct": correct, "score": float(correct), "reason": reason, "extracted": "No" if correct else "Yes",
        "metrics": {}, "details": {"note": IMG_ATTACK}}
    timeline = [] if ttfa is None else [["response.created", 5.0], ["response.output_audio.delta", ttfa],
                                        ["response.done", total]]
    return {
        "sample_id": sample_id, "eval": "big_bench_audio", "model": model, "category": category, "status": status,
        "error": error, "correct": correct, "score": None if correct is None else float(correct), "grade": grade,
        "target": "No", "response_text": text if status == "ok" else None,
        "latency": {"ttfa_ms": ttfa, "ttft_ms": ttft, "total_ms": total},
        "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}, "attempts": 1,
        "cost_usd": 0.01 if status == "ok" else None, "timeline": timeline,
        "responses": [{"turn": 0, "text": text, "function_calls": [{"name": "lookup", "arguments": SCRIPT_ATTACK}]}],
    }


def realtime_records() -> list[dict[str, Any]]:
    """Twelve samples with measured latencies: a mix of correct, incorrect, ungraded and one error."""
    records = []
    for i in range(12):
        category = CATEGORIES[i % 4]
        sample_id = ODD_SAMPLE_ID if category == ODD_CATEGORY and i == 3 else f"{category}_{i}"
        status = "error" if i == 5 else "ok"
        correct = None if status == "error" or i == 10 else i % 3 != 0
        text = {1: SCRIPT_ATTACK, 2: IMG_ATTACK, 4: BREAKOUT_ATTACK}.get(i, "The answer is No.")
        records.append(record(sample_id, "gpt-realtime", category, correct=correct, status=status,
                              ttfa=None if status == "error" else 300.0 + 37.0 * i,
                              ttft=None if status == "error" else 450.0 + 41.0 * i,
                              total=None if status == "error" else 1200.0 + 113.0 * i, text=text,
                              reason=BREAKOUT_ATTACK if i == 7 else "matched"))
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


def expected_overview(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The overview figures of one run, computed here from the records rather than with the harness code."""
    graded = [r for r in records if r["correct"] is not None]
    correct = [r for r in graded if r["correct"]]
    ok = [r for r in records if r["status"] == "ok"]
    row: dict[str, Any] = {"samples": str(len(records)), "graded": str(len(graded)),
                           "accuracy": f"{100 * len(correct) / len(graded):.1f}%",
                           "errors": str(len(records) - len(ok))}
    latency = []
    for field, ps in (("ttfa_ms", (50, 90, 99)), ("ttft_ms", (50, 90)), ("total_ms", (50, 90))):
        values = [r["latency"][field] for r in ok if r["latency"][field] is not None]
        latency += [ms(float(np.percentile(values, p))) if values else "not measured" for p in ps]
    row["latency"] = latency
    costs = [r["cost_usd"] for r in records if r.get("cost_usd") is not None]
    usd = [round(sum(costs), 6), round(100 * sum(costs) / len(costs), 6)] if costs else []  # as summary.json
    row["cost"] = [f"${v:,.2f}" if v >= 1 else f"${v:.4f}" for v in usd] or ["not measured"] * 2
    return row


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    runs = {"gpt-realtime": realtime_records(), "local": local_records()}
    dirs = [write_run(tmp_path / "runs", "20250829T100000Z-gpt-realtime", "gpt-realtime", "gpt-realtime-2025-08-28",
                      runs["gpt-realtime"]),
            write_run(tmp_path / "runs", "20250829T100500Z-local", "local", "scripted", runs["local"])]
    out = build_report(dirs, tmp_path / "reports" / "index.html")
    return out, runs


def page_data(html: str) -> dict[str, Any]:
    block = re.search(r'<script type="application/json" id="s2s-data">(.*?)</script>', html, re.S)
    assert block, "no drill-down data block"
    return json.loads(block.group(1))


def test_overview_numbers_match_the_records(report: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    out, runs = report
    assert out.is_file()
    overview = tables(out.read_text(encoding="utf-8"))["overview"]
    # Each label names the profile, then who served which model at which reasoning effort (none set here).
    assert [row[0] for row in overview] == ["gpt-realtime (openai/gpt-realtime-2025-08-28 · effort –)",
                                            "local (openai/scripted · effort –)"]
    for row, records in zip(overview, runs.values(), strict=True):
        want = expected_overview(records)
        samples, graded, accuracy, errors, *rest = row[2:]
        assert (samples, graded) == (want["samples"], want["graded"])
        assert accuracy.startswith(want["accuracy"]), (accuracy, want["accuracy"])
        assert errors.split()[0] == want["errors"]
        assert rest[:7] == want["latency"]
        assert rest[7:9] == want["cost"]
    # The local run measured no latency at all: every latency cell says so, none shows 0 or nothing.
    assert overview[1][6:13] == ["not measured"] * 7


def test_accuracy_interval_is_wilsons_of_the_graded_samples_and_says_so(
        report: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    out, runs = report
    overview = tables(out.read_text(encoding="utf-8"))["overview"]
    for row, records in zip(overview, runs.values(), strict=True):
        graded = [r for r in records if r["correct"] is not None]
        ci = scipy_stats.binomtest(sum(r["correct"] for r in graded), len(graded)).proportion_ci(method="wilson")
        assert row[4].endswith(f"95% CI {100 * ci.low:.1f}%–{100 * ci.high:.1f}% Wilson score"), row[4]


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
    # Exactly two script elements: the inert data block and the page's own script, which the CSP pins by hash.
    assert [m.group(0) for m in re.finditer(r"<script\b[^>]*>", html, re.I)] == [
        '<script type="application/json" id="s2s-data">', "<script>"]
    code = re.search(r"<script>(.*?)</script>", html, re.S).group(1)  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert f"script-src 'sha256-{digest}';" in csp and "default-src 'none'" in csp and "unsafe-eval" not in csp
    for attack in (SCRIPT_ATTACK, IMG_ATTACK, BREAKOUT_ATTACK):
        assert attack not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html), "an event handler attribute in the page"
    assert "&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;,&#39;1&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;" in html
    assert "q&amp;a &#34;quoted&#34; &#39;single&#39;" in html
    # The data block holds no character that could end it, yet decodes to the exact hostile strings.
    block = re.search(r'id="s2s-data">(.*?)</script>', html, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in block and ">" not in block
    data = page_data(html)
    reasons = {(d.get("grade") or {}).get("reason") for d in data["samples"]}
    assert BREAKOUT_ATTACK in reasons
    # Read back as text, the hostile strings are shown exactly as the model said them.
    samples = tables(html)["samples"]
    assert {SCRIPT_ATTACK, IMG_ATTACK, BREAKOUT_ATTACK} <= {row[-2] for row in samples}
    assert sum(row[1] == ODD_SAMPLE_ID and row[2] == ODD_CATEGORY for row in samples) == 2
    # Self-contained: every src/href in the markup is an embedded data: URI or an in-page anchor.
    assert "url(" not in html and "@import" not in html
    assert re.findall(r"""<[^>]*\s(?:src|href)\s*=\s*["']?(?![#]|data:)[^"'\s>]+""", html) == []


def test_model_labels_tell_runs_of_one_model_apart() -> None:
    assert model_labels(["gpt-realtime", "local"], ["a", "b"]) == ["gpt-realtime", "local"]
    details = ["openai/gpt-realtime-2 · effort low", "openai/gpt-realtime-2 · effort high"]
    assert model_labels(["gpt-realtime-2"] * 2, ["a", "b"], details) == [
        "gpt-realtime-2 (openai/gpt-realtime-2 · effort low)", "gpt-realtime-2 (openai/gpt-realtime-2 · effort high)"]
    assert model_labels(["local", "local", "x"], ["n1", "n2", "n3"]) == ["local (n1)", "local (n2)", "x"]
    assert model_labels(["local", "local"], ["n1", "n1"]) == ["local (n1) #1", "local (n1) #2"]


def test_complexfuncbench_columns_show_the_summary_metrics(tmp_path: Path) -> None:
    records = realtime_records()
    for i, r in enumerate(records):
        if r["grade"]:
            r["grade"]["metrics"] = {"success": float(i % 2), "call_accuracy": 0.25 * (i % 5),
                                     "answer_completeness": 2.0}
    run = write_run(tmp_path / "runs", "cfb", "gpt-realtime", "gpt-realtime", records)
    html = build_report([run], tmp_path / "index.html", audio=False).read_text(encoding="utf-8")
    with_metrics = [r["grade"]["metrics"] for r in records if r["grade"]]
    row = tables(html)["overview"][0]
    success = sum(m["success"] for m in with_metrics) / len(with_metrics)
    calls = sum(m["call_accuracy"] for m in with_metrics) / len(with_metrics)
    # Success is a pass rate (each sample 0 or 1): Wilson's interval, as accuracy's.
    ci = scipy_stats.binomtest(round(success * len(with_metrics)), len(with_metrics)).proportion_ci(method="wilson")
    assert row[6] == (f"{100 * success:.1f}% n={len(with_metrics)} 95% CI {100 * ci.low:.1f}%–{100 * ci.high:.1f}% "
                      f"Wilson score")
    assert row[7] == f"{100 * calls:.1f}% n={len(with_metrics)}"
    assert f"answer_completeness 2.000 n={len(with_metrics)}" in row[-1]
    assert ">Success<" in html and ">Call acc.<" in html
    # Without those metrics the columns are not there at all.
    plain = write_run(tmp_path / "runs", "bba", "gpt-realtime", "gpt-realtime", realtime_records())
    assert ">Success<" not in build_report([plain], tmp_path / "p.html", audio=False).read_text(encoding="utf-8")


def test_charts_follow_the_runs(tmp_path: Path) -> None:
    """Concurrency and trend charts appear only when runs differ in concurrency or are dated runs of a model."""
    day = dt.datetime(2025, 8, 26, 3, tzinfo=dt.UTC)
    nightly = [make_run(tmp_path / f"n{d}", "gpt-realtime", 40, 0.7, seed=d, started_at=day + dt.timedelta(days=d))
               for d in range(3)]
    html = build_report(nightly, tmp_path / "nightly.html", audio=False).read_text(encoding="utf-8")
    assert 'id="trends"' in html and 'id="concurrency"' not in html
    # The comparison charts show the latest night only; the two earlier nights are history.
    assert "Earlier days of the same model (2 runs)" in html
    assert len(re.findall(r'<div class="headline"', html)) == 1
    sweep = [make_run(tmp_path / f"c{c}", "local", 40, 0.3, seed=c, concurrency=c, started_at=day) for c in (1, 8)]
    html = build_report(sweep, tmp_path / "sweep.html", audio=False).read_text(encoding="utf-8")
    assert 'id="concurrency"' in html and 'id="trends"' not in html
    for chart in ("chart-cdf", "chart-scatter"):
        uri = re.search(rf'id="{chart}" src="data:image/svg\+xml;base64,([^"]+)"', html)
        assert uri and b"<svg" in base64.b64decode(uri.group(1))



def test_a_run_with_nothing_graded_still_reports(tmp_path: Path) -> None:
    """An unjudged run (every `correct` null, as MultiChallenge without a judge) has latency but no accuracy:
    the page says so instead of failing, and draws no accuracy scatter."""
    run = make_run(tmp_path / "unjudged", "local", 12, 0.5, correct_of=lambda i: None)  # type: ignore[arg-type,return-value]
    html = build_report([run], tmp_path / "index.html", audio=False).read_text(encoding="utf-8")
    assert 'id="chart-cdf"' in html and 'id="chart-scatter"' not in html
    assert tables(html)["overview"][0][0].startswith("local")

def _restamp(run: Path, **fields: Any) -> Path:
    """Give every record of a synthetic run the same extra journal fields (modality, voice, ...)."""
    lines = (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    records = [{**json.loads(line), **{k: (v(i) if callable(v) else v) for k, v in fields.items()}}
               for i, line in enumerate(lines)]
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return run


def test_modality_ablation_shows_the_speech_gap(tmp_path: Path) -> None:
    """Runs of one model on the same items in two modalities: a row with both accuracies and their difference."""
    day = dt.datetime(2025, 8, 29, 3, tzinfo=dt.UTC)
    speech = _restamp(make_run(tmp_path / "s2s", "gpt-realtime", 40, 0.0, correct_of=lambda i: i % 4 == 0,
                               started_at=day), modality={"input": "audio", "output": "audio"})
    text = _restamp(make_run(tmp_path / "t2t", "gpt-realtime", 40, 0.0, correct_of=lambda i: i % 4 != 3,
                             started_at=day + dt.timedelta(hours=1)), modality={"input": "text", "output": "text"})
    html = build_report([speech, text], tmp_path / "index.html", audio=False).read_text(encoding="utf-8")
    [row] = tables(html)["modality"]
    assert row[:2] == ["gpt-realtime", "big_bench_audio"]
    assert row[2] == "25.0% 10/40" and row[3] == "75.0% 30/40" and row[4] == "+50.0 pp"
    assert [r[7] for r in tables(html)["runs"]] == ["audio→audio", "text→text"]
    assert 'id="trends"' not in html  # two modalities on one day are an ablation, not a history
    # One modality only: no such section.
    alone = build_report([speech], tmp_path / "one.html", audio=False).read_text(encoding="utf-8")
    assert 'id="modality"' not in alone


def test_a_voice_mix_is_broken_down_by_voice(tmp_path: Path) -> None:
    run = _restamp(make_run(tmp_path / "mix", "local", 40, 0.0, correct_of=lambda i: i % 2 == 0),
                   voice=lambda i: ("en-us", "en-gb+f3")[i % 2])
    rows = tables(build_report([run], tmp_path / "index.html", audio=False).read_text(encoding="utf-8"))["voices"]
    assert [(r[2], r[3]) for r in rows] == [("en-gb+f3", "0.0% 0/20"), ("en-us", "100.0% 20/20")]
    single = _restamp(make_run(tmp_path / "one", "local", 8, 0.5), voice="en-us")
    assert 'id="voices"' not in build_report([single], tmp_path / "s.html", audio=False).read_text(encoding="utf-8")


def test_output_and_input_audio_are_copied_beside_the_report(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Output clips and question clips are found through each record alone: a clip kept in the run, one kept in
    the audio cache (a --no-audio run), and one whose cache file changed since the run (refused by its hash)."""
    from s2s_eval import audio
    from tests.synthetic_runs import tone

    cache = tmp_path / "cache"
    monkeypatch.setenv("S2S_CACHE_DIR", str(cache))
    run = make_run(tmp_path / "run", "local", 8, 0.5, audio_s=0.4)
    journal = run / "samples.jsonl"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    expected: dict[str, bytes] = {}
    for i, r in enumerate(records):
        pcm = tone(0.3, 300 + 40 * i)
        kept = "run" if i < 4 else "cache"
        relative = f"audio/{r['sample_id']}.input.wav" if kept == "run" else f"audio/espeak-ng/ab/{i}.wav"
        audio.write_wav((run if kept == "run" else cache) / relative, pcm)
        r["input_clip"] = {"text": f"question {i}", "sha256": hashlib.sha256(pcm).hexdigest(), "duration_s": 0.3,
                           "path": relative, "kept": kept}
        expected[r["sample_id"]] = pcm
    changed = records[7]
    audio.write_wav(cache / changed["input_clip"]["path"], tone(0.3, 999))  # the cache moved on since the run
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))

    out = build_report([run], tmp_path / "report" / "index.html")
    data = page_data(out.read_text(encoding="utf-8"))
    rows = tables(out.read_text(encoding="utf-8"))["samples"]
    by_id = {row[1].replace(" ", ""): d for row, d in zip(rows, data["samples"], strict=True)}
    for r in records:
        entry = by_id[r["sample_id"]]
        output = out.parent / entry["out"]
        assert output.read_bytes() == (run / r["output_audio"]).read_bytes()
        assert not entry["out"].startswith(("/", "..")) and entry["out"].startswith("index_media/")
        if r is changed:
            assert "in" not in entry and "not the clip the model heard" in entry["in_note"]
        else:
            assert audio.read_wav(out.parent / entry["in"]) == expected[r["sample_id"]]
    # --no-audio: no folder, no players, and the page says why.
    bare = build_report([run], tmp_path / "bare" / "index.html", audio=False)
    assert not (bare.parent / "index_media").exists()
    assert all("out" not in d for d in page_data(bare.read_text(encoding="utf-8"))["samples"])


def test_only_files_inside_the_run_directory_are_copied(tmp_path: Path) -> None:
    """A journal that names `../x`, an absolute path or a symlink out of the run gets no clip copied from there:
    the record shows why, the report still builds, and the clips that belong to the run are still copied."""
    from s2s_eval import audio
    from tests.synthetic_runs import tone

    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("API_KEY=sk-do-not-publish\n")
    outside_wav = outside / "private.wav"
    audio.write_wav(outside_wav, tone(0.3, 500))
    run = make_run(tmp_path / "runs" / "run", "local", 8, 0.5, audio_s=0.4)
    (run / "audio" / "link.wav").symlink_to(outside_wav)
    (run / "audio" / "fifo").mkdir()  # a folder named like a clip is not a clip either
    hostile = {"formal_fallacies_0": ("output_audio", "../../outside/secret.txt"),
               "navigate_0": ("output_audio", str(outside_wav)),
               "object_counting_0": ("output_audio", "audio/link.wav"),
               "web_of_lies_0": ("input_audio", "../../outside/private.wav"),
               "formal_fallacies_1": ("output_audio", "audio/fifo")}
    journal = run / "samples.jsonl"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    for r in records:
        if r["sample_id"] in hostile:
            key, value = hostile[r["sample_id"]]
            r[key] = value
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))

    out = build_report([run], tmp_path / "report" / "index.html", input_audio=True)
    html = out.read_text(encoding="utf-8")
    data = page_data(html)
    by_id = {row[1].replace(" ", ""): d for row, d in zip(tables(html)["samples"], data["samples"], strict=True)}
    copied = [p.read_bytes() for p in (out.parent / "index_media").rglob("*") if p.is_file()]
    assert secret.read_bytes() not in copied and outside_wav.read_bytes() not in copied
    for sample_id, (key, _) in hostile.items():
        side = "out" if key == "output_audio" else "in"
        assert side not in by_id[sample_id], (sample_id, by_id[sample_id])
        assert by_id[sample_id][f"{side}_note"].startswith("audio unavailable"), by_id[sample_id]
    assert "absolute path" in by_id["navigate_0"]["out_note"]
    assert "outside the run directory" in by_id["object_counting_0"]["out_note"]  # the symlink, resolved
    assert "not a regular file" in by_id["formal_fallacies_1"]["out_note"]
    # The run's own clips are unaffected: the other three samples' output audio is in the report.
    kept = [i for i in ("web_of_lies_0", "navigate_1", "object_counting_1", "web_of_lies_1") if "out" in by_id[i]]
    assert kept == ["web_of_lies_0", "navigate_1", "object_counting_1", "web_of_lies_1"]
    # The page says so in the drill-down, in a real browser.
    with open_page(out.as_uri()) as page:
        page.settle()
        shown = page.evaluate("""(() => {
            const row = Array.from(document.querySelectorAll('#sample-table tbody tr')).find(
                r => r.cells[1].textContent.replace(/\\s/g, '') === 'navigate_0');
            row.querySelector('button.more').click();
            return row.nextElementSibling.textContent;
        })()""")
        assert "audio unavailable: the journal names an absolute path" in shown
        assert page.problems == [], page.problems


def test_report_behaves_in_chromium(tmp_path: Path) -> None:
    """Real Chromium: charts and tables render, filters and the drill-down work, audio plays, no console errors,
    and hostile transcripts are shown as text and never run. Saves a screenshot of the page."""
    require_chromium()
    runs = {"gpt-realtime": realtime_records(), "local": local_records()}
    dirs = [write_run(tmp_path / "runs", "20250829T100000Z-gpt-realtime", "gpt-realtime", "gpt-realtime-2025-08-28",
                      runs["gpt-realtime"]),
            write_run(tmp_path / "runs", "20250829T100500Z-local", "local", "scripted", runs["local"])]
    wav = tmp_path / "runs" / "20250829T100000Z-gpt-realtime" / "audio" / "web_of_lies_1.wav"
    from s2s_eval import audio
    from tests.synthetic_runs import tone
    audio.write_wav(wav, tone(0.5, 330))
    journal = dirs[0] / "samples.jsonl"
    journal.write_text(journal.read_text().replace('"sample_id": "web_of_lies_1", ', '"sample_id": "web_of_lies_1", '
                                                   '"output_audio": "audio/web_of_lies_1.wav", '))
    out = build_report(dirs, tmp_path / "reports" / "index.html")
    total = len(runs["gpt-realtime"]) + len(runs["local"])
    with open_page(out.as_uri(), width=1280, height=1000) as page:
        page.settle()
        assert page.evaluate("document.documentElement.dataset.ready") == "1", page.problems
        # Charts: every image decoded to a real size; tables have their rows.
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) >= 4 and all(ok and w > 200 and h > 100 for ok, w, h in images), images
        counts = page.evaluate("""({overview: document.querySelectorAll('table.overview tbody tr').length,
            categories: document.querySelectorAll('table.categories tbody tr').length,
            samples: document.querySelectorAll('#sample-table tbody tr').length,
            height: document.querySelector('#sample-table').getBoundingClientRect().height})""")
        assert counts["overview"] == 2 and counts["categories"] == 5 and counts["samples"] == total
        assert counts["height"] > 500
        # Hostile text: shown as text, never parsed or run.
        assert page.evaluate("document.body.hasAttribute('data-pwned')") is False
        assert page.evaluate("document.title").startswith("s2s-eval report")
        assert page.evaluate("document.querySelectorAll('#sample-table img, #sample-table script').length") == 0
        shown = page.evaluate("Array.from(document.querySelectorAll('#sample-table td.text')).map(t => t.textContent)")
        assert {SCRIPT_ATTACK, IMG_ATTACK, BREAKOUT_ATTACK} <= set(shown)
        # Filters: verdict, then eval + category, then free text; the count line follows.
        errors = sum(r["status"] != "ok" for rs in runs.values() for r in rs)
        page.evaluate("(s => { s.value = 'error'; s.dispatchEvent(new Event('change')); })"
                      "(document.getElementById('f-verdict'))")
        visible = page.evaluate("Array.from(document.querySelectorAll('#sample-table tbody tr')).filter("
                                "r => !r.hidden).map(r => r.dataset.v)")
        assert visible == ["error"] * errors
        assert page.evaluate("document.getElementById('f-count').textContent") == f"{errors} of {total} samples"
        assert "verdict=error" in page.evaluate("location.hash")
        page.evaluate("document.getElementById('f-reset').click()")
        page.evaluate("(s => { s.value = 'navigate'; s.dispatchEvent(new Event('change')); })"
                      "(document.getElementById('f-category'))")
        navigate = sum(r["category"] == "navigate" for rs in runs.values() for r in rs)
        assert page.evaluate("document.querySelectorAll('#sample-table tbody tr:not([hidden])').length") == navigate
        page.evaluate("document.getElementById('f-reset').click()")
        # Drill-down of the sample whose grader reason is the breakout string: shown as text, audio playable.
        opened = page.evaluate("""(() => {
            const row = Array.from(document.querySelectorAll('#sample-table tbody tr')).find(
                r => r.cells[1].textContent.replace(/\\s/g, '') === 'web_of_lies_1' && r.dataset.m === '0');
            row.querySelector('button.more').click();
            const drill = row.nextElementSibling;
            return {drill: drill.classList.contains('drill'), text: drill.textContent,
                    expanded: row.querySelector('button.more').getAttribute('aria-expanded'),
                    audios: Array.from(drill.querySelectorAll('audio')).map(a => a.getAttribute('src')),
                    events: drill.querySelectorAll('table.events tr').length};
        })()""")
        assert opened["drill"] and opened["expanded"] == "true" and opened["events"] == 3
        assert f"lookup({SCRIPT_ATTACK})" in opened["text"]  # the function call, as text
        assert json.dumps({"note": IMG_ATTACK}) in opened["text"]  # grader details, as JSON text
        assert opened["audios"] and opened["audios"][0].startswith("index_media/")
        duration = page.evaluate("""new Promise(done => {
            const a = document.querySelector('tr.drill audio');
            a.addEventListener('loadedmetadata', () => done(a.duration));
            a.addEventListener('error', () => done('error ' + (a.error && a.error.code)));
            a.preload = 'metadata'; a.load(); })""", await_promise=True)
        assert duration == pytest.approx(0.5, abs=0.05), duration
        find = """(attack => {
            const index = JSON.parse(document.getElementById('s2s-data').textContent).samples.findIndex(
                s => s.grade && s.grade.reason === attack);
            const row = document.querySelector('#sample-table tr[data-i="' + index + '"]');
            row.querySelector('button.more').click();
            const drill = row.nextElementSibling;
            return {index: index, shown: drill.textContent.includes(attack),
                    elements: drill.querySelectorAll('script, img, iframe').length};
        })"""
        breakout = page.evaluate(f"{find}({json.dumps(BREAKOUT_ATTACK)})")
        assert breakout["index"] >= 0 and breakout["shown"] and breakout["elements"] == 0, breakout
        assert page.evaluate("document.body.hasAttribute('data-pwned')") is False
        page.settle()
        assert page.problems == [], page.problems
        shot = page.screenshot(tmp_path / "report.png")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000
    keep = os.environ.get("S2S_TEST_ARTIFACTS")  # CI or a developer can keep the screenshot to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / "report.png").write_bytes(data)
