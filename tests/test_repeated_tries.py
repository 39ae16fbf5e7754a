"""`--attempts K` end to end: a model whose every try is a seeded coin flip between two scripted servers, run for
real, then its summary, `compare` and the report checked against figures computed here from the journal alone."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from s2s_eval.log import sample_records
from s2s_eval.reports.compare import compare, format_text
from s2s_eval.reports.html import build_report
from s2s_eval.runners.run import RunOptions, execute
from tests.servers import serve_process, write_script
from tests.test_multichallenge import Relay

K = 5


async def coin_run(tmp_path: Path, data_dir: Path, name: str, seed: int) -> tuple[Path, dict]:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    yes = write_script(folder / "yes.jsonl", [{"sample_id": "*", "responses": [{"text": "The answer is Yes."}]}])
    no = write_script(folder / "no.jsonl", [{"sample_id": "*", "responses": [{"text": "The answer is No."}]}])
    with serve_process("--engine", "scripted", "--script", str(yes), log=folder / "yes.log") as yes_url, \
            serve_process("--engine", "scripted", "--script", str(no), log=folder / "no.log") as no_url:
        # Each session goes to the "yes" or the "no" server by a seeded coin: at concurrency 1 sessions arrive in a
        # fixed order, so the seed fixes every try's answer.
        async with Relay([yes_url, no_url], choose=random.Random(seed).choice) as relay:
            # navigate and web_of_lies are yes/no questions: there a coin flip is right half the time.
            return await execute(RunOptions(
                model="gpt-realtime", eval="big_bench_audio", ids=[f"{c}_{i}" for c in ("navigate", "web_of_lies")
                                                                   for i in range(5)],
                url=relay.url, out=folder / "run", data_dir=data_dir, progress=False, concurrency=1, trials=K,
                max_attempts=1, input_modality="text"))


async def test_attempts_give_stability_and_ordered_pass_rates(tmp_path: Path, data_dir: Path,
                                                             no_api_key: None) -> None:
    run_dir, summary = await coin_run(tmp_path, data_dir, "first", seed=11)
    records = list(sample_records(run_dir))
    assert len(records) == 10
    # By hand from the journal: each item's graded tries, and whether they disagree.
    verdicts = [[t.correct for t in r.trials or [] if t.correct is not None] for r in records]
    assert all(len(v) == K for v in verdicts), verdicts
    flipped = sum(len(set(v)) > 1 for v in verdicts) / len(verdicts)
    pass_1 = sum(sum(v) / len(v) for v in verdicts) / len(verdicts)
    pass_k = sum(any(v) for v in verdicts) / len(verdicts)
    pass_hat_k = sum(all(v) for v in verdicts) / len(verdicts)
    assert 0 < flipped < 1  # the coin did flip some items' verdicts and not others'

    trials = summary["trials"]
    assert trials["k"] == K and trials["items"] == 10
    assert trials["verdict_flips"]["estimate"] == pytest.approx(flipped, abs=1e-6)
    assert trials["pass_at_1"]["estimate"] == pytest.approx(pass_1, abs=1e-6)
    assert trials["pass_at_k"]["estimate"] == pytest.approx(pass_k, abs=1e-6)
    assert trials["pass_hat_k"]["estimate"] == pytest.approx(pass_hat_k, abs=1e-6)
    assert trials["pass_hat_k"]["estimate"] <= trials["pass_at_1"]["estimate"] <= trials["pass_at_k"]["estimate"]
    for key in ("pass_at_1", "pass_at_k", "pass_hat_k", "verdict_flips"):
        figure = trials[key]
        assert figure["low"] <= figure["estimate"] <= figure["high"] and figure["high"] > figure["low"]
    assert trials["pass_at_1"]["method"] == "two-level bootstrap (items, then tries)"
    # summary.json on disk says the same as the summary returned.
    assert json.loads((run_dir / "summary.json").read_text())["trials"] == trials

    # The report shows the four figures; compare sets them side by side.
    html = build_report([run_dir], tmp_path / "index.html", audio=False).read_text(encoding="utf-8")
    assert 'data-figure="verdict_flips"' in html and f"{flipped * 100:.1f}%" in html
    assert f"10 items × {K} tries" in html and "two-level bootstrap" in html
    other, _ = await coin_run(tmp_path, data_dir, "second", seed=12)
    result = compare(run_dir, other)
    tries = next(m for m in result.metrics if m.name == "pass_at_1")
    assert tries.base == pytest.approx(pass_1, abs=1e-6) and not tries.regression
    assert tries.details["base"]["verdict_flips"]["estimate"] == pytest.approx(flipped, abs=1e-6)
    assert "pass@1 over tries" in format_text(result) and "verdict flips" in format_text(result)
