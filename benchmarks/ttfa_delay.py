"""How exactly does the harness measure time to first audio?

Starts `s2s-eval serve --engine scripted --first-audio-delay-ms D` as a separate process, runs Big Bench Audio
samples against it through the `openai-compatible` profile at several concurrency levels, and prints the
distribution of `ttfa_ms - D` (the harness's measurement error plus the server's scheduling error).

    python benchmarks/ttfa_delay.py [--delay-ms 300] [--samples 40] [--concurrency 1,4,16]
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

from s2s_eval.runners.journal import read_records  # noqa: E402
from s2s_eval.runners.run import RunOptions, execute  # noqa: E402
from tests.servers import serve_process, write_script  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=300)
    parser.add_argument("--samples", type=int, default=40, help="samples per concurrency level")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("S2S_DATA_DIR") or ROOT.parent / "shared" / "datasets"))
    args = parser.parse_args()
    os.environ.setdefault("S2S_HOME", str(ROOT))

    with tempfile.TemporaryDirectory() as tmp:
        script = write_script(Path(tmp) / "script.jsonl",
                              [{"sample_id": "*", "responses": [{"text": "The answer is no."}]}])
        with serve_process("--engine", "scripted", "--script", str(script), "--first-audio-delay-ms",
                           str(args.delay_ms)) as url:
            print(f"first-audio delay {args.delay_ms:g} ms, {args.samples} samples per level, "
                  f"burst upload, no compression, server in its own process\n")
            print(f"{'concurrency':>11} {'n':>4} {'median':>8} {'p90':>8} {'p99':>8} {'min':>8} {'max':>8}"
                  "   (ttfa_ms - delay, ms)")
            for level in (int(c) for c in args.concurrency.split(",")):
                out = Path(tmp) / f"c{level}"
                asyncio.run(execute(RunOptions(model="openai-compatible", eval="big_bench_audio", url=url,
                                               limit=args.samples, concurrency=level, data_dir=args.data_dir,
                                               out=out, progress=False, save_audio=False)))
                ttfa = [r["latency"]["ttfa_ms"] for r in read_records(out) if r["status"] == "ok"]
                error = np.array(ttfa) - args.delay_ms
                print(f"{level:>11} {len(error):>4} {np.median(error):>8.2f} {np.percentile(error, 90):>8.2f} "
                      f"{np.percentile(error, 99):>8.2f} {error.min():>8.2f} {error.max():>8.2f}")


if __name__ == "__main__":
    main()
