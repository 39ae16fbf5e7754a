"""How many concurrent sessions does the reference server carry, and at what cost?

Starts `s2s-eval serve --engine scripted` as a separate process, then opens N WebSocket sessions at once from this
process, each a full manual-commit audio turn (session.update, ~3 s of spoken question, commit, response.create,
the scripted spoken answer) driven by the harness's own client (`SessionMachine` + `run_session`). Prints
completions and failures, throughput, turn latency, and the CPU time and memory of both processes over the
measured waves (server start-up and speech synthesis excluded).

    python benchmarks/server_sessions.py [--sessions 200] [--rounds 1] [--delay-ms 300] [--upload burst|paced]
                                         [--ramp-s 0] [--timeout-s 120] [--server-log FILE]

`--upload burst` sends each session's appends back to back (the runner's `pace="burst"`); `paced` sends one 100 ms
chunk per 100 ms of wall clock (`pace="realtime"`). A wave's sessions all start at once (or evenly over `--ramp-s`);
waves run one after another. TTFA is timed from `response.create` sent, so with `--delay-ms D` the ideal is D; the
server stamps its send time into each first audio delta (`--stamp-send-time`, same monotonic clock), which splits
TTFA into the server's part (request transit, queueing, the delay, scheduling) and the transit back to the client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s_eval import audio  # noqa: E402
from s2s_eval.datasets.spec import load_eval  # noqa: E402
from s2s_eval.runners.client import Transport, run_session  # noqa: E402
from s2s_eval.runners.profile import load_profile  # noqa: E402
from s2s_eval.runners.run import session_update  # noqa: E402
from s2s_eval.runners.session import SessionMachine, SessionPlan, UserTurn  # noqa: E402
from s2s_eval.speech.tts import Synthesizer, TTSSettings  # noqa: E402
from tests.servers import serve_subprocess, write_script  # noqa: E402

QUESTION = "Which is larger, the Moon or the Earth? Answer briefly."  # about 3.4 s with the default voice
ANSWER = "The Earth is larger."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int | str) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_s() -> float:
    """CPU seconds all cores of this machine have spent busy (not idle or waiting on I/O), from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


def memory_mib(pid: int, field: str) -> float:
    """A memory figure from /proc/PID/status (VmRSS now, VmHWM peak), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


async def wave(url: str, update: dict, pcm: bytes, args: argparse.Namespace) -> list[SessionMachine]:
    """Start `args.sessions` sessions (at once, or spread over `--ramp-s`); wait for all; return their machines."""
    machines = [SessionMachine(SessionPlan(session_update=update, turns=(UserTurn(pcm=pcm),),
                                           metadata={"sample_id": f"bench-{k}"})) for k in range(args.sessions)]
    pace = "realtime" if args.upload == "paced" else "burst"

    async def session(k: int, machine: SessionMachine) -> None:
        await asyncio.sleep(k * args.ramp_s / args.sessions)
        await run_session(Transport(url), machine, timeout_s=args.timeout_s, pace=pace)

    async with asyncio.TaskGroup() as group:
        for k, machine in enumerate(machines):
            group.create_task(session(k, machine))
    return machines


def percentiles(values: list[float]) -> str:
    """'p50 / p90 / p99' in ms, or 'n/a'."""
    if not values:
        return "n/a"
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return f"{p50:8.1f} / {p90:8.1f} / {p99:8.1f} ms"


def report(machines: list[SessionMachine], wall_s: float, server: dict, client_cpu_s: float, log: Path) -> None:
    """Print the figures of all waves together."""
    ok = [m.final() for m in machines if m.error is None and m.final() is not None]
    kinds = Counter(m.error.kind for m in machines if m.error is not None)
    examples = {m.error.kind: m.error.message for m in machines if m.error is not None}
    log_text = log.read_text(errors="replace")
    print(f"sessions      {len(ok)} completed, {len(machines) - len(ok)} failed"
          + "".join(f"\n  {kind}: {n} (e.g. {examples[kind]})" for kind, n in kinds.items()))
    print(f"wall time     {wall_s:.2f} s, {len(ok) / wall_s:.1f} sessions/s")
    print(f"TTFA          p50 / p90 / p99 {percentiles([r.ttfa_ms for r in ok if r.ttfa_ms is not None])}")
    server_ms = [(r.server_sent_at - r.t_zero) * 1000 for r in ok if r.server_sent_at and r.t_zero]
    transit_ms = [(r.first_audio_at - r.server_sent_at) * 1000 for r in ok if r.server_sent_at and r.first_audio_at]
    print(f"  server part p50 / p90 / p99 {percentiles(server_ms)}  (response.create sent -> first delta sent)")
    print(f"  transit     p50 / p90 / p99 {percentiles(transit_ms)}  (first delta sent -> stamped by the client)")
    print(f"total         p50 / p90 / p99 {percentiles([r.total_ms for r in ok if r.total_ms is not None])}")
    print(f"server CPU    {server['cpu_s']:.2f} s, utilisation {server['cpu_s'] / wall_s:.2f} (1.0 = one core)")
    print(f"client CPU    {client_cpu_s:.2f} s, utilisation {client_cpu_s / wall_s:.2f}")
    others_s = server["machine_busy_s"] - server["cpu_s"] - client_cpu_s
    print(f"other load    {others_s:.2f} CPU s by other processes during the waves ({os.cpu_count()} cores)")
    print(f"server RSS    {server['rss_before_mib']:.0f} MiB before the waves, peak {server['hwm_mib']:.0f} MiB")
    print(f"server log    {log_text.count('after its deadline')} late first-content warnings, "
          f"{log_text.count('refused a session')} refused sessions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200, help="concurrent sessions per wave")
    parser.add_argument("--rounds", type=int, default=1, help="waves, one after another")
    parser.add_argument("--delay-ms", type=float, default=300, help="the server's --first-audio-delay-ms")
    parser.add_argument("--upload", choices=("burst", "paced"), default="burst")
    parser.add_argument("--ramp-s", type=float, default=0, help="spread a wave's session starts over this long")
    parser.add_argument("--timeout-s", type=float, default=120, help="per turn, as the profiles' turn_timeout_s")
    parser.add_argument("--server-log", type=Path, help="keep the server's log here (default: discarded)")
    args = parser.parse_args()
    os.environ.setdefault("S2S_HOME", str(ROOT))

    pcm = Synthesizer(TTSSettings()).speech(QUESTION)
    update = session_update(load_profile("openai-compatible"), load_eval("big_bench_audio"), "manual")
    with tempfile.TemporaryDirectory() as tmp:
        script = write_script(Path(tmp) / "script.jsonl", [{"sample_id": "*", "responses": [{"text": ANSWER}]}])
        log = args.server_log or Path(tmp) / "server.log"
        # Twice N: a wave's closing sessions may still be counted when the next wave connects.
        serve_args = ["--engine", "scripted", "--script", str(script), "--max-sessions", str(2 * args.sessions),
                      "--first-audio-delay-ms", str(args.delay_ms), "--stamp-send-time"]
        with serve_subprocess(*serve_args, log=log) as (url, process):
            print(f"{args.sessions} sessions x {args.rounds} rounds (ramp {args.ramp_s:g} s), {args.upload} upload "
                  f"of {audio.duration_s(pcm):.1f} s of speech, first-audio delay {args.delay_ms:g} ms, "
                  f"no compression, server pid {process.pid}\n")
            server_cpu0, client_cpu0, busy0 = cpu_s(process.pid), cpu_s("self"), machine_busy_s()
            rss_before = memory_mib(process.pid, "VmRSS")
            machines: list[SessionMachine] = []
            started = time.perf_counter()
            for _ in range(args.rounds):
                machines += asyncio.run(wave(url, update, pcm, args))
            wall_s = time.perf_counter() - started
            server = {"cpu_s": cpu_s(process.pid) - server_cpu0, "rss_before_mib": rss_before,
                      "hwm_mib": memory_mib(process.pid, "VmHWM"), "machine_busy_s": machine_busy_s() - busy0}
            client_cpu_s = cpu_s("self") - client_cpu0
        report(machines, wall_s, server, client_cpu_s, log)


if __name__ == "__main__":
    main()
