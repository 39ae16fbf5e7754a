"""Does the runner's memory stay flat as the sample count grows?

Runs the real runner (`execute`: sample selection, the worker pool, retries, grading, the journal, the summary)
with the `local` profile (the embedded reference server in its own process, echo engine) for each sample count,
each in a fresh Python process, and prints that process's peak RSS. The server's memory is not counted: it is a
separate process. TTS must not dominate, so every sample asks the same short question: a Big-Bench-Hard-shaped data
directory with one question repeated is written to a temporary folder, and the clip is synthesised once.

    python benchmarks/runner_memory.py [--samples 200,2000] [--concurrency 8] [--keep DIR]

Per run it prints the RSS before the run (imports and data loaded), the peak RSS during each quarter of the run's
wall time, the peak overall, and the journal's size. Flat memory means the peak does not grow with the count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s_eval.datasets.spec import load_eval  # noqa: E402
from s2s_eval.speech.tts import Synthesizer, spoken_form  # noqa: E402

QUESTION = "Is the sky blue? Answer yes or no."
TARGETS = {"formal_fallacies": "valid", "navigate": "Yes", "object_counting": "3", "web_of_lies": "Yes"}


def write_data_dir(folder: Path, per_task: int) -> Path:
    """A data directory laid out like the shared one, each task holding the same question `per_task` times."""
    for task, target in TARGETS.items():
        path = folder / "big_bench_hard" / f"{task}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"examples": [{"input": QUESTION, "target": target}] * per_task}))
    return folder


def rss_kib() -> int:
    """Resident set size of this process now, in KiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _measured_run(samples: int, data_dir: Path, out: Path, concurrency: int) -> dict[str, object]:
    from s2s_eval.runners.run import RunOptions, execute

    trace: list[tuple[float, int]] = []

    async def sample_rss() -> None:
        while True:
            trace.append((time.perf_counter(), rss_kib()))
            await asyncio.sleep(0.1)

    options = RunOptions(model="local", eval="big_bench_audio", limit=samples, data_dir=data_dir, out=out,
                         progress=False, concurrency=concurrency)
    # Load the data once before measuring, so the baseline holds the imports and the loaded samples.
    from s2s_eval.datasets import load_samples
    load_samples(load_eval("big_bench_audio"), data_dir)
    before = rss_kib()
    started = time.perf_counter()
    sampler = asyncio.create_task(sample_rss())
    try:
        _, summary = await execute(options)
    finally:
        sampler.cancel()
    elapsed = time.perf_counter() - started
    quarters = [max((kib for t, kib in trace if started + q * elapsed / 4 <= t <= started + (q + 1) * elapsed / 4),
                    default=0) for q in range(4)]
    return {"samples": samples, "ok": summary["counts"]["ok"], "total": summary["counts"]["total"],
            "elapsed_s": round(elapsed, 1), "rss_before_kib": before, "rss_quarters_kib": quarters,
            "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "journal_kib": (out / "samples.jsonl").stat().st_size // 1024}


def child(args: argparse.Namespace) -> None:
    result = asyncio.run(_measured_run(args.child, args.data_dir, args.out, args.concurrency))
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", default="200,2000", help="sample counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    counts = [int(c) for c in args.samples.split(",")]
    with tempfile.TemporaryDirectory(prefix="s2s-runner-memory-") as tmp:
        work = Path(args.keep or tmp)
        env = {**os.environ, "S2S_CACHE_DIR": str(work / "cache"), "S2S_HOME": str(ROOT),
               "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        os.environ.update(env)
        data_dir = write_data_dir(work / "data", -(-max(counts) // len(TARGETS)))
        Synthesizer(load_eval("big_bench_audio").tts).prepare([spoken_form(QUESTION)], progress=False)

        print(f"runner memory, local profile (echo engine), concurrency {args.concurrency}")
        print(f"{'samples':>8} {'ok':>6} {'time s':>7} {'before MiB':>11} {'peak by quarter MiB':>26} "
              f"{'peak MiB':>9} {'journal MiB':>12}")
        for n in counts:
            out = work / f"run-{n}"
            done = subprocess.run([sys.executable, __file__, "--child", str(n), "--data-dir", str(data_dir),
                                   "--out", str(out), "--concurrency", str(args.concurrency)],
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"the {n}-sample run failed:\n{done.stderr[-2000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            quarters = " ".join(f"{kib / 1024:6.1f}" for kib in r["rss_quarters_kib"])
            print(f"{n:>8} {r['ok']:>6} {r['elapsed_s']:>7} {r['rss_before_kib'] / 1024:>11.1f} {quarters:>26} "
                  f"{r['peak_kib'] / 1024:>9.1f} {r['journal_kib'] / 1024:>12.1f}")


if __name__ == "__main__":
    main()
