"""`--first-audio-delay-ms` is scheduled from the arrival of `response.create`, while speech is synthesised.

These are correctness bounds, not performance targets (the error distribution is measured by
`benchmarks/latency_scale.py`): the first audio can never arrive before the delay, synthesis must overlap the delay
instead of following it, and scripted answers must be ready before the server says it is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from s2s_eval import audio
from s2s_eval.log import read_records
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.server.app import ServerConfig, running
from s2s_eval.speech.tts import Synthesizer
from tests.conftest import TIMING_SCALE
from tests.servers import serve_process, write_script

DELAY_MS = 300
IDS = ["formal_fallacies_0", "navigate_0", "object_counting_0", "web_of_lies_0"]


def run_options(url: str, data_dir: Path, out: Path) -> RunOptions:
    return RunOptions(model="openai-compatible", eval="big_bench_audio", url=url, ids=IDS, concurrency=1,
                      data_dir=data_dir, out=out, progress=False, save_audio=False)


async def test_synthesis_overlaps_the_delay(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A synthesiser that takes 200 ms per sentence: overlapped, the first audio still comes at 300 ms;
    "sleep, then synthesise" would make it 500 ms. All three figures scale together with TIMING_SCALE, so the
    bound between them (400 ms at scale 1) keeps telling the two apart on a slow machine."""
    delay_ms = DELAY_MS * TIMING_SCALE
    synthesis_s = 0.2 * TIMING_SCALE

    def slow_speech(self: Synthesizer, text: str) -> bytes:
        time.sleep(synthesis_s)
        return b"\x10\x00" * audio.SAMPLE_RATE  # one second of a constant signal

    monkeypatch.setattr(Synthesizer, "speech", slow_speech)
    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [{"text": "No."}]}])
    monkeypatch.setattr(Synthesizer, "prepare", lambda self, texts, **_: 0)  # nothing warmed in advance
    async with running(ServerConfig(port=0, engine="scripted", script=script, first_audio_delay_ms=delay_ms)) as (
            _, url):
        run_dir, _ = await execute(run_options(url, data_dir, tmp_path / "run"))
    ttfa = [r["latency"]["ttfa_ms"] for r in read_records(run_dir)]
    assert len(ttfa) == len(IDS) and all(t >= delay_ms for t in ttfa), ttfa
    assert max(ttfa) < delay_ms + synthesis_s * 1000 / 2, ttfa


def long_answer(sample_id: str) -> str:
    reasoning = " ".join(f"Step {i}: I consider the statement about {sample_id.replace('_', ' ')} once more."
                         for i in range(30))
    return f"{reasoning} So the answer is no."


async def test_long_scripted_answers_start_on_time(data_dir: Path, tmp_path: Path) -> None:
    """Real espeak-ng in a real server process: a long answer (hundreds of ms to synthesise whole) still starts
    at the delay, because its first sentence was synthesised before the server reported ready and the rest is
    synthesised while it streams."""
    script = write_script(tmp_path / "script.jsonl",
                          [{"sample_id": i, "responses": [{"text": long_answer(i)}]} for i in IDS])
    with serve_process("--engine", "scripted", "--script", str(script), "--first-audio-delay-ms",
                       str(DELAY_MS)) as url:
        run_dir, _ = await execute(run_options(url, data_dir, tmp_path / "run"))
    records = list(read_records(run_dir))
    ttfa = [r["latency"]["ttfa_ms"] for r in records]
    assert all(t >= DELAY_MS for t in ttfa), ttfa  # same monotonic clock on both ends: never early
    assert max(ttfa) < DELAY_MS + 100 * TIMING_SCALE, ttfa
    assert all(r["response_text"] == long_answer(r["sample_id"]) for r in records)  # deltas rejoin exactly
