"""How exactly does the reference server keep its turn-taking settings (`s2s_eval/server/dynamics.py`)?

Starts `s2s-eval serve` in its own process with a yield delay, an output rate and a first-audio delay, and runs
sessions with the real-time 20 ms full-duplex client of `tests/test_server_dynamics.py`: ask for a long answer,
interrupt it with a spoken question (espeak-ng), let the question's turn end on VAD silence. Per session it
measures, on the client's monotonic clock (errors = measured minus configured):

- yield: `speech_started` received → `response.done` (cancelled) received, minus the yield delay;
- detect: the frame holding the caller's voiced onset sent → `speech_started` received;
- pace: each audio delta's arrival minus (first delta + its audio offset / output rate), before the cancel;
- turn end: the frame that completed the silence sent → the next answer's first audio delta, minus the delay;
  and the end of the caller's voiced audio → that first audio, minus (silence + delay).

    python benchmarks/server_dynamics.py [--sessions 10] [--yield-delay-ms 200] [--output-rate 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s_eval import audio  # noqa: E402
from s2s_eval.speech.tts import Synthesizer, TTSSettings  # noqa: E402
from tests.servers import serve_process, write_script  # noqa: E402
from tests.test_server_dynamics import SCRIPT, done_of, duplex, kind, silence, start_answer  # noqa: E402

SILENCE_MS = 500


async def trial(url: str, question: bytes, rate: float) -> dict[str, list[float]]:
    async with duplex(url, silence_duration_ms=SILENCE_MS) as c:
        answer, first_audio = await start_answer(c)
        await c.stream(silence(600))
        lead_ms = c.sent_ms
        streamed_from = time.perf_counter()
        speaking = asyncio.create_task(c.stream(question + silence(900)))
        started_at, _ = await c.wait(kind("input_audio_buffer.speech_started"))
        done_at, _ = await c.wait(done_of(answer))
        _, stopped = await c.wait(kind("input_audio_buffer.speech_stopped"))
        next_first_at, _ = await c.wait(lambda e: e["type"] == "response.output_audio.delta"
                                        and e["response_id"] != answer)
        await speaking
    onset_ms, end_ms = audio.voiced_span_ms(question)  # type: ignore[misc]
    deltas = [(t, e) for t, e in c.of("response.output_audio.delta") if e["response_id"] == answer]
    offsets = np.cumsum([0] + [len(audio.b64decode(e["delta"])) / audio.BYTES_PER_SECOND for _, e in deltas])
    return {
        "yield": [(done_at - started_at) * 1000],
        "detect": [(started_at - c.frame_with(lead_ms + onset_ms)) * 1000],
        "pace": [((t - first_audio) - offsets[i] / rate) * 1000 for i, (t, _) in enumerate(deltas)],
        "turn end (frame)": [(next_first_at - c.frame_ending(stopped["audio_end_ms"])) * 1000],
        "turn end (voiced)": [(next_first_at - streamed_from) * 1000 - end_ms],
    }


async def main_async(args: argparse.Namespace) -> None:
    question = Synthesizer(TTSSettings()).speech("What is the capital of France?")
    expected = {"yield": args.yield_delay_ms, "detect": 0.0, "pace": 0.0, "turn end (frame)": args.delay_ms,
                "turn end (voiced)": SILENCE_MS + args.delay_ms}
    with tempfile.TemporaryDirectory() as tmp:
        script = write_script(Path(tmp) / "script.jsonl", SCRIPT)
        with serve_process("--engine", "scripted", "--script", str(script), "--yield-delay-ms",
                           str(args.yield_delay_ms), "--output-rate", str(args.output_rate),
                           "--first-audio-delay-ms", str(args.delay_ms)) as url:
            results: dict[str, list[float]] = {name: [] for name in expected}
            for _ in range(args.sessions):
                for name, values in (await trial(url, question, args.output_rate)).items():
                    results[name] += values
    print(f"{'error (ms)':<20}{'n':>5}{'median':>9}{'p90':>9}{'min':>9}{'max':>9}   configured")
    for name, values in results.items():
        errors = np.array(values) - expected[name]
        print(f"{name:<20}{len(errors):>5}{np.median(errors):>9.1f}{np.percentile(errors, 90):>9.1f}"
              f"{errors.min():>9.1f}{errors.max():>9.1f}   {expected[name]:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--yield-delay-ms", type=float, default=200)
    parser.add_argument("--output-rate", type=float, default=1.0)
    parser.add_argument("--delay-ms", type=float, default=300, help="first-audio delay")
    args = parser.parse_args()
    os.environ.setdefault("S2S_HOME", str(ROOT))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
