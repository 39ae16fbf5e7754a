"""How exactly does the turn_taking eval measure yield and turn-end latency? (issue 16)

Runs the `turn_taking` eval through the real runner (full-duplex sessions, `s2s_eval/runners/duplex.py`) against
the embedded reference server configured with a known truth: VAD silence 500 ms, first audio 300 ms, a barge-in
cancels 200 ms after the server's VAD detects the caller, speech under 600 ms ignored, audio generated at 1.5x real
time. It prints the error distribution of each figure the eval reports, as measured minus configured:

- yield: the cue's voiced onset → playback stopped, minus (onset → `speech_started` received + 200 ms);
- turn end: the question's last voiced sample → the answer's first voiced sample as played, minus (500 + 300 ms);
- truncate: `conversation.item.truncate`'s `audio_end_ms` minus the playback clock's count at the stop.

    python benchmarks/turn_taking_timing.py [--interruptions 20] [--turn-ends 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s_eval.log import sample_records  # noqa: E402
from s2s_eval.runners.run import RunOptions, execute  # noqa: E402
from tests.servers import write_script  # noqa: E402
from tests.test_turn_taking import LONG_ANSWER, SHORT_ANSWER  # noqa: E402

PROFILE = """name: tt-bench
provider: local
model: s2s-eval-reference
concurrency: {concurrency}
vad:
  silence_duration_ms: 500
server:
  engine: scripted
  script: {script}
  first_audio_delay_ms: 300
  yield_delay_ms: 200
  vad_min_speech_ms: 600
  output_rate: 1.5
"""


def _row(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} not measured"
    a = np.asarray(values)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return (f"{name:<34} n={a.size:<3} median {p50:+7.1f}  p90 {p90:+7.1f}  p99 {p99:+7.1f}  "
            f"min {a.min():+7.1f}  max {a.max():+7.1f}  mean|e| {np.abs(a).mean():6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interruptions", type=int, default=20)
    parser.add_argument("--turn-ends", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        script = home / "script.jsonl"
        write_script(script, [{"sample_id": "*", "responses": [{"text": LONG_ANSWER}, {"text": SHORT_ANSWER}]}])
        (home / "runners").mkdir()
        (home / "runners" / "tt-bench.yaml").write_text(PROFILE.format(concurrency=args.concurrency, script=script),
                                                        encoding="utf-8")
        os.environ["S2S_HOME"] = str(home)
        ids = [f"interruption_{i:02d}" for i in range(1, args.interruptions + 1)]
        ids += [f"turn_end_{i:02d}" for i in range(1, args.turn_ends + 1)]
        run_dir, _ = asyncio.run(execute(RunOptions(model="tt-bench", eval="turn_taking", ids=ids,
                                                    out=home / "run", progress=True)))
        records = [r for r in sample_records(run_dir) if r.dynamics is not None]
    yields, detections, turn_ends, truncates, kinds = [], [], [], [], []
    for record in records:
        facts = record.dynamics
        assert facts is not None
        if facts.turn_end_latency_ms is not None:
            turn_ends.append(facts.turn_end_latency_ms - 800)
        if facts.truncate_audio_end_ms is not None and facts.played_ms is not None:
            truncates.append(facts.truncate_audio_end_ms - facts.played_ms)
        if facts.yield_latency_ms is None or facts.cue_onset_ms is None:
            continue
        onset = facts.cue_onset_ms
        detected = next(t for n, t in facts.events if n == "server.speech_started" and t >= onset)
        detections.append(detected - onset)
        yields.append(facts.yield_latency_ms - (detected - onset + 200))
        kinds.append(facts.yield_kind)
    failed = [r.sample_id for r in sample_records(run_dir)] if not records else []
    print(f"{len(records)} scenarios measured{f'; failed: {failed}' if failed else ''}; yields: "
          + ", ".join(f"{k} {kinds.count(k)}" for k in sorted(set(kinds), key=str)))
    print("errors in ms (measured minus configured):")
    print(_row("yield (vs detection + 200 ms)", yields))
    print(_row("turn end (vs 500 + 300 ms)", turn_ends))
    print(_row("truncate audio_end_ms vs clock", truncates))
    print(_row("server VAD detection after onset", [d - 600 for d in detections]) + "   (minus the 600 ms minimum)")


if __name__ == "__main__":
    main()
