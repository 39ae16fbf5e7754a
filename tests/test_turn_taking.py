"""The turn_taking eval end to end against the reference server configured better or worse on purpose (issue 16).

Each run streams real espeak-ng speech in real time over full-duplex sessions to an embedded server started by a
`local` profile with known turn-taking settings, so every metric is checked against a truth set by configuration:
- steady: VAD silence 500 ms, first audio 300 ms, barge-in cancels 200 ms after detection, speech shorter than
  600 ms ignored, audio generated at 1.5x real time (an early interruption lands while the answer is generating);
- eager: VAD silence 700 ms (shorter than every scripted pause), any voiced audio interrupts, no yield delay;
- patient: VAD silence 2500 ms (longer than every scripted pause, at most 2000 ms).
Bounds on measured times are correctness bounds from the issue (30 ms), scaled by S2S_TIMING_SCALE on slow machines;
benchmarks/turn_taking_timing.py prints the error distributions.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

import pytest

from s2s_eval.log import SampleRecord, sample_records
from s2s_eval.reports.html import build_report
from s2s_eval.runners.run import RunOptions, execute
from tests.browser import require_chromium
from tests.cdp import open_page
from tests.conftest import TIMING_SCALE
from tests.servers import write_script

LONG_ANSWER = (
    "The Roman Empire began when Augustus became the first emperor, in twenty seven before Christ. Over the next two "
    "centuries it grew to surround the whole Mediterranean Sea. Its roads, its laws and its language shaped Europe "
    "for a very long time. In the third century the empire suffered civil wars, plague and invasions. Diocletian "
    "split the work of ruling between several emperors. Constantine founded a new capital at Constantinople. The "
    "western half fell in four hundred and seventy six, while the eastern half lasted for nearly a thousand years "
    "more, until fourteen fifty three.")
SHORT_ANSWER = "Tokyo is in Japan Standard Time, which is UTC plus nine hours."
PROFILES = {
    "tt-steady": {"silence": 500, "server": {"first_audio_delay_ms": 300, "yield_delay_ms": 200,
                                             "vad_min_speech_ms": 600, "output_rate": 1.5}},
    "tt-eager": {"silence": 700, "server": {"first_audio_delay_ms": 300}},
    "tt-patient": {"silence": 2500, "server": {"first_audio_delay_ms": 300}},
}
IDS = {
    "tt-steady": [*(f"interruption_{i:02d}" for i in range(1, 6)), *(f"backchannel_{i:02d}" for i in range(1, 6)),
                  "pause_01", "pause_02", "turn_end_01", "turn_end_02", "turn_end_03"],
    "tt-eager": [*(f"pause_{i:02d}" for i in range(1, 6)), *(f"backchannel_{i:02d}" for i in range(1, 6)),
                 "interruption_01", "interruption_02", "turn_end_01", "turn_end_02"],
    "tt-patient": [f"pause_{i:02d}" for i in range(1, 6)],
}
BOUND_MS = 30 * TIMING_SCALE


def _profile(home: Path, name: str, script: Path) -> None:
    settings = PROFILES[name]
    server = "".join(f"\n  {key}: {value}" for key, value in settings["server"].items())
    (home / "runners").mkdir(parents=True, exist_ok=True)
    (home / "runners" / f"{name}.yaml").write_text(
        f"name: {name}\nprovider: local\nmodel: s2s-eval-reference\nconcurrency: 8\nturn_timeout_s: 60\n"
        f"vad:\n  silence_duration_ms: {settings['silence']}\n"
        f"server:\n  engine: scripted\n  script: {script}{server}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    home = tmp_path_factory.mktemp("tt-home")
    script = write_script(home / "script.jsonl", [{"sample_id": "*", "responses": [
        {"text": LONG_ANSWER}, {"text": SHORT_ANSWER}, {"text": SHORT_ANSWER}]}])
    patch = pytest.MonkeyPatch()
    patch.setenv("S2S_HOME", str(home))
    out: dict[str, Path] = {}
    try:
        for name in PROFILES:
            _profile(home, name, script)
            run_dir, _ = asyncio.run(execute(RunOptions(model=name, eval="turn_taking", ids=IDS[name],
                                                        out=home / "runs" / name, progress=False)))
            out[name] = run_dir
    finally:
        patch.undo()
    return out


def _records(run: Path, scenario: str) -> list[SampleRecord]:
    records = [r for r in sample_records(run) if r.category == scenario]
    assert records and all(r.status == "ok" and r.dynamics is not None for r in records), \
        [(r.sample_id, r.error) for r in records]
    return records


def _event(record: SampleRecord, name: str, after: float) -> float:
    assert record.dynamics is not None
    return next(t for n, t in record.dynamics.events if n == name and t >= after)


def test_yield_latency_is_detection_plus_the_configured_delay(runs: dict[str, Path]) -> None:
    """An interruption that lands while the answer is generating: the server cancels 200 ms after its VAD detects
    the caller (speech_started, sent once 600 ms of voice have passed), and the client hears the stop then."""
    errors = []
    for record in _records(runs["tt-steady"], "interruption"):
        facts = record.dynamics
        assert facts is not None and facts.yielded and facts.yield_kind == "while_generating", facts.verdict
        assert facts.cue_onset_ms is not None and facts.yield_latency_ms is not None
        detected = _event(record, "server.speech_started", facts.cue_onset_ms)
        errors.append(facts.yield_latency_ms - (detected - facts.cue_onset_ms + 200))
        assert record.correct is True
    assert abs(statistics.median(errors)) <= BOUND_MS, errors


def test_turn_end_latency_is_silence_plus_first_audio_delay(runs: dict[str, Path]) -> None:
    measured = [r.dynamics.turn_end_latency_ms for r in sample_records(runs["tt-steady"])
                if r.dynamics is not None and r.dynamics.turn_end_latency_ms is not None]
    assert len(measured) >= 10
    assert abs(statistics.median(measured) - (500 + 300)) <= BOUND_MS, measured


def test_the_next_answer_is_checked_against_the_interruption(runs: dict[str, Path]) -> None:
    """The scripted server always answers about Tokyo: that addresses interruption_01's cue and no other."""
    addressed = {r.sample_id: r.dynamics.addressed for r in _records(runs["tt-steady"], "interruption")
                 if r.dynamics is not None}
    assert addressed == {"interruption_01": True, **{f"interruption_{i:02d}": False for i in range(2, 6)}}


def test_backchannels_interrupt_only_a_server_that_takes_any_voice(runs: dict[str, Path]) -> None:
    steady = _records(runs["tt-steady"], "backchannel")
    assert [r.dynamics.false_yield for r in steady if r.dynamics] == [False] * len(steady), \
        [r.dynamics.verdict for r in steady if r.dynamics]
    eager = _records(runs["tt-eager"], "backchannel")
    assert [r.dynamics.false_yield for r in eager if r.dynamics] == [True] * len(eager), \
        [r.dynamics.verdict for r in eager if r.dynamics]
    assert all(r.correct is False for r in eager) and all(r.correct is True for r in steady)


def test_takeover_follows_the_vad_silence_against_the_pauses(runs: dict[str, Path]) -> None:
    eager = _records(runs["tt-eager"], "pause")
    assert [r.dynamics.takeover for r in eager if r.dynamics] == [True] * 5, [r.dynamics.verdict for r in eager
                                                                                if r.dynamics]
    patient = _records(runs["tt-patient"], "pause")
    assert [r.dynamics.takeover for r in patient if r.dynamics] == [False] * 5, [r.dynamics.verdict for r in patient
                                                                                  if r.dynamics]


def test_the_truncate_says_what_the_playback_clock_played(runs: dict[str, Path]) -> None:
    stopped = [r.dynamics for r in _records(runs["tt-eager"], "backchannel") if r.dynamics]
    stopped += [r.dynamics for r in _records(runs["tt-steady"], "interruption") if r.dynamics]
    for facts in stopped:
        assert facts.truncate_audio_end_ms is not None and facts.played_ms is not None, facts.verdict
        assert abs(facts.truncate_audio_end_ms - facts.played_ms) <= 20


def test_the_spec_records_the_policy(runs: dict[str, Path]) -> None:
    import json

    spec: dict[str, Any] = json.loads((runs["tt-eager"] / "spec.json").read_text(encoding="utf-8"))
    assert spec["runner"]["duplex"]["max_pause_ms"] == 2000 and spec["runner"]["duplex"]["frame_ms"] == 20
    assert "speech-started" in spec["runner"]["duplex"]["policy"] and spec["runner"]["turn_mode"] == "vad"


def test_one_report_shows_both_server_configurations(runs: dict[str, Path], tmp_path: Path) -> None:
    require_chromium()
    out = build_report([runs["tt-steady"], runs["tt-eager"]], tmp_path / "index.html", audio=False)
    with open_page(out.as_uri(), width=1280, height=1000) as page:
        page.settle()
        shown = page.evaluate("""(() => {
            const out = {};
            for (const m of ['takeover', 'yield', 'yield_latency_p50', 'false_yield', 'turn_end_latency_p50']) {
                out[m] = [0, 1].map(run => document.querySelector(
                    '#dynamics tr[data-metric="' + m + '"] td[data-run="' + run + '"]').innerText);
            }
            return out;
        })()""")
        assert shown["takeover"][0].startswith("100.0%") and shown["takeover"][1].startswith("100.0%"), shown
        assert shown["yield"][0].startswith("100.0%") and shown["yield"][1].startswith("100.0%"), shown
        assert shown["false_yield"][0].startswith("0.0%") and shown["false_yield"][1].startswith("100.0%"), shown
        assert all(cell.endswith("ms") or " ms" in cell for cell in shown["yield_latency_p50"]), shown
        assert " ms" in shown["turn_end_latency_p50"][0] and " ms" in shown["turn_end_latency_p50"][1], shown
        assert page.problems == [], page.problems
