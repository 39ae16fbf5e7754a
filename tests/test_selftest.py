"""`s2s-eval selftest` and `benchmarks/latency_scale.py`: the plan (session counts, the estimate), the event loop
choice, the table, and both clients measured against a real server process. No figure here is a timing claim:
latency figures come from the benchmark."""

from __future__ import annotations

import pytest

from s2s_eval import loops
from s2s_eval.runners.selftest import Row, TablePrinter, format_row, measure, ratios
from s2s_eval.runners.selftest_plan import (
    CLIP_S,
    MIN_SESSIONS,
    SERVER_START_S,
    SESSION_OVERHEAD_S,
    Level,
    estimate_s,
    plan_levels,
    sessions_for_level,
)
from tests.test_cli import cli

needs_uvloop = pytest.mark.skipif("uvloop" not in loops.available(), reason="uvloop is not installed")


def test_a_level_runs_twice_its_concurrency_within_the_cap_but_never_fewer_than_it() -> None:
    assert sessions_for_level(1, 256) == MIN_SESSIONS  # c=1 no longer runs 256 sessions one after another
    assert sessions_for_level(8, 256) == MIN_SESSIONS
    assert sessions_for_level(32, 256) == 64
    assert sessions_for_level(128, 256) == 256
    assert sessions_for_level(256, 256) == 256  # the cap holds above 2C...
    assert sessions_for_level(256, 100) == 256  # ...but a level always fills its concurrency
    assert sessions_for_level(1, 5) == 5  # a cap below the floor is obeyed


def test_levels_put_the_naive_client_next_to_the_runner_for_each_load() -> None:
    levels = plan_levels([("realtime", 1), ("burst", 128)], 256, ["naive", "s2s-eval"])
    assert [(lv.client, lv.pace, lv.concurrency, lv.sessions) for lv in levels] == [
        ("naive", "realtime", 1, MIN_SESSIONS), ("s2s-eval", "realtime", 1, MIN_SESSIONS),
        ("naive", "burst", 128, 256), ("s2s-eval", "burst", 128, 256)]


def test_the_estimate_counts_rounds_of_sessions_per_level_and_each_loop() -> None:
    paced_one = Level("s2s-eval", "realtime", 1, 20)
    assert estimate_s([paced_one], 300) == pytest.approx(20 * (CLIP_S + 0.3 + SESSION_OVERHEAD_S) + SERVER_START_S)
    burst = Level("s2s-eval", "burst", 128, 256)
    one_loop = estimate_s([paced_one, burst], 300)
    assert one_loop == pytest.approx(estimate_s([paced_one], 300) + 2 * (0.3 + SESSION_OVERHEAD_S))
    assert estimate_s([paced_one, burst], 300, n_loops=2) == pytest.approx(2 * one_loop)


def test_help_states_the_session_rule() -> None:
    done = cli("selftest", "--help")
    assert done.returncode == 0
    assert "per-level cap" in done.stdout and "never fewer than C" in " ".join(done.stdout.split())


def _row(client: str, ttfa: list[float], loop: str = "asyncio") -> Row:
    return Row(loop, client, "realtime", 128, len(ttfa), 0, ttfa, [v / 2 for v in ttfa], [v / 2 for v in ttfa],  # type: ignore[arg-type]
               {"n": 10, "p50": 1.0, "p99": 2.0}, {"runner": 0.5, "server": 0.4, "other": 0.0})


def test_ratios_divide_each_figure_by_the_naive_one() -> None:
    naive, ours = _row("naive", [2.0, 4.0]), _row("s2s-eval", [1.0, 2.0])
    r = ratios(ours, naive)
    assert r["ttfa_p50"] == pytest.approx(0.5) and r["server_p50"] == pytest.approx(0.5)
    assert r["lag_p99"] == pytest.approx(1.0) and r["cpu_runner"] == pytest.approx(1.0)
    assert r["cpu_other"] is None  # no ratio to a zero
    lines: list[str] = []
    printer = TablePrinter(lines.append)
    printer(naive)
    printer(ours)
    printer(_row("s2s-eval", [1.0], loop="uvloop"))  # no naive twin above it: no ratio line
    assert lines[0] == format_row(naive) and "÷ naive" in lines[2] and len(lines) == 4


@pytest.mark.parametrize("loop", ["asyncio", pytest.param("uvloop", marks=needs_uvloop)])
def test_both_clients_measure_against_one_server_process(loop: loops.LoopName) -> None:
    levels = [Level("naive", "burst", 2, 2), Level("s2s-eval", "burst", 2, 2)]
    finished: list[int] = []
    rows = loops.run(measure(levels, 50, on_session=lambda: finished.append(1)), loop)  # the server's loop too
    assert len(finished) == 4
    for row in rows:
        assert (row.ok, row.failed, row.loop) == (2, 0, loop)
        assert len(row.ttfa_error_ms) == len(row.server_late_ms) == len(row.transit_ms) == 2  # the server stamped
        assert row.loop_lag["n"] > 0 and set(row.cpu_cores) == {"runner", "server", "other"}


def test_the_standard_loop_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loops.LOOP_ENV, "asyncio")
    assert loops.preferred() == "asyncio"

    async def which() -> str:
        return loops.current()

    assert loops.run(which()) == "asyncio"


@needs_uvloop
def test_uvloop_is_preferred_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    assert loops.preferred() == "uvloop"

    async def facts() -> dict:
        from s2s_eval.runners.run import host_facts
        return host_facts()

    assert loops.run(facts())["event_loop"] == "uvloop"
    assert loops.run(facts(), "asyncio")["event_loop"] == "asyncio"


def test_selftest_prints_its_estimate_then_a_row_per_level() -> None:
    done = cli("selftest", "--concurrency", "1", "--pace", "burst", "--sessions", "1", "--loop", "asyncio")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("1 session on asyncio, about ") and "min on an idle machine" in lines[0]
    [row] = [line for line in lines if line.lstrip().startswith("asyncio")]
    assert row.split()[:6] == ["asyncio", "burst", "1", "s2s-eval", "1", "0"]
    assert "Traceback" not in done.stderr
