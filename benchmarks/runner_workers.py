"""Does `s2s-eval run --workers N` take the runner's own error out of latency at 256 paced sessions?

Runs the real runner (`execute`: journal, grading, VAD on the answers, everything a run does) on the same paced load
with each worker count, back to back against one reference server process (scripted engine, a known first-audio
delay, send-time stamps), alternating the counts `--repeat` times so a neighbour's load falls on both alike. Each
row gives the TTFA error (measured minus injected; median and p99), its split into the server's lateness (its stamp
against the delay) and the transit back (stamp to receipt: mostly the runner's receive delay), the runners' loop lag
(all workers' samples together), and the CPU used meanwhile, in cores: the runner's processes, the server, and the
rest of the machine (other people's work shows up there, and as error here).

    python benchmarks/runner_workers.py [--sessions 256] [--workers 1,2] [--repeat 2] [--delay-ms 300]

Every question is the same ~2 s sentence (one TTS clip), as in the measurement notes' prototype.

Measured 2026-12-03 on the 2-core development machine while three other developers ran tests (load average 3.9-5.5;
'other' 0.2-1.4 cores), 256 paced sessions, three alternated rounds each, ms (median / p99):

| workers | TTFA error | server late | transit | loop lag p99 | runner CPU (cores) |
|---|---|---|---|---|---|
| 1 | 82-162 / 189-383 | 71-116 / 125-280 | 10-58 / 101-125 | 139-154 | 0.64-0.85 |
| 2 | 104-388 / 163-489 | 95-366 / 144-424 | 4-32 / 51-76 | 89-108 | 0.98-1.39 |

Two workers cut the runner's own share (transit p99 and loop lag p99 by about a third), but at this load the error is
the reference server's lateness (one process, competing for the same two cores), which workers cannot remove. An
earlier round at 'other' 1.0-1.4 cores gave errors of 150-690 ms median either way: on a shared machine the
neighbours decide the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s_eval.log import read_records, read_spec  # noqa: E402
from s2s_eval.runners.local_server import local_server  # noqa: E402
from s2s_eval.runners.profile import LocalServerSettings  # noqa: E402
from s2s_eval.runners.run import RunOptions, execute  # noqa: E402

QUESTION = "How many legs does a spider have?"
TARGETS = {"formal_fallacies": "valid", "navigate": "Yes", "object_counting": "8", "web_of_lies": "Yes"}


def _data_dir(root: Path, sessions: int) -> Path:
    """Big-Bench-Hard laid out as the adapter reads it: `sessions` samples, every one the same question."""
    per_category = -(-sessions // len(TARGETS))
    (root / "big_bench_hard").mkdir(parents=True)
    for category, target in TARGETS.items():  # each a valid answer of its task, for its grader
        rows = [{"input": QUESTION, "target": target} for _ in range(per_category)]
        (root / "big_bench_hard" / f"{category}.json").write_text(json.dumps({"examples": rows}))
    return root


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy_s() -> float:
    """CPU seconds all processes have spent busy (not idle or waiting for I/O) since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: the workers once they are joined
    return usage.ru_utime + usage.ru_stime


async def _one(url: str, server_pid: int, data: Path, out: Path, sessions: int, workers: int,
               delay_ms: float) -> dict[str, Any]:
    options = RunOptions(model="openai-compatible", eval="big_bench_audio", url=url, out=out, data_dir=data,
                         limit=sessions, concurrency=sessions, pace="realtime", progress=False, save_audio=False,
                         workers=workers)
    start = (time.perf_counter(), time.process_time() + _children_cpu_s(), _process_cpu_s(server_pid),
             _machine_busy_s())
    await execute(options)
    end = (time.perf_counter(), time.process_time() + _children_cpu_s(), _process_cpu_s(server_pid),
           _machine_busy_s())
    wall, runner, server, busy = (b - a for a, b in zip(start, end, strict=True))
    records = [r for r in read_records(out) if r["status"] == "ok" and r["latency"]["ttfa_ms"] is not None]
    latency = [r["latency"] for r in records]
    stamped = [x for x in latency if x.get("server_sent_ms") is not None]
    lag = read_spec(out)["measurement"]["loop_lag_ms"]
    return {"workers": workers, "ok": len(records), "failed": sessions - len(records),
            "ttfa_error": [x["ttfa_ms"] - delay_ms for x in latency],
            "server_late": [x["server_sent_ms"] - delay_ms for x in stamped],
            "transit": [x["ttfa_ms"] - x["server_sent_ms"] for x in stamped],
            "lag": (lag["p50"], lag["p99"]), "wall_s": wall,
            "cores": (runner / wall, server / wall, max(0.0, busy - runner - server) / wall)}


def _stats(values: list[float]) -> str:
    return f"{np.median(values):7.2f} {np.percentile(values, 99):7.2f}" if values else f"{'-':>15}"


def _print(row: dict[str, Any]) -> None:
    runner, server, other = row["cores"]
    print(f"{row['workers']:>7} {row['ok']:>5} {row['failed']:>5} | {_stats(row['ttfa_error'])} | "
          f"{_stats(row['server_late'])} | {_stats(row['transit'])} | {row['lag'][0]:7.2f} {row['lag'][1]:7.2f} | "
          f"{runner:6.2f} {server:6.2f} {other:5.2f} | {row['wall_s']:6.1f}", flush=True)


async def main(sessions: int, counts: list[int], repeat: int, delay_ms: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = _data_dir(folder / "data", sessions)
        script = folder / "script.jsonl"
        script.write_text('{"sample_id": "*", "responses": [{"text": "Eight."}]}\n')
        settings = LocalServerSettings(engine="scripted", script=str(script), first_audio_delay_ms=delay_ms)
        extra = ["--stamp-send-time", "--max-sessions", str(sessions * 2 + 10)]
        async with local_server(settings, folder / "server.log", extra_args=extra) as server:
            print(f"{sessions} paced sessions at once, injected first-audio delay {delay_ms:g} ms; milliseconds, "
                  f"median and p99; CPU in cores ({os.cpu_count()} on this machine; 'other' = not this benchmark)\n")
            print(f"{'workers':>7} {'ok':>5} {'fail':>5} | {'TTFA error':>15} | {'server late':>15} | "
                  f"{'transit':>15} | {'loop lag':>15} | {'runner server other':>20} | {'wall s':>6}", flush=True)
            runs = 0
            for _ in range(repeat):
                for workers in counts:
                    runs += 1
                    _print(await _one(server.url, server.pid, data, folder / f"run{runs}", sessions, workers,
                                      delay_ms))


if __name__ == "__main__":  # required: worker processes are spawned and import this module again
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=256)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the worker counts, alternated")
    parser.add_argument("--delay-ms", type=float, default=300)
    args = parser.parse_args()
    os.environ.setdefault("S2S_HOME", str(ROOT))
    asyncio.run(main(args.sessions, [int(w) for w in args.workers.split(",")], args.repeat, args.delay_ms))
