"""How fast is the spoken input of Big Bench Audio made: TTS throughput for its 1,000 questions.

Synthesises every Big Bench Audio question (the shared local copy, or --data-dir) with espeak-ng through the
project's cache, the way `s2s-eval prepare` does, into a fresh temporary cache:

- cold: nothing cached, every clip synthesised, on all cores (--workers, default: every core);
- warm: the same again, every clip a cache hit (the engine is not run);
- warm + perturbation: every clip read from the cache and perturbed (white noise at 10 dB SNR), as a run does.

Each line gives clips per second, seconds of speech per second (the real-time factor of the whole pipeline), and
the wall time. Optionally compare with fewer workers (--also-workers 1).

    python benchmarks/tts_throughput.py [--items 1000] [--workers N] [--also-workers 1] [--voice en-us]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s_eval import audio  # noqa: E402
from s2s_eval.datasets import load_samples, select  # noqa: E402
from s2s_eval.datasets.perturb import Perturbation  # noqa: E402
from s2s_eval.datasets.spec import load_eval  # noqa: E402
from s2s_eval.datasets.tts_input import InputAudio  # noqa: E402
from s2s_eval.speech.tts import Synthesizer, TTSSettings  # noqa: E402


def line(label: str, clips: int, speech_s: float, wall_s: float) -> None:
    print(f"{label:<34} {clips:>5} clips  {wall_s:>7.1f} s  {clips / wall_s:>7.1f} clips/s  "
          f"{speech_s / wall_s:>7.1f} s of speech per s", flush=True)


def measure(texts: list[str], voice: str, workers: int, cache: Path) -> None:
    synth = Synthesizer(TTSSettings(voice=voice), cache_root=cache)
    synth.engine.version  # noqa: B018  (a subprocess; not part of the synthesis time)
    started = time.perf_counter()
    made = synth.prepare(texts, workers=workers, progress=False)
    cold_s = time.perf_counter() - started
    assert made == len(set(texts)), made
    started = time.perf_counter()
    clips = [synth.speech(t) for t in texts]
    read_s = time.perf_counter() - started
    speech_s = sum(audio.duration_s(c) for c in clips)
    line(f"cold, {workers} worker{'s' if workers > 1 else ''} (synthesised)", len(texts), speech_s, cold_s)
    started = time.perf_counter()
    assert synth.prepare(texts, workers=workers, progress=False) == 0
    check_s = time.perf_counter() - started
    line("warm: prepare (all cached)", len(texts), speech_s, check_s)
    line("warm: read every clip", len(texts), speech_s, read_s)


def measure_perturbed(samples: list, cache: Path, voice: str) -> None:
    spec = load_eval("big_bench_audio")
    spec = spec.model_copy(update={"tts": spec.tts.model_copy(update={"voice": voice}),
                                   "perturb": Perturbation(kind="noise", level=10.0)})
    speech = InputAudio(spec, cache_root=cache)
    asyncio.run(speech.prepare(samples, lambda s: [s.prompt_text], None, progress=False))
    started = time.perf_counter()
    total = sum(audio.duration_s(speech.speech(s, s.prompt_text)) for s in samples)
    line("warm: read + noise at 10 dB SNR", len(samples), total, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--also-workers", type=int, action="append", default=[])
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("S2S_DATA_DIR")
                                                               or ROOT.parent / "shared" / "datasets"))
    args = parser.parse_args()

    samples = select(load_samples(load_eval("big_bench_audio"), args.data_dir)[0], None, args.items)
    texts = [s.prompt_text for s in samples]
    words = sum(len(t.split()) for t in texts)
    print(f"Big Bench Audio: {len(texts)} questions, {words} words; espeak-ng, voice {args.voice}, "
          f"{os.cpu_count()} cores")
    for workers in [args.workers, *args.also_workers]:
        with tempfile.TemporaryDirectory(prefix="s2s-tts-bench-") as cache:
            measure(texts, args.voice, workers, Path(cache))
            if workers == args.workers:
                measure_perturbed(samples, Path(cache), args.voice)


if __name__ == "__main__":
    main()
