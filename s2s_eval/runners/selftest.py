"""`s2s-eval selftest` and `benchmarks/latency_scale.py`: how exactly does this machine measure latency?

Starts the reference server in its own process (once per event loop) with a known first-audio delay and with
send-time stamps, runs manual audio turns of a 2 s clip at several concurrency levels, burst and paced, and
reports the TTFA error (measured minus injected), split into the server's own lateness (its stamp against the
delay) and transit (stamp to receipt, which is mostly this harness's receive delay), next to the client's
event-loop lag and the CPU each side used. The turns are driven by the runner's own session code (`run_session`
and `SessionMachine`, as runs use them) and, when asked, by the naive baseline client of `measurement-notes.md`
(`naive.py`) against the same server process, back to back, so each figure also reads as a ratio to that floor.

The machine's other load is measured too (all CPU time minus ours): latency error on a shared machine says more
about the neighbours than about the harness, and the table says so rather than hiding it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2s_eval import audio, loops
from s2s_eval.runners.client import Transport, run_session
from s2s_eval.runners.local_server import LocalServer, local_server
from s2s_eval.runners.looplag import LoopLagMonitor
from s2s_eval.runners.naive import naive_turn
from s2s_eval.runners.profile import LocalServerSettings
from s2s_eval.runners.run import STAGGER_S
from s2s_eval.runners.selftest_plan import CLIP_S, Client, Level
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from s2s_eval.timing import frozen_heap

QUESTION = "How many legs does a spider have? Please answer with a single number."
ANSWER = "Eight."
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
        self.wall_s = wall
        self.cores = {"runner": runner / wall, "server": server / wall,
                      "other": max(0.0, busy - runner - server) / wall}


@dataclass(frozen=True)
class Row:
    loop: str
    client: Client
    pace: str
    concurrency: int
    ok: int
    failed: int
    ttfa_error_ms: list[float]
    server_late_ms: list[float]
    transit_ms: list[float]
    loop_lag: dict[str, Any]
    cpu_cores: dict[str, float]
    wall_s: float = 0.0

    def cpu_ms_per_session(self, side: str) -> float:
        """CPU milliseconds one session cost `side` ("runner" or "server"): steadier than latency under load."""
        return self.cpu_cores[side] * self.wall_s * 1000 / max(1, self.ok + self.failed)


@dataclass(frozen=True)
class _Turn:
    """Stamps of one measured turn (monotonic seconds)."""

    t_zero: float
    first_audio_at: float
    server_sent_at: float | None


def _question_clip() -> bytes:
    pcm = Synthesizer(TTSSettings()).speech(QUESTION)
    size = int(CLIP_S * audio.BYTES_PER_SECOND)
    return pcm[:size].ljust(size, b"\0")


async def _runner_turns(url: str, pcm: bytes, level: Level, done: Callable[[], None]) -> tuple[list[_Turn], int]:
    """The runner's own session code, as a run uses it."""
    update = {"type": "realtime", "output_modalities": ["audio"],
              "audio": {"input": {"format": {"type": "audio/pcm", "rate": audio.SAMPLE_RATE}, "turn_detection": None}}}
    machines = [SessionMachine(SessionPlan(update, (UserTurn(pcm=pcm),), {"sample_id": f"selftest_{i}"}))
                for i in range(level.sessions)]
    pending = iter(machines)
    transport = Transport(url)

    async def worker(index: int) -> None:
        if level.pace == "realtime":
            await asyncio.sleep(STAGGER_S * index / level.concurrency)
        for machine in pending:
            await run_session(transport, machine, timeout_s=60, pace=level.pace)
            done()

    async with asyncio.TaskGroup() as group:
        for index in range(level.concurrency):
            group.create_task(worker(index))
    turns = []
    for machine in machines:
        first = machine.first_of_last_turn() if machine.error is None else None
        if first is not None and first.t_zero is not None and first.first_audio_at is not None:
            turns.append(_Turn(first.t_zero, first.first_audio_at, first.server_sent_at))
    return turns, level.sessions - len(turns)


async def _naive_turns(url: str, pcm: bytes, level: Level, done: Callable[[], None]) -> tuple[list[_Turn], int]:
    """The naive baseline: one coroutine per session, same stagger and same slots as the runner's levels."""
    pending = iter(range(level.sessions))
    turns: list[_Turn] = []
    failed = 0

    async def worker(index: int) -> None:
        nonlocal failed
        if level.pace == "realtime":
            await asyncio.sleep(STAGGER_S * index / level.concurrency)
        for _ in pending:
            try:
                turn = await naive_turn(url, pcm, level.pace)
                turns.append(_Turn(turn.t_zero, turn.first_audio_at, turn.server_sent_at))
            except Exception:  # a failed baseline session is counted, never the end of the measurement
                failed += 1
            done()

    async with asyncio.TaskGroup() as group:
        for index in range(level.concurrency):
            group.create_task(worker(index))
    return turns, failed


async def _measure_level(server: LocalServer, pcm: bytes, delay_ms: float, level: Level,
                         done: Callable[[], None]) -> Row:
    drive = _runner_turns if level.client == "s2s-eval" else _naive_turns
    monitor = LoopLagMonitor()
    with CpuMeter(server.pid) as cpu:
        async with monitor.running():
            turns, failed = await drive(server.url, pcm, level, done)
    stamped = [t for t in turns if t.server_sent_at is not None]
    return Row(loops.current(), level.client, level.pace, level.concurrency, len(turns), failed,
               [(t.first_audio_at - t.t_zero) * 1000 - delay_ms for t in turns],
               [(t.server_sent_at - t.t_zero) * 1000 - delay_ms for t in stamped],  # type: ignore[operator]
               [(t.first_audio_at - t.server_sent_at) * 1000 for t in stamped],  # type: ignore[operator]
               monitor.summary(), cpu.cores, cpu.wall_s)


async def measure(levels: Sequence[Level], delay_ms: float, *, on_row: Callable[[Row], None] | None = None,
                  on_session: Callable[[], None] = lambda: None) -> list[Row]:
    """Measure every level against one server process running the same event loop as this one; a row per level.

    `on_row` sees each row as soon as it is measured, `on_session` each finished session (for a progress bar).
    """
    pcm = await asyncio.to_thread(_question_clip)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.jsonl"
        script.write_text(f'{{"sample_id": "*", "responses": [{{"text": "{ANSWER}"}}]}}\n', encoding="utf-8")
        settings = LocalServerSettings(engine="scripted", script=str(script), first_audio_delay_ms=delay_ms)
        extra = ["--stamp-send-time", "--max-sessions", str(max(lv.concurrency for lv in levels) * 2 + 10),
                 "--loop", loops.current()]
        rows: list[Row] = []
        async with local_server(settings, Path(tmp) / "server.log", extra_args=extra) as server:
            with frozen_heap():
                for level in levels:
                    rows.append(await _measure_level(server, pcm, delay_ms, level, on_session))
                    if on_row:
                        on_row(rows[-1])
        return rows


def run_levels(levels: Sequence[Level], delay_ms: float, event_loops: Sequence[loops.LoopName], *,
               on_row: Callable[[Row], None] | None = None, progress: bool = True) -> list[Row]:
    """`measure` once per event loop (runner and server both on it), with one progress bar over every session."""
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(total=len(event_loops) * sum(lv.sessions for lv in levels), unit="session", desc="selftest",
               disable=None if progress else True, leave=False)  # None: only on a terminal

    def row_done(row: Row) -> None:
        if on_row:
            bar.clear()
            on_row(row)
            bar.refresh()

    try:
        rows: list[Row] = []
        for name in event_loops:
            rows += loops.run(measure(levels, delay_ms, on_row=row_done, on_session=lambda: bar.update(1)), name)
        return rows
    finally:
        bar.close()


# -- the table ------------------------------------------------------------------------------------------------------

def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _p99(values: list[float]) -> float | None:
    return float(np.percentile(values, 99)) if values else None


def figures(row: Row) -> dict[str, float | None]:
    """The row's figures, in the order of the table's columns."""
    return {"ttfa_p50": _median(row.ttfa_error_ms), "ttfa_p99": _p99(row.ttfa_error_ms),
            "server_p50": _median(row.server_late_ms), "server_p99": _p99(row.server_late_ms),
            "transit_p50": _median(row.transit_ms), "transit_p99": _p99(row.transit_ms),
            "lag_p99": row.loop_lag.get("p99"), "cpu_runner": row.cpu_cores["runner"],
            "cpu_server": row.cpu_cores["server"], "cpu_other": row.cpu_cores["other"],
            "ms_runner": row.cpu_ms_per_session("runner"), "ms_server": row.cpu_ms_per_session("server")}


def header(delay_ms: float) -> str:
    return (f"injected first-audio delay {delay_ms:g} ms, a {CLIP_S:g} s clip in 100 ms chunks; milliseconds; TTFA "
            "error = measured - injected = server late (its send stamp - the deadline) + transit (receipt - stamp); "
            f"CPU in cores ({os.cpu_count()} on this machine; 'other' = processes that are not this test) and in "
            "milliseconds per session (the steadiest figure on a busy machine)\n\n"
            f"{'loop':>7} {'pace':>8} {'conc':>4} {'client':>8} {'ok':>4} {'fail':>4} | {'TTFA error':>13} | "
            f"{'server late':>13} | {'transit':>13} | {'lag':>6} | {'CPU runner server other':>23} | "
            f"{'CPU ms/session':>13}\n"
            f"{'':>7} {'':>8} {'':>4} {'':>8} {'':>4} {'':>4} | {'p50':>6} {'p99':>6} | {'p50':>6} {'p99':>6} | "
            f"{'p50':>6} {'p99':>6} | {'p99':>6} | {'cores':>23} | {'runner':>6} {'server':>6}")


def _cell(value: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"


def format_row(row: Row) -> str:
    f = figures(row)
    return (f"{row.loop:>7} {row.pace:>8} {row.concurrency:>4} {row.client:>8} {row.ok:>4} {row.failed:>4} | "
            f"{_cell(f['ttfa_p50'])} {_cell(f['ttfa_p99'])} | {_cell(f['server_p50'])} {_cell(f['server_p99'])} | "
            f"{_cell(f['transit_p50'])} {_cell(f['transit_p99'])} | {_cell(f['lag_p99'])} | "
            f"{f['cpu_runner']:>11.2f} {f['cpu_server']:>6.2f} {f['cpu_other']:>5.2f} | "
            f"{_cell(f['ms_runner'])} {_cell(f['ms_server'])}")


def ratios(row: Row, baseline: Row) -> dict[str, float | None]:
    """Each figure of `row` divided by the baseline's (None where the baseline's is missing or not above zero)."""
    mine, base = figures(row), figures(baseline)
    return {k: None if mine[k] is None or not base[k] or base[k] <= 0 else mine[k] / base[k] for k in mine}


def format_ratio(row: Row, baseline: Row) -> str:
    r = ratios(row, baseline)
    return (f"{'':>7} {'':>8} {'':>4} {'÷ naive':>8} {'':>4} {'':>4} | {_cell(r['ttfa_p50'])} {_cell(r['ttfa_p99'])} | "
            f"{_cell(r['server_p50'])} {_cell(r['server_p99'])} | {_cell(r['transit_p50'])} "
            f"{_cell(r['transit_p99'])} | {_cell(r['lag_p99'])} | {_cell(r['cpu_runner'], 11)} "
            f"{_cell(r['cpu_server'])} {'':>5} | {_cell(r['ms_runner'])} {_cell(r['ms_server'])}")


class TablePrinter:
    """Prints rows as they come, and after each runner row that follows its naive twin, their ratios."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write
        self.last: Row | None = None

    def __call__(self, row: Row) -> None:
        self.write(format_row(row))
        last = self.last
        if (last is not None and last.client == "naive" and row.client == "s2s-eval"
                and (last.loop, last.pace, last.concurrency) == (row.loop, row.pace, row.concurrency)):
            self.write(format_ratio(row, last))
        self.last = row
