"""Issue 4's reliability acceptance: faults of every kind, `kill -9` and resume, and an API key that leaves no trace.

The runs go against real `s2s-eval serve` processes on free loopback ports (the `local` profile starts its own).
The server's faults are a pure function of (seed, sample id, attempt) (`server/faults.py`), so a test computes
from `FaultPlan` what every sample must have gone through and compares that with its journal record, instead of
trusting the runner's own account.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from s2s_eval.datasets import Sample, load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.log import read_records
from s2s_eval.runners.errors import ERROR_CLASSES
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.server.faults import FAULT_KINDS, FaultConfig, FaultPlan
from tests.conftest import ROOT, TIMING_SCALE
from tests.servers import serve_process, write_script
from tests.test_runner import WRONG, spoken_answer

FAULT_RATE = 0.2
TURN_TIMEOUT_S = 3.0 * TIMING_SCALE  # what resolves a `stall`; far above a healthy session's time here (< 0.5 s)
MAX_ATTEMPTS = 6
RUN_DEADLINE_S = 120 * TIMING_SCALE  # a hang fails the test instead of blocking CI

# What the runner must call each server fault (the kinds of `runners/errors.py`).
RUNNER_KIND = {"disconnect": "disconnect", "rate_limit": "rate_limited", "server_error": "server_error",
               "malformed": "protocol", "stall": "timeout", "invalid_request": "invalid_request"}


def test_every_fault_kind_has_a_runner_kind() -> None:
    assert set(RUNNER_KIND) == set(FAULT_KINDS)
    assert {k: ERROR_CLASSES[v] for k, v in RUNNER_KIND.items()} == {
        "disconnect": "transient", "rate_limit": "rate_limited", "server_error": "transient",
        "malformed": "transient", "stall": "transient", "invalid_request": "fatal"}


def expected_attempt_errors(plan: FaultPlan, sample_id: str) -> list[str]:
    """The runner kinds a sample's failed attempts must show: draws until a clean one, a fatal one, or the cap."""
    kinds: list[str] = []
    for _ in range(MAX_ATTEMPTS):
        fault = plan.draw(sample_id).fault
        if fault is None:
            break
        kinds.append(RUNNER_KIND[fault])
        if ERROR_CLASSES[kinds[-1]] == "fatal":
            break
    return kinds


def bench_samples(data_dir: Path, n: int) -> list[Sample]:
    samples, _ = load_samples(load_eval("big_bench_audio"), data_dir)
    return select(samples, None, n)


def answer_script(path: Path, samples: list[Sample]) -> Path:
    """Right answers for even indices, wrong for odd ones, so accuracy and its breakdown mean something."""
    lines = []
    for sample in samples:
        target = sample.target
        right = int(sample.sample_id.rsplit("_", 1)[1]) % 2 == 0
        answer = target if right else WRONG.get(target, str(int(target) + 1) if target.isdigit() else "no")
        lines.append({"sample_id": sample.sample_id, "responses": [{"text": spoken_answer(sample.category, answer)}]})
    return write_script(path, lines)


def faulty_server_args(script: Path, seed: int) -> list[str]:
    return ["--engine", "scripted", "--script", str(script), "--faults", ",".join(FAULT_KINDS),
            "--fault-rate", str(FAULT_RATE), "--seed", str(seed)]


def server_faults(log: Path) -> Counter[str]:
    """The faults a server log says it injected, by kind."""
    return Counter(re.findall(r"\bfault (\w+): session ", log.read_text(encoding="utf-8")))


def cli_env(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return {**environment, **extra}


# -- 1. 200 samples, 20 % faults of every kind ---------------------------------------------------------------------

N_FAULTY = 200
FAULT_SEED = 8


async def test_a_run_through_every_fault_kind_ends_with_one_true_record_per_sample(data_dir: Path,
                                                                                   tmp_path: Path) -> None:
    samples = bench_samples(data_dir, N_FAULTY)
    script = answer_script(tmp_path / "script.jsonl", samples)
    log = tmp_path / "server.log"
    # `serve --faults` with every kind, through the CLI: it must accept the fatal `invalid_request` too.
    with serve_process(*faulty_server_args(script, FAULT_SEED), log=log) as url:
        options = RunOptions(model="openai-compatible", eval="big_bench_audio", limit=N_FAULTY, url=url,
                             out=tmp_path / "run", data_dir=data_dir, progress=False, save_audio=False,
                             concurrency=8, turn_timeout_s=TURN_TIMEOUT_S, max_attempts=MAX_ATTEMPTS, seed=5)
        async with asyncio.timeout(RUN_DEADLINE_S):
            run_dir, summary = await execute(options)

    records = list(read_records(run_dir))
    assert len(records) == N_FAULTY
    assert sorted(r["sample_id"] for r in records) == sorted(s.sample_id for s in samples)  # each exactly once

    plan = FaultPlan(FaultConfig(kinds=FAULT_KINDS, rate=FAULT_RATE, seed=FAULT_SEED))
    for r in records:
        expected = expected_attempt_errors(plan, r["sample_id"])
        kinds = [e["kind"] for e in r["attempt_errors"]]
        assert kinds == expected, (r["sample_id"], r["attempt_errors"])
        assert all(e["class"] == ERROR_CLASSES[e["kind"]] for e in r["attempt_errors"])
        if kinds and ERROR_CLASSES[kinds[-1]] == "fatal":  # recorded with its kind at once, never retried
            assert r["status"] == "error" and r["error"]["kind"] == kinds[-1] and r["error"]["class"] == "fatal"
            assert r["attempts"] == len(kinds) and r["correct"] is None
        else:  # every transient or rate-limited failure was retried to success
            assert r["status"] == "ok" and r["error"] is None, (r["sample_id"], r["error"])
            assert r["attempts"] == len(kinds) + 1
            assert r["correct"] is (int(r["sample_id"].rsplit("_", 1)[1]) % 2 == 0), (r["sample_id"], r["grade"])

    seen = Counter(e["kind"] for r in records for e in r["attempt_errors"])
    assert set(seen) == set(RUNNER_KIND.values()), seen  # the seed exercises every kind
    # The server injected exactly the faults the runner recorded: none lost, none invented.
    assert server_faults(log) == Counter({k: seen[RUNNER_KIND[k]] for k in FAULT_KINDS})
    retried_ok = [r for r in records if r["status"] == "ok" and r["attempt_errors"]]
    fatal = [r for r in records if r["status"] == "error"]
    assert retried_ok and fatal and len(fatal) == seen["invalid_request"]

    # The summary agrees with the records.
    assert summary["complete"] is True
    assert summary["counts"] == {"total": N_FAULTY, "ok": N_FAULTY - len(fatal), "error": len(fatal),
                                 "error_kinds": {"invalid_request": len(fatal)},
                                 "error_classes": {"fatal": len(fatal)}}
    assert summary["attempts"] == {"total": sum(r["attempts"] for r in records),
                                   "samples_retried": sum(r["attempts"] > 1 for r in records)}
    assert summary["graded"] == N_FAULTY - len(fatal)
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    # Rate limits lowered the concurrency on the way (and successes may have raised it again).
    concurrency = summary["measurement"]["concurrency"]
    assert concurrency["configured"] == 8 and concurrency["lowest"] < 8
    print(f"\n{N_FAULTY} samples: faults seen {dict(seen)}, {summary['attempts']}, "
          f"lowest concurrency {concurrency['lowest']}")


# -- 2. kill -9 twice, then resume -----------------------------------------------------------------------------------

N_KILLED = 48
KILL_SEED = 3
KILL_AT = (10, 26)  # journaled records at which the first and the second process are killed


def run_command(url: str, out: Path, data_dir: Path, *, resume: bool) -> list[str]:
    return [sys.executable, "-m", "s2s_eval", "run", "--model", "openai-compatible", "--eval", "big_bench_audio",
            "--limit", str(N_KILLED), "--data-dir", str(data_dir), "--url", url, "--out", str(out),
            "--concurrency", "4", "--turn-timeout", str(TURN_TIMEOUT_S), "--max-attempts", str(MAX_ATTEMPTS),
            "--seed", "9", *(["--resume"] if resume else [])]


def journaled(out: Path) -> int:
    """Complete (newline-terminated) journal lines so far."""
    path = out / "samples.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def run_until(command: list[str], out: Path, kill_at: int | None, log: Path) -> subprocess.Popen[bytes]:
    """Run the CLI; SIGKILL it as soon as `kill_at` records are journaled (None: let it finish)."""
    with log.open("ab") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=cli_env(), stdout=stderr, stderr=stderr)
    deadline = time.monotonic() + RUN_DEADLINE_S
    while process.poll() is None and time.monotonic() < deadline:
        if kill_at is not None and journaled(out) >= kill_at:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    try:
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the run hung; its output:\n{log.read_text(errors='replace')[-2000:]}") from None
    return process


def deterministic(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without what depends on the clock (latency, timestamps, loop lag, adaptive concurrency)."""
    return {k: v for k, v in summary.items() if k not in ("latency", "updated_at", "measurement", "run_id")}


def outcome(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["status"], (record["error"] or {}).get("kind"), [e["kind"] for e in record["attempt_errors"]],
            record["attempts"], record["correct"], record["response_text"], record["usage"])


def test_a_run_killed_twice_then_resumed_matches_an_uninterrupted_one(data_dir: Path, tmp_path: Path) -> None:
    samples = bench_samples(data_dir, N_KILLED)
    script = answer_script(tmp_path / "script.jsonl", samples)
    out, log = tmp_path / "killed", tmp_path / "cli.log"
    torn_id = samples[-1].sample_id

    # Each process gets a fresh server with the same seed, as the `local` profile would: a sample cut off by the
    # kill then draws its faults again from its first attempt, exactly as in the uninterrupted run.
    for phase, kill_at in enumerate([*KILL_AT, None]):
        with serve_process(*faulty_server_args(script, KILL_SEED), log=tmp_path / f"server{phase}.log") as url:
            process = run_until(run_command(url, out, data_dir, resume=phase > 0), out, kill_at, log)
        if kill_at is None:
            assert process.returncode == 0, log.read_text(errors="replace")[-2000:]
            break
        assert process.returncode == -signal.SIGKILL, log.read_text(errors="replace")[-2000:]
        assert kill_at <= journaled(out) < N_KILLED and not (out / "summary.json").exists()  # killed mid-run
        if phase == 0:
            # A kill can land mid-write: leave a torn line of a sample not yet journaled for the resume to meet.
            assert torn_id not in {r["sample_id"] for r in read_records(out)}
            with (out / "samples.jsonl").open("ab") as journal:
                journal.write(f'{{"sample_id": "{torn_id}", "eval": "big_bench_audio", "status": "o'.encode())

    lines = (out / "samples.jsonl").read_bytes().splitlines()
    killed = [json.loads(line) for line in lines]  # every line parses: the torn one is gone
    assert len(killed) == N_KILLED
    assert sorted(r["sample_id"] for r in killed) == sorted(s.sample_id for s in samples)
    assert len(json.loads((out / "spec.json").read_text())["resumed_at"]) == 2

    whole = tmp_path / "uninterrupted"
    with serve_process(*faulty_server_args(script, KILL_SEED), log=tmp_path / "server-whole.log") as url:
        process = run_until(run_command(url, whole, data_dir, resume=False), whole, None, log)
    assert process.returncode == 0, log.read_text(errors="replace")[-2000:]

    reference = {r["sample_id"]: r for r in read_records(whole)}
    assert {r["sample_id"]: outcome(r) for r in killed} == {i: outcome(r) for i, r in reference.items()}
    summary = json.loads((out / "summary.json").read_text())
    reference_summary = json.loads((whole / "summary.json").read_text())
    assert summary["complete"] is True and summary["counts"]["total"] == N_KILLED
    assert deterministic(summary) == deterministic(reference_summary)
    assert reference_summary["attempts"]["samples_retried"] > 0  # the comparison covers retried samples
    print(f"\nkilled at {KILL_AT}: counts {summary['counts']}, attempts {summary['attempts']}")



async def test_a_record_whose_newline_was_not_written_is_run_again(data_dir: Path, tmp_path: Path) -> None:
    """A kill can land between a record's JSON and its newline: that line must not count as done and then be cut."""
    samples = bench_samples(data_dir, 4)
    script = answer_script(tmp_path / "script.jsonl", samples)
    out = tmp_path / "run"
    with serve_process("--engine", "scripted", "--script", str(script)) as url:
        options = RunOptions(model="openai-compatible", eval="big_bench_audio", limit=4, url=url, out=out,
                             data_dir=data_dir, progress=False, save_audio=False)
        await execute(options)
        journal = out / "samples.jsonl"
        journal.write_bytes(journal.read_bytes().removesuffix(b"\n"))  # whole JSON, newline not yet written
        await execute(RunOptions(**{**options.__dict__, "resume": True}))
    ids = [json.loads(line)["sample_id"] for line in journal.read_bytes().splitlines()]
    assert sorted(ids) == sorted(s.sample_id for s in samples)

# -- 2b. the `local` profile's own server does not outlive a killed run ----------------------------------------------


def servers_of(pid: int) -> list[int]:
    """`s2s-eval serve` processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended meanwhile
        if parent == pid and b"serve" in command:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the server process")
def test_a_killed_local_run_leaves_no_server_behind_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    out, log = tmp_path / "run", tmp_path / "cli.log"
    command = [sys.executable, "-m", "s2s_eval", "run", "--model", "local", "--eval", "big_bench_audio", "--limit",
               "24", "--data-dir", str(data_dir), "--out", str(out), "--concurrency", "2"]
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=cli_env(), stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + RUN_DEADLINE_S
        while journaled(out) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        servers = servers_of(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL and journaled(out) < 24, log.read_text(errors="replace")[-2000:]
    assert len(servers) == 1, servers  # the embedded server, started by the run

    gone_by = time.monotonic() + 10 * TIMING_SCALE
    while alive(servers[0]) and time.monotonic() < gone_by:
        time.sleep(0.05)
    if alive(servers[0]):
        os.kill(servers[0], signal.SIGKILL)  # do not leak it from the test either
        raise AssertionError("the embedded server outlived the run that started it")

    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, env=cli_env(), capture_output=True,
                             timeout=RUN_DEADLINE_S)
    assert resumed.returncode == 0, resumed.stderr.decode(errors="replace")[-2000:]
    ids = [r["sample_id"] for r in read_records(out)]
    assert len(ids) == 24 and len(set(ids)) == 24


# -- 3. a canary API key leaves no trace -----------------------------------------------------------------------------


TRACE_CHARS = 10  # a leak of any 10 characters of the key's random part counts (e.g. a "sk-...last10" mask)


def assert_no_trace(canary: str, *roots: Path) -> int:
    """No file under `roots` holds the canary or any part of it, byte for byte; returns how many were read."""
    secret = canary.rsplit("-", 1)[1]
    needles = [canary.encode()] + [secret[i : i + TRACE_CHARS].encode() for i in range(len(secret) - TRACE_CHARS + 1)]
    files = [p for root in roots for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()]
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in needles), f"the API key leaked into {path}"
    return len(files)


def test_an_api_key_reaches_the_server_and_nothing_else(data_dir: Path, tmp_path: Path) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    script = answer_script(tmp_path / "script.jsonl", bench_samples(data_dir, 4))
    env = cli_env(OPENAI_API_KEY=canary)

    def run(url: str, out: Path) -> subprocess.CompletedProcess[bytes]:
        # `gpt-realtime` sends $OPENAI_API_KEY as a bearer token, also to a loopback --url.
        return subprocess.run([sys.executable, "-m", "s2s_eval", "run", "--model", "gpt-realtime", "--eval",
                               "big_bench_audio", "--limit", "4", "--data-dir", str(data_dir), "--url", url,
                               "--out", str(out)], cwd=ROOT, env=env, capture_output=True, timeout=RUN_DEADLINE_S)

    accepted_log, refused_log = tmp_path / "accepting.log", tmp_path / "refusing.log"
    with serve_process("--engine", "scripted", "--script", str(script), "--api-key", canary, log=accepted_log) as url:
        accepted = run(url, tmp_path / "accepted")
    # A server that wants another key: the error path (an auth failure, its message, the report of it).
    with serve_process("--engine", "scripted", "--script", str(script), "--api-key", f"other-{uuid.uuid4().hex}",
                       log=refused_log) as url:
        refused = run(url, tmp_path / "refused")

    # Not vacuous: the server checks keys (the wrong one is refused), and the run that succeeded sent the canary.
    assert accepted.returncode == 0, accepted.stderr.decode(errors="replace")[-2000:]
    assert [r["status"] for r in read_records(tmp_path / "accepted")] == ["ok"] * 4
    refused_records = list(read_records(tmp_path / "refused"))
    assert refused.returncode == 1 and [r["error"]["kind"] for r in refused_records] == ["auth"] * 4
    assert all(r["attempts"] == 1 for r in refused_records)  # fatal: never retried

    report = tmp_path / "report" / "index.html"
    done = subprocess.run([sys.executable, "-m", "s2s_eval", "report", str(tmp_path / "accepted"),
                           str(tmp_path / "refused"), "--out", str(report)], cwd=ROOT, env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 0 and report.stat().st_size > 0, done.stderr.decode(errors="replace")

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name, process in {"accepted": accepted, "refused": refused, "report": done}.items():
        (outputs / f"{name}.out").write_bytes(process.stdout + process.stderr)
    checked = assert_no_trace(canary, tmp_path / "accepted", tmp_path / "refused", accepted_log, refused_log,
                              report.parent, outputs)
    assert checked >= 12  # spec, journal, summary and audio of each run, both logs, the report, the outputs

