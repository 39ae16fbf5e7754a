"""How long does a report of 3 runs × 1,000 samples take to build, and how large is the page?

Writes three synthetic Big Bench Audio runs (realistic records: transcripts, event timelines, usage, ASR blocks;
no audio, so the page alone is measured), then builds the report in a fresh Python process, as `s2s-eval report`
does, and prints wall time (imports included), the time of `build_report` alone, and the HTML size.
Targets: at most 10 s and 5 MB.

    python benchmarks/report_size.py [--runs 3] [--samples 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.synthetic_runs import make_run  # noqa: E402

TARGET_S = 10.0
TARGET_MB = 5.0
MODELS = ("gpt-realtime", "gpt-realtime-mini", "gpt-4o-realtime-preview")

_BUILD = """
import json, sys, time
t0 = time.perf_counter()
from s2s_eval.reports.html import build_report
t1 = time.perf_counter()
build_report([*sys.argv[2:]], sys.argv[1], audio=False)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write runs and report here and keep them")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="s2s-report-bench-") as tmp:
        root = args.keep or Path(tmp)
        runs = [make_run(root / "runs" / f"run{i}-{MODELS[i % len(MODELS)]}", MODELS[i % len(MODELS)],
                         args.samples, 0.55 + 0.1 * (i % 3), seed=i, ttfa_scale=1.0 + 0.3 * i, error_rate=0.02,
                         started_at=dt.datetime(2025, 8, 29, 10, i, tzinfo=dt.UTC))
                for i in range(args.runs)]
        journal_mb = sum((r / "samples.jsonl").stat().st_size for r in runs) / 1e6
        out = root / "report" / "index.html"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _BUILD, str(out), *map(str, runs)], capture_output=True,
                              text=True, cwd=ROOT)
        wall_s = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        inner = json.loads(done.stdout.strip().splitlines()[-1])
        size_mb = out.stat().st_size / 1e6
        print(f"{args.runs} runs × {args.samples:,} samples ({journal_mb:.1f} MB of journals)")
        print(f"wall time {wall_s:.2f} s (imports {inner['import_s']:.2f} s, build_report {inner['build_s']:.2f} s)"
              f" — target ≤ {TARGET_S:.0f} s")
        print(f"report size {size_mb:.2f} MB — target ≤ {TARGET_MB:.0f} MB (without audio)")
        ok = wall_s <= TARGET_S and size_mb <= TARGET_MB
        print("within targets" if ok else "OVER TARGET")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
