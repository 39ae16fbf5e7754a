"""Against the real OpenAI Realtime API: skipped unless OPENAI_API_KEY is set (it costs a few cents)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s2s_eval.log import read_records
from s2s_eval.runners.run import RunOptions, execute

pytestmark = [
    pytest.mark.real_api,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY and the internet"),
]


@pytest.mark.parametrize("profile", ["gpt-realtime", "gpt-realtime-mini"])
async def test_two_samples_against_the_real_api(profile: str, data_dir: Path, tmp_path: Path) -> None:
    run_dir, summary = await execute(RunOptions(model=profile, eval="big_bench_audio", limit=2, data_dir=data_dir,
                                                out=tmp_path / "run", progress=False))
    records = list(read_records(run_dir))
    assert [r["status"] for r in records] == ["ok", "ok"], [r["error"] for r in records]
    for r in records:
        assert r["response_text"] and r["grade"]["reason"] != "empty"
        assert 0 < r["latency"]["ttfa_ms"] <= r["latency"]["total_ms"]
        assert r["usage"]["output_token_details"]["audio_tokens"] > 0
    key = os.environ["OPENAI_API_KEY"].encode()
    assert all(key not in p.read_bytes() for p in run_dir.rglob("*") if p.is_file())
