"""The runner's parts without a server: retry policy, adaptive limit, prices, shards, Azure profiles, loop lag, journal.

Everything here is plain function calls (or one event loop); the runs against real servers are in
`test_runner_modes.py`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import tracemalloc
from pathlib import Path

import pytest
from openai.types.beta.realtime import ResponseDoneEvent as BetaResponseDoneEvent
from openai.types.realtime import ResponseDoneEvent

from s2s_eval import pricing
from s2s_eval.datasets import Sample
from s2s_eval.errors import UserError
from s2s_eval.log import Journal, read_records
from s2s_eval.runners.errors import TurnError
from s2s_eval.runners.looplag import LoopLagMonitor
from s2s_eval.runners.profile import auth_headers, endpoint, load_profile
from s2s_eval.runners.retry import AdaptiveLimiter, RetryPolicy
from s2s_eval.runners.run import shard
from tests.conftest import TIMING_SCALE
from tests.test_cli import assert_one_clear_line, cli

TRANSIENT = TurnError("disconnect", "connection closed by the server (1006)")
RATE_LIMITED = TurnError("rate_limited", "rate_limit_exceeded: slow down")
IDS = [f"navigate_{i}" for i in range(200)]

# -- retry policy -----------------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_equal_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=8.0, seed=7)
    means = []
    for attempt in range(1, 9):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        waits = [policy.backoff_s(i, attempt, TRANSIENT) for i in IDS]
        # Equal jitter: half the ceiling fixed, half random; the spread covers that whole half.
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, min(waits), max(waits))
        assert min(waits) < ceiling * 0.55 and max(waits) > ceiling * 0.95
        assert len(set(waits)) == len(waits)  # jittered: no two samples wait the same
        means.append(statistics.mean(waits))
    assert means[:5] == sorted(means[:5]) and means[4] > 1.8 * means[3]  # doubles until the cap...
    assert means[4] == pytest.approx(means[7], rel=0.1)  # ...then stays there (attempts 5 to 8: cap 8 s)


def test_backoff_is_deterministic_for_a_seed_and_differs_between_seeds() -> None:
    first = [RetryPolicy(seed=1).backoff_s(i, 3, TRANSIENT) for i in IDS]
    again = [RetryPolicy(seed=1).backoff_s(i, 3, TRANSIENT) for i in IDS]
    other = [RetryPolicy(seed=2).backoff_s(i, 3, TRANSIENT) for i in IDS]
    assert first == again
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 190
    # The stream is per (seed, sample, attempt): a sample's wait does not depend on which others were retried.
    assert RetryPolicy(seed=1).backoff_s(IDS[5], 3, TRANSIENT) == first[5]


def test_a_rate_limit_hint_replaces_the_exponential_wait() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=30.0)
    hinted = TurnError("rate_limited", "rate_limit_exceeded: Please try again in 4s.", retry_after_s=4.0)
    for attempt in (1, 2, 6):  # exponential would be at most 0.5 s, 1 s, 16 s
        waits = [policy.backoff_s(i, attempt, hinted) for i in IDS]
        assert all(4.0 <= w <= 4.8 for w in waits)  # never before the reset; a little past it to spread the herd
        assert len(set(waits)) > 190
    # Without a hint a rate limit backs off exponentially like any retryable failure.
    assert all(0.25 <= policy.backoff_s(i, 1, RATE_LIMITED) <= 0.5 for i in IDS)


@pytest.mark.parametrize("kind", ["auth", "invalid_request", "internal", "a_kind_nobody_classified"])
def test_fatal_failures_are_never_retried(kind: str) -> None:
    error = TurnError(kind, "no")
    assert error.error_class == "fatal"
    assert not any(RetryPolicy(max_attempts=6).should_retry(error, attempt) for attempt in range(1, 7))


@pytest.mark.parametrize("kind", ["disconnect", "server_error", "timeout", "protocol", "connect", "session_expired",
                                  "rate_limited"])
def test_retryable_failures_are_retried_until_the_attempt_cap(kind: str) -> None:
    error = TurnError(kind, "try again")
    policy = RetryPolicy(max_attempts=4)
    assert [policy.should_retry(error, attempt) for attempt in range(1, 6)] == [True, True, True, False, False]


# -- adaptive concurrency ---------------------------------------------------------------------------------------


def test_the_limit_halves_on_rate_limits_and_never_falls_below_one() -> None:
    limiter = AdaptiveLimiter(8)
    seen = []
    for _ in range(5):
        limiter.rate_limited(None)
        seen.append(limiter.limit)
    assert seen == [4, 2, 1, 1, 1] and limiter.lowest == 1 and limiter.max_limit == 8
    odd = AdaptiveLimiter(7)
    odd.rate_limited(None)
    assert odd.limit == 3


def test_the_limit_grows_back_by_one_per_window_of_successes_up_to_the_configured_limit() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.rate_limited(None)
    limiter.rate_limited(None)  # 2
    successes_per_step = []
    while limiter.limit < 8:
        before, count = limiter.limit, 0
        while limiter.limit == before:
            limiter.succeeded()
            count += 1
        assert limiter.limit == before + 1  # additive: one step at a time
        successes_per_step.append(count)
    assert successes_per_step == [2, 3, 4, 5, 6, 7]  # a window is as many successes as the current limit
    for _ in range(50):
        limiter.succeeded()
    assert limiter.limit == 8 and limiter.lowest == 2


def test_a_rate_limit_restarts_the_window_of_successes() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.rate_limited(None)  # 4
    for _ in range(3):
        limiter.succeeded()
    limiter.rate_limited(None)  # 2: the three successes at 4 no longer count
    limiter.succeeded()
    assert limiter.limit == 2
    limiter.succeeded()
    assert limiter.limit == 3


async def test_a_grown_limit_lets_a_waiter_in_at_once() -> None:
    """After a cut to 1, one holder and one waiter: growing the limit back to 2 admits the waiter without waiting
    for the holder to leave."""
    limiter = AdaptiveLimiter(2)
    limiter.rate_limited(None)  # 1
    release, entered = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            await release.wait()

    async def waiter() -> None:
        async with limiter.slot():
            entered.set()

    tasks = [asyncio.create_task(holder())]
    await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(waiter()))
    await asyncio.sleep(0.01)
    assert not entered.is_set() and limiter.active == 1
    limiter.succeeded()  # a window of one success at limit 1: the limit grows to 2
    assert limiter.limit == 2
    await asyncio.wait_for(entered.wait(), 1.0 * TIMING_SCALE)
    release.set()
    await asyncio.gather(*tasks)


async def test_slots_never_exceed_the_current_limit() -> None:
    limiter = AdaptiveLimiter(4)
    state = {"active": 0, "peak": 0}

    async def hold() -> None:
        async with limiter.slot():
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            await asyncio.sleep(0.005)
            state["active"] -= 1

    await asyncio.gather(*(hold() for _ in range(24)))
    assert state["peak"] == 4 and limiter.active == 0
    limiter.rate_limited(None)
    state["peak"] = 0
    await asyncio.gather(*(hold() for _ in range(24)))
    assert state["peak"] == 2 and limiter.active == 0


async def test_a_rate_limit_hint_pauses_new_sessions_until_it_has_passed() -> None:
    limiter = AdaptiveLimiter(4)
    limiter.rate_limited(0.2)
    resume_at = limiter.paused_until
    assert resume_at > time.monotonic()
    async with limiter.slot():
        granted = time.monotonic()
    assert granted >= resume_at  # causal, not a performance bound: no slot before the server's reset


async def test_a_slot_waiting_for_the_pause_can_be_cancelled() -> None:
    limiter = AdaptiveLimiter(2)
    limiter.rate_limited(30)

    async def take() -> None:
        async with limiter.slot():
            pass

    task = asyncio.create_task(take())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.active == 0


# -- prices -----------------------------------------------------------------------------------------------------

# The `response.done` of the protocol brief §2.4 (the usage of OpenAI's cost guide), validated by the SDK's type.
RESPONSE_DONE = {
    "type": "response.done", "event_id": "event_60",
    "response": {
        "object": "realtime.response", "id": "resp_42", "status": "completed", "status_details": None,
        "conversation_id": "conv_1", "output_modalities": ["audio"], "max_output_tokens": "inf",
        "output": [{"id": "item_a7", "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_audio", "transcript": "It's sunny and 21 degrees."}]}],
        "usage": {"total_tokens": 253, "input_tokens": 132, "output_tokens": 121,
                  "input_token_details": {"text_tokens": 119, "audio_tokens": 13, "image_tokens": 0,
                                          "cached_tokens": 64,
                                          "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0,
                                                                    "image_tokens": 0}},
                  "output_token_details": {"text_tokens": 30, "audio_tokens": 91}},
        "metadata": None}}


def usage(**fields: dict[str, int]) -> dict:
    """A GA usage object validated by the SDK, dumped as it reaches the runner (absent fields as null)."""
    event = ResponseDoneEvent.model_validate({**RESPONSE_DONE, "response": {**RESPONSE_DONE["response"],
                                                                            "usage": fields}})
    assert event.response.usage is not None
    return event.response.usage.model_dump()


def test_the_cost_guide_example_costs_what_the_issue_figures_say() -> None:
    event = ResponseDoneEvent.model_validate(RESPONSE_DONE)
    price = pricing.price_for("gpt-realtime")
    cost = pricing.cost_usd(event.response.usage.model_dump(), price)
    # uncached text 55 × $4, cached text 64 × $0.40, audio in 13 × $32, text out 30 × $16, audio out 91 × $64
    assert cost == pytest.approx((55 * 4 + 64 * 0.40 + 13 * 32 + 30 * 16 + 91 * 64) / 1e6)
    assert cost == pytest.approx(0.0069656)


@pytest.mark.parametrize(("fields", "usd"), [
    ({"input_token_details": {"audio_tokens": 1_000_000}}, 32.0),
    ({"input_token_details": {"audio_tokens": 1_000_000, "cached_tokens": 1_000_000,
                              "cached_tokens_details": {"audio_tokens": 1_000_000}}}, 0.40),
    ({"output_token_details": {"audio_tokens": 1_000_000}}, 64.0),
    ({"input_token_details": {"text_tokens": 1_000_000}}, 4.0),
    ({"input_token_details": {"text_tokens": 1_000_000, "cached_tokens": 1_000_000,
                              "cached_tokens_details": {"text_tokens": 1_000_000}}}, 0.40),
    ({"output_token_details": {"text_tokens": 1_000_000}}, 16.0),
    # Cached tokens are a subset of the input: 250k of 1M audio tokens cached.
    ({"input_token_details": {"audio_tokens": 1_000_000, "cached_tokens": 250_000,
                              "cached_tokens_details": {"audio_tokens": 250_000}}}, 0.75 * 32 + 0.25 * 0.40),
])
def test_each_gpt_realtime_rate_per_million_tokens(fields: dict, usd: float) -> None:
    assert pricing.cost_usd(usage(**fields), pricing.price_for("gpt-realtime")) == pytest.approx(usd)


def test_beta_usage_with_only_a_cached_total_counts_it_as_text_and_never_more_than_the_text() -> None:
    beta = BetaResponseDoneEvent.model_validate({"type": "response.done", "event_id": "e", "response": {
        "id": "r", "object": "realtime.response", "status": "completed", "output": [],
        "usage": {"total_tokens": 200, "input_tokens": 150, "output_tokens": 50,
                  "input_token_details": {"text_tokens": 100, "audio_tokens": 50, "cached_tokens": 120},
                  "output_token_details": {"text_tokens": 10, "audio_tokens": 40}}}})
    cost = pricing.cost_usd(beta.response.usage.model_dump(), pricing.price_for("gpt-realtime"))
    assert cost == pytest.approx((100 * 0.40 + 50 * 32 + 10 * 16 + 40 * 64) / 1e6)


def test_nulls_and_missing_usage_cost_nothing() -> None:
    price = pricing.price_for("gpt-realtime")
    assert pricing.cost_usd(None, price) == 0.0
    assert pricing.cost_usd(usage(), price) == 0.0  # every field null, as some servers send


def test_dated_snapshots_resolve_to_their_model_and_unknown_models_are_unpriced() -> None:
    assert pricing.price_for("gpt-realtime-2025-08-28") is pricing.PRICES["gpt-realtime"]
    assert pricing.price_for("gpt-realtime-mini-2025-10-06") is pricing.PRICES["gpt-realtime-mini"]
    assert pricing.price_for("gpt-4o-realtime-preview-2024-12-17") is pricing.PRICES["gpt-4o-realtime-preview"]
    assert pricing.price_for("gpt-realtime-2") is pricing.PRICES["gpt-realtime-2"]  # a model, not a snapshot
    assert pricing.price_for("gpt-realtime-2").text_out == 24.0
    for unknown in ("s2s-eval-reference", "my-llama-omni", "gpt-realtime-2025", "", None):
        assert pricing.price_for(unknown) is None
    # Profiles: a model id is priced; an unknown server, or `pricing: none`, is unpriced (cost null, not 0).
    assert load_profile("gpt-realtime").price() is pricing.PRICES["gpt-realtime"]
    assert load_profile("azure-gpt-realtime").price() is pricing.PRICES["gpt-realtime"]  # deployment ≠ model id
    assert load_profile("local").price() is None
    assert load_profile("openai-compatible").price() is None
    custom = load_profile("openai-compatible").model_copy(update={"pricing": "auto", "model": "my-llama-omni"})
    assert custom.price() is None


def test_usage_of_several_responses_adds_up_field_by_field() -> None:
    total: dict = {}
    first = usage(input_tokens=10, input_token_details={"audio_tokens": 10, "cached_tokens_details": {
        "audio_tokens": 4}})
    pricing.add_usage(total, first)
    pricing.add_usage(total, usage(input_tokens=5, input_token_details={"audio_tokens": 5}))
    assert total["input_tokens"] == 15 and total["input_token_details"]["audio_tokens"] == 15
    assert total["input_token_details"]["cached_tokens_details"]["audio_tokens"] == 4
    price = pricing.price_for("gpt-realtime")
    assert pricing.cost_usd(total, price) == pytest.approx(
        pricing.cost_usd(first, price) + (5 * 32) / 1e6)


# -- shards -----------------------------------------------------------------------------------------------------


def samples(n: int) -> list[Sample]:
    return [Sample(sample_id=f"s{i}", eval="e", category="c", prompt_text="q", target="t") for i in range(n)]


@pytest.mark.parametrize(("n", "shards"), [(10, 3), (8, 4), (2, 5), (1000, 7), (0, 2)])
def test_shards_are_disjoint_cover_everything_and_are_even(n: int, shards: int) -> None:
    items = samples(n)
    parts = [shard(items, k, shards) for k in range(1, shards + 1)]
    ids = [[s.sample_id for s in part] for part in parts]
    flat = [i for part in ids for i in part]
    assert sorted(flat) == sorted(s.sample_id for s in items) and len(flat) == len(set(flat))
    assert max(map(len, ids)) - min(map(len, ids)) <= 1
    again = [[s.sample_id for s in shard(samples(n), k, shards)] for k in range(1, shards + 1)]
    assert again == ids  # the same split every time: shards can run on different machines


def test_a_shard_outside_one_to_n_is_refused() -> None:
    for k, n in ((0, 3), (4, 3)):
        with pytest.raises(UserError, match="between 1 and N"):
            shard(samples(5), k, n)
    done = cli("run", "--model", "local", "--eval", "big_bench_audio", "--shard", "3/2")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --shard: K must be between 1 and N" in done.stderr.strip().splitlines()[-1]


# -- Azure ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["https://myres.openai.azure.com", "https://myres.openai.azure.com/",
                                   "https://myres.openai.azure.com/openai/v1", "myres.openai.azure.com"])
def test_azure_url_is_the_ga_v1_path_with_the_deployment_as_model(value: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", value)
    profile = load_profile("azure-gpt-realtime").model_copy(update={"model": "my-deployment"})
    # The protocol brief §1.3: wss://<resource>.openai.azure.com/openai/v1/realtime?model=<deployment-name>
    assert endpoint(profile, None) == "wss://myres.openai.azure.com/openai/v1/realtime?model=my-deployment"


def test_azure_sends_its_key_as_the_api_key_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-secret")
    profile = load_profile("azure-gpt-realtime")
    assert auth_headers(profile, "wss://myres.openai.azure.com/openai/v1/realtime") == {"api-key": "azure-secret"}
    openai = load_profile("gpt-realtime")
    assert auth_headers(openai, "wss://api.openai.com/v1/realtime") == {"Authorization": "Bearer openai-secret"}


def test_azure_without_an_endpoint_or_a_key_stops_with_one_line_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    run = ("run", "--model", "azure-gpt-realtime", "--eval", "big_bench_audio", "--limit", "1")
    assert_one_clear_line(cli(*run), "AZURE_OPENAI_ENDPOINT", "https://<resource>.openai.azure.com")
    done = cli(*run, env={"AZURE_OPENAI_ENDPOINT": "https://myres.openai.azure.com"})
    assert_one_clear_line(done, "AZURE_OPENAI_API_KEY")
    assert "OPENAI_API_KEY is not set" not in done.stderr.replace("AZURE_OPENAI_API_KEY", "")


# -- loop lag ---------------------------------------------------------------------------------------------------


async def test_loop_lag_shows_a_callback_that_blocks_the_loop() -> None:
    monitor = LoopLagMonitor(interval_s=0.005)
    async with monitor.running():
        await asyncio.sleep(0.1)
        time.sleep(0.15)  # a slow callback: nothing else runs meanwhile
        await asyncio.sleep(0.1)
    summary = monitor.summary()
    assert summary["interval_ms"] == 5.0 and summary["n"] >= 3
    assert summary["max"] >= 140  # the monitor's wake-up was at least that late: causal, not a speed bound
    assert summary["p50"] <= summary["p99"] <= summary["max"]


# -- journal ----------------------------------------------------------------------------------------------------


def test_reading_a_journal_streams_it(tmp_path: Path) -> None:
    """A summary of a big journal must not hold the journal in memory (the memory-flat promise of issue 4)."""
    journal = Journal(tmp_path)
    journal.open()
    record = {"sample_id": "", "eval": "e", "model": "m", "status": "ok", "error": None, "correct": True,
              "score": 1.0, "response_text": "x" * 8000, "latency": {"ttfa_ms": 1.0}, "usage": {}, "attempts": 1}
    for i in range(2000):
        journal.append({**record, "sample_id": f"s{i}"})
    journal.close()
    size = (tmp_path / "samples.jsonl").stat().st_size
    assert size > 16_000_000
    journal.write_summary()  # first, so the modules it imports on first use (scipy) are not counted as the journal
    tracemalloc.start()
    try:
        summary = journal.write_summary()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["counts"]["total"] == 2000
    assert peak < size / 4, f"summarising a {size} B journal peaked at {peak} B"


def test_a_torn_last_line_is_skipped_but_a_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    def line(sample_id: str) -> str:
        return json.dumps({"sample_id": sample_id, "eval": "e", "model": "m", "status": "ok"})

    path = tmp_path / "samples.jsonl"
    path.write_text(f'{line("a")}\n{line("b")}\n{{"sample_id": "c", "ev')
    assert [r["sample_id"] for r in read_records(tmp_path)] == ["a", "b"]
    path.write_text(f'{line("a")}\n{{"sample_id": "b", "ev\n{line("c")}\n')
    with pytest.raises(UserError, match=r"samples.jsonl:2: not a JSON line"):
        list(read_records(tmp_path))
    path.write_text(line("a") + "\n\n")
    assert [r["sample_id"] for r in read_records(tmp_path)] == ["a"]
    path.write_text(json.dumps({"sample_id": "a"}) + "\n")  # JSON, but not a sample record: one line naming why
    with pytest.raises(UserError, match=r"samples.jsonl:1: not a sample record .*\(eval: Field required\)"):
        list(read_records(tmp_path))


def test_rate_limits_of_one_generation_of_sessions_halve_the_limit_once() -> None:
    limiter = AdaptiveLimiter(8)
    started_before_the_cut = limiter.generation
    limiter.rate_limited(None, started_before_the_cut)
    assert limiter.limit == 4
    for _ in range(5):  # the rest of the burst that was already in flight at 8
        limiter.rate_limited(None, started_before_the_cut)
    assert limiter.limit == 4
    limiter.rate_limited(None, limiter.generation)  # a session started under the new limit: cut again
    assert limiter.limit == 2 and limiter.lowest == 2
