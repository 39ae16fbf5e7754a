"""`s2s-eval selftest`: how exactly does this machine measure latency?

Starts the reference server in its own process with a known first-audio delay and with send-time stamps, runs
manual audio turns at several concurrency levels, burst and paced, and reports the TTFA error (measured minus
injected), split into the server's own lateness (its stamp against the delay) and transit (stamp to receipt,
which is mostly this harness's receive delay), next to the runner's event-loop lag and the CPU each side used.

The machine's other load is measured too (all CPU time minus ours): latency error on a shared machine says more
about the neighbours than about the harness, and the table says so rather than hiding it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2s_eval import audio
from s2s_eval.runners.client import Pace, Transport, run_session
from s2s_eval.runners.local_server import LocalServer, local_server
from s2s_eval.runners.looplag import LoopLagMonitor
from s2s_eval.runners.profile import LocalServerSettings
from s2s_eval.runners.run import STAGGER_S
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from s2s_eval.timing import frozen_heap

QUESTION = "How many legs does a spider have? Please answer with a single number."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy_s() -> float:
    """CPU seconds all processes have spent busy (not idle or waiting for I/O) since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU used over an interval, in cores: the runner (this process), the server, and everything else."""

    server_pid: int

    def __enter__(self) -> CpuMeter:
        self.start = (time.perf_counter(), time.process_time(), _process_cpu_s(self.server_pid), _machine_busy_s())
        return self

    def __exit__(self, *_: object) -> None:
        end = (time.perf_counter(), time.process_time(), _process_cpu_s(self.server_pid), _machine_busy_s())
        wall, runner, server, busy = (b - a for a, b in zip(self.start, end, strict=True))
        self.cores = {"runner": runner / wall, "server": server / wall,
                      "other": max(0.0, busy - runner - server) / wall}


@dataclass(frozen=True)
class Row:
    pace: str
    concurrency: int
    ok: int
    failed: int
    ttfa_error_ms: list[float]
    server_late_ms: list[float]
    transit_ms: list[float]
    loop_lag: dict[str, Any]
    cpu_cores: dict[str, float]


async def _level(server: LocalServer, pcm: bytes, delay_ms: float, concurrency: int, sessions: int,
                 pace: Pace) -> Row:
    update = {"type": "realtime", "output_modalities": ["audio"],
              "audio": {"input": {"format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}, "turn_detection": None}}}
    machines = [SessionMachine(SessionPlan(update, (UserTurn(pcm=pcm),), {"sample_id": f"selftest_{i}"}))
                for i in range(sessions)]
    pending = iter(machines)
    transport = Transport(server.url)

    async def worker(index: int) -> None:
        if pace == "realtime":
            await asyncio.sleep(STAGGER_S * index / concurrency)
        for machine in pending:
            await run_session(transport, machine, timeout_s=60, pace=pace)

    monitor = LoopLagMonitor()
    with CpuMeter(server.pid) as cpu:
        async with monitor.running(), asyncio.TaskGroup() as group:
            for index in range(concurrency):
                group.create_task(worker(index))
    ok = [m.first_of_last_turn() for m in machines if m.error is None and m.first_of_last_turn()]
    stamped = [r for r in ok if r.server_sent_at is not None and r.t_zero is not None and r.first_audio_at]
    return Row(pace, concurrency, len(ok), sessions - len(ok),
               [r.ttfa_ms - delay_ms for r in ok if r.ttfa_ms is not None],
               [(r.server_sent_at - r.t_zero) * 1000 - delay_ms for r in stamped],
               [(r.first_audio_at - r.server_sent_at) * 1000 for r in stamped],
               monitor.summary(), cpu.cores)


async def selftest(delay_ms: float, levels: list[int], paces: list[Pace], sessions: int,
                   on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Measure every (pace, concurrency) level against one server; returns one row per level.

    Each level runs at least `sessions` sessions and at least two per concurrent slot, so the p99 of a level has
    enough samples behind it. `on_row` sees each row as soon as it is measured.
    """
    pcm = await asyncio.to_thread(Synthesizer(TTSSettings()).speech, QUESTION)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.jsonl"
        script.write_text('{"sample_id": "*", "responses": [{"text": "Eight."}]}\n', encoding="utf-8")
        settings = LocalServerSettings(engine="scripted", script=str(script), first_audio_delay_ms=delay_ms)
        extra = ["--stamp-send-time", "--max-sessions", str(max(levels) * 2 + 10)]
        rows: list[Row] = []
        async with local_server(settings, Path(tmp) / "server.log", extra_args=extra) as server:
            with frozen_heap():
                for pace in paces:
                    for level in levels:
                        rows.append(await _level(server, pcm, delay_ms, level, max(sessions, 2 * level), pace))
                        if on_row:
                            on_row(rows[-1])
        return rows


def _stats(values: list[float]) -> str:
    if not values:
        return f"{'not measured':>15}"
    return f"{np.median(values):7.2f} {np.percentile(values, 99):7.2f}"


def print_header(delay_ms: float) -> None:
    print(f"injected first-audio delay {delay_ms:g} ms; milliseconds, median and p99; CPU in cores "
          f"({os.cpu_count()} on this machine; 'other' = processes that are not this test)\n")
    print(f"{'pace':>8} {'conc':>5} {'ok':>5} {'fail':>5} | {'TTFA error':>15} | {'server late':>15} | "
          f"{'transit':>15} | {'loop lag':>15} | {'CPU runner server other':>23}", flush=True)


def print_row(r: Row) -> None:
    lag = f"{r.loop_lag['p50']:7.2f} {r.loop_lag['p99']:7.2f}" if r.loop_lag["n"] else f"{'-':>15}"
    cpu = r.cpu_cores
    print(f"{r.pace:>8} {r.concurrency:>5} {r.ok:>5} {r.failed:>5} | {_stats(r.ttfa_error_ms)} | "
          f"{_stats(r.server_late_ms)} | {_stats(r.transit_ms)} | {lag} | "
          f"{cpu['runner']:>11.2f} {cpu['server']:>6.2f} {cpu['other']:>5.2f}", flush=True)
