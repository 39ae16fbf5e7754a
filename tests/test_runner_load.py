"""The runner under load and in worker processes, against real `s2s-eval serve` processes on loopback.

Load must change only how long things take: a record made among 256 paced sessions, or by `--workers 2`, has the
same fields and the same grade as one made alone. Nothing here asserts a time; the figures come from
`benchmarks/runner_workers.py`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from s2s_eval.log import read_records, read_spec
from s2s_eval.runners.run import EndpointUnreachable, RunOptions, execute
from s2s_eval.runners.scheduler import STAGGER_S, SlotPlan, split
from s2s_eval.runners.workers import WorkerCrashed
from tests.conftest import TIMING_SCALE
from tests.servers import serve_process, write_script

CROWD = 256
ANSWERS = {"formal_fallacies": ("valid", "invalid", "The argument is {}."), "navigate": ("Yes", "No", "{}."),
           "object_counting": ("3", "4", "The answer is {}."), "web_of_lies": ("No", "Yes", "{}.")}
WAIT_S = 120 * TIMING_SCALE  # how long a test waits for a run to reach a point before it gives up (not a bound)


def _data_dir(root: Path, per_category: int) -> Path:
    """Big-Bench-Hard laid out as the adapter reads it, every question the same short sentence: one clip of about a
    second for every sample, so hundreds of sessions take seconds to speak, not minutes."""
    folder = root / "big_bench_hard"
    folder.mkdir(parents=True)
    for category, (target, _, _) in ANSWERS.items():
        rows = [{"input": "Is it so?", "target": target} for _ in range(per_category)]
        (folder / f"{category}.json").write_text(json.dumps({"examples": rows}), encoding="utf-8")
    return root


def _script(path: Path, per_category: int, delay_ms: float | None = None, prompt_ids: tuple[str, ...] = ()) -> Path:
    """Right answers at even indices, wrong ones at odd; `delay_ms` holds back first audio but for `prompt_ids`."""
    lines = []
    for category, (right, wrong, said) in ANSWERS.items():
        for index in range(per_category):
            sample_id = f"{category}_{index}"
            response: dict[str, Any] = {"text": said.format(right if index % 2 == 0 else wrong)}
            if delay_ms is not None and sample_id not in prompt_ids:
                response["first_audio_delay_ms"] = delay_ms
            lines.append({"sample_id": sample_id, "responses": [response]})
    return write_script(path, lines)


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A data directory of 256 short questions and a scripted server that answers them."""
    root = tmp_path_factory.mktemp("crowd")
    data = _data_dir(root / "data", CROWD // 4)
    script = _script(root / "script.jsonl", CROWD // 4)
    with serve_process("--engine", "scripted", "--script", str(script), "--max-sessions", str(CROWD * 2),
                       "--stamp-send-time", log=root / "server.log") as url:
        yield url, data


def options(url: str, out: Path, data_dir: Path, **overrides: Any) -> RunOptions:
    base: dict[str, Any] = dict(model="openai-compatible", eval="big_bench_audio", url=url, out=out,
                                data_dir=data_dir, progress=False, pace="realtime")
    return RunOptions(**{**base, **overrides})


def _set_fields(value: Any, prefix: str = "") -> set[str]:
    """Every path in a record whose value is set (not None), down through objects; lists count as one field."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _set_fields(v, f"{prefix}{k}.")}
    return set() if value is None else {prefix.rstrip(".")}


TIMED = ("ttfa_ms", "ttft_ms", "total_ms", "server_sent_ms", "output_leading_silence_ms", "ttfa_voiced_ms")


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    """What load must not change: status, grade, what was said and called, audio lengths, billed tokens."""
    return {"status": record["status"], "error": record["error"], "correct": record["correct"],
            "score": record["score"], "grade": record["grade"], "response_text": record["response_text"],
            "attempts": record["attempts"], "usage": record["usage"], "target": record["target"],
            "responses": [(r["turn"], r["status"], r["text"], r["function_calls"]) for r in record["responses"]],
            "input_audio_s": record["input_audio_s"], "output_audio_s": record["output_audio_s"],
            "input_clip": record["input_clip"]["sha256"], "events": [name for name, _ in record["timeline"]],
            "fields": _set_fields({k: v for k, v in record.items() if k != "finished_at"})}


def _by_id(run_dir: Path) -> dict[str, dict[str, Any]]:
    records = list(read_records(run_dir))
    ids = [r["sample_id"] for r in records]
    assert len(ids) == len(set(ids)), "a sample journaled twice"
    return {r["sample_id"]: r for r in records}


async def test_a_record_made_among_256_paced_sessions_is_the_record_made_alone(crowd: tuple[str, Path],
                                                                               tmp_path: Path) -> None:
    url, data = crowd
    watched = ["object_counting_0", "web_of_lies_1"]  # one answered right, one wrong
    alone_dir, _ = await execute(options(url, tmp_path / "alone", data, ids=watched, concurrency=1))
    crowd_dir, summary = await execute(options(url, tmp_path / "crowd", data, concurrency=CROWD))

    assert summary["counts"]["total"] == CROWD and summary["counts"]["ok"] == CROWD
    assert read_spec(crowd_dir)["measurement"]["concurrency"] == {"configured": CROWD, "lowest": CROWD}
    alone, among = _by_id(alone_dir), _by_id(crowd_dir)
    assert [alone[i]["correct"] for i in watched] == [True, False]
    for sample_id in watched:
        assert _outcome(among[sample_id]) == _outcome(alone[sample_id]), sample_id
        for name in TIMED[:4]:  # every latency is measured under load as it is alone (its value may differ)
            assert among[sample_id]["latency"][name] is not None, (sample_id, name)
    assert summary["accuracy"] == 0.5  # and every other sample is graded as its script says


async def test_two_workers_make_the_records_one_process_makes(crowd: tuple[str, Path], tmp_path: Path) -> None:
    url, data = crowd
    one_dir, _ = await execute(options(url, tmp_path / "one", data, limit=12, concurrency=4))
    two_dir, summary = await execute(options(url, tmp_path / "two", data, limit=12, concurrency=4, workers=2))

    one, two = _by_id(one_dir), _by_id(two_dir)
    assert sorted(two) == sorted(one) and len(two) == 12 and summary["complete"]
    for sample_id in one:
        assert _outcome(two[sample_id]) == _outcome(one[sample_id]), sample_id
    spec = read_spec(two_dir)
    assert spec["runner"]["workers"] == 2 and read_spec(one_dir)["runner"]["workers"] == 1
    workers = spec["measurement"]["workers"]
    assert workers["count"] == 2 and [w["samples"] for w in workers["by_worker"]] == [6, 6]
    assert [w["concurrency"] for w in workers["by_worker"]] == [2, 2]
    assert spec["measurement"]["loop_lag_ms"]["n"] == sum(w["loop_lag_ms"]["n"] for w in workers["by_worker"]) > 0


def test_workers_hold_every_slot_once_and_start_it_when_one_process_would() -> None:
    one = SlotPlan.whole(256)
    alone = sorted(one.start_delay_s(j) for j in range(one.count))
    assert alone == [STAGGER_S * j / 256 for j in range(256)]
    for n in (2, 3):
        plans = split(256, 1000, n)
        assert len(plans) == n and sum(p.count for p in plans) == 256
        assert sorted(p.start_delay_s(j) for p in plans for j in range(p.count)) == alone
    assert [p.count for p in split(5, 1000, 2)] == [3, 2]
    assert len(split(3, 1000, 8)) == 3 and len(split(256, 2, 4)) == 2  # never an idle worker
    assert split(256, 1000, 1) == [one]


async def test_an_unreachable_endpoint_in_a_worker_is_the_same_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/v1/realtime"
    data = _data_dir(tmp_path / "data", 2)
    with pytest.raises(EndpointUnreachable) as raised:
        await execute(options(url, tmp_path / "run", data, concurrency=2, workers=2, max_attempts=2))
    assert "\n" not in str(raised.value) and f"cannot connect to {url}" in str(raised.value)
    assert list(read_records(tmp_path / "run")) == [] and multiprocessing.active_children() == []


async def _journaled(run_dir: Path, at_least: int) -> None:
    """Wait until the run has journaled `at_least` samples."""
    give_up = time.monotonic() + WAIT_S
    while len(list(read_records(run_dir))) < at_least:
        assert time.monotonic() < give_up, f"{run_dir} journaled fewer than {at_least} samples"
        await asyncio.sleep(0.05)


async def test_a_killed_worker_stops_the_run_in_one_line_and_resume_finishes_it(tmp_path: Path) -> None:
    """SIGKILL one worker mid-run: the run ends with one line naming it, what was journaled stays valid, and
    --resume (here with another worker count, which is not part of the run's identity) runs only what is left."""
    data = _data_dir(tmp_path / "data", 3)
    script = _script(tmp_path / "script.jsonl", 3, delay_ms=1500, prompt_ids=("formal_fallacies_0",))
    out = tmp_path / "run"
    with serve_process("--engine", "scripted", "--script", str(script), log=tmp_path / "server.log") as url:
        run = asyncio.create_task(execute(options(url, out, data, concurrency=2, workers=2)))
        await _journaled(out, 1)
        victim = multiprocessing.active_children()[0]
        os.kill(victim.pid or 0, signal.SIGKILL)
        with pytest.raises(WorkerCrashed) as raised:
            await run
    message = str(raised.value)
    assert "\n" not in message and "SIGKILL" in message and "--resume" in message
    assert multiprocessing.active_children() == []  # the other worker was stopped with it
    journaled = _by_id(out)
    assert 1 <= len(journaled) < 12 and all(r["status"] == "ok" for r in journaled.values())
    stopped = read_spec(out)["measurement"]  # no worker reported: nothing measured is passed off as theirs
    assert stopped["workers"] == {"count": 2, "by_worker": []} and stopped["loop_lag_ms"]["n"] == 0

    prompt = _script(tmp_path / "prompt.jsonl", 3)  # the same answers without the delay (a loopback port may change)
    with serve_process("--engine", "scripted", "--script", str(prompt), log=tmp_path / "server.log") as url:
        _, summary = await execute(options(url, out, data, concurrency=2, workers=3, resume=True))
    assert summary["complete"] and summary["counts"]["total"] == 12
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 12 and len({json.loads(line)["sample_id"] for line in lines}) == 12


def _children(pid: int) -> set[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _gone(pids: set[int]) -> bool:
    give_up = time.monotonic() + WAIT_S
    while time.monotonic() < give_up:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                   for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc (Linux)")
@pytest.mark.parametrize("stop", ["sigkill", "ctrl-c"])
def test_workers_never_outlive_the_command(stop: str, tmp_path: Path) -> None:
    """`s2s-eval run --workers 2` stopped mid-run: killed outright, its workers exit on their own; interrupted with
    Ctrl-C (SIGINT to the whole process group, as a terminal sends it), it says so as it always has, keeps what was
    journaled, and stops its workers."""
    data = _data_dir(tmp_path / "data", 3)
    script = _script(tmp_path / "script.jsonl", 3, delay_ms=3000, prompt_ids=("formal_fallacies_0",))
    out = tmp_path / "run"
    with serve_process("--engine", "scripted", "--script", str(script), log=tmp_path / "server.log") as url:
        command = [sys.executable, "-m", "s2s_eval", "run", "--model", "openai-compatible", "--eval",
                   "big_bench_audio", "--data-dir", str(data), "--url", url, "--out", str(out), "--workers", "2",
                   "--concurrency", "2", "--pace", "realtime"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                   env={**os.environ, "OPENAI_API_KEY": "sk-test"})
        try:
            asyncio.run(_journaled(out, 1))
            workers = _children(process.pid)
            assert len(workers) >= 2  # two workers (and the spawn machinery's resource tracker, if any)
            if stop == "sigkill":
                process.kill()
            else:
                os.killpg(process.pid, signal.SIGINT)
            _, stderr = process.communicate(timeout=WAIT_S)
        finally:
            if process.poll() is None:
                process.kill()
        assert _gone(workers), f"workers outlived the command: {workers}"
        if stop == "ctrl-c":
            assert process.returncode == 130, stderr.decode()
            assert stderr.decode().strip().splitlines()[-1] == (
                "s2s-eval: interrupted; finished samples are journaled (continue with --resume)")
            assert 1 <= len(_by_id(out)) < 12


def test_workers_must_be_a_positive_count() -> None:
    from s2s_eval.cli import build_parser

    run = ["run", "--model", "local", "--eval", "big_bench_audio"]
    assert build_parser().parse_args(run).workers == 1  # one process, as before the option existed
    assert build_parser().parse_args([*run, "--workers", "2"]).workers == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args([*run, "--workers", "0"])
