"""Shared fixtures: offline Hugging Face, an isolated audio cache, the shared data, reference servers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("S2S_DATA_DIR") or ROOT.parent / "shared" / "datasets")
# Timing bounds in tests are correctness checks (e.g. "synthesis overlaps the delay"), not performance targets;
# they scale with this factor on slow machines.
TIMING_SCALE = float(os.environ.get("S2S_TIMING_SCALE", "1"))


def missing_tool(reason: str, required_by: str) -> NoReturn:
    """Skip the calling test for a tool this machine lacks, or fail it when `required_by`=1 (as CI sets it)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason}; {required_by}=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tests synthesise into their own cache (inherited by server subprocesses), never the user's."""
    cache = tmp_path_factory.mktemp("s2s-cache")
    os.environ["S2S_CACHE_DIR"] = str(cache)
    os.environ["S2S_HOME"] = str(ROOT)
    return cache


def _data_missing() -> str | None:
    if (SHARED_DATA / "big_bench_hard").is_dir() and (SHARED_DATA / "multichallenge").is_dir():
        return None
    return (f"no local copy of the benchmark data at {SHARED_DATA}: set S2S_DATA_DIR to one "
            f"(`s2s-eval fetch-data --out DIR` makes it)")


def pytest_configure(config: pytest.Config) -> None:
    """With S2S_REQUIRE_DATA=1 (CI), missing data stops the run at once with one line, never a silent skip."""
    missing = _data_missing()
    if missing and os.environ.get("S2S_REQUIRE_DATA") == "1":
        pytest.exit(f"{missing}; S2S_REQUIRE_DATA=1 requires it", returncode=1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The local copy of Big-Bench-Hard and MultiChallenge; the test skips without one (fails under CI's switch)."""
    missing = _data_missing()
    if missing:
        missing_tool(missing, "S2S_REQUIRE_DATA")
    return SHARED_DATA


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
