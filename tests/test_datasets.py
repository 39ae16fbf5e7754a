"""The Big Bench Audio adapter: ids, order, selection, and one clear error for bad data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from s2s_eval.datasets import load_samples, select
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import DataError, UserError
from tests.conftest import TIMING_SCALE

CATEGORIES = ["formal_fallacies", "navigate", "object_counting", "web_of_lies"]


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load_eval("big_bench_audio")


def test_ids_follow_the_contract_and_limit_covers_every_category(spec, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    samples, source = load_samples(spec, data_dir)
    assert len(samples) == 1000 and source["n_total"] == 1000 and source["kind"] == "local"
    assert len(source["content_sha256"]) == 64
    assert [s.sample_id for s in samples[:5]] == [f"{c}_0" for c in CATEGORIES] + ["formal_fallacies_1"]
    raw = json.loads((data_dir / "big_bench_hard" / "navigate.json").read_text())["examples"]
    navigate_17 = next(s for s in samples if s.sample_id == "navigate_17")
    assert navigate_17.target == raw[17]["target"] and navigate_17.metadata["question"] == raw[17]["input"]
    assert "\n" not in navigate_17.prompt_text and "Options: Yes, No." in navigate_17.prompt_text
    assert [s.category for s in select(samples, None, 8)] == CATEGORIES * 2


def test_select_by_ids_and_unknown_ids(spec, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    samples, _ = load_samples(spec, data_dir)
    assert [s.sample_id for s in select(samples, ["web_of_lies_249", "navigate_3"], None)] == [
        "web_of_lies_249", "navigate_3"]
    with pytest.raises(UserError, match="unknown sample id.*navigate_250"):
        select(samples, ["navigate_250"], None)


def _data_dir_with(tmp_path: Path, navigate: str) -> Path:
    folder = tmp_path / "big_bench_hard"
    folder.mkdir()
    good = json.dumps({"examples": [{"input": "Q?", "target": "Yes"}]})
    for category in CATEGORIES:
        (folder / f"{category}.json").write_text(navigate if category == "navigate" else good)
    return tmp_path


@pytest.mark.parametrize(("content", "message"), [
    ('{"examples": [{"input": "Q?", "target": "Yes"}, {"input": "Q2?"}]}', "example 1 has no usable 'target'"),
    ('{"examples": [{"input": "", "target": "No"}]}', "example 0 has no usable 'input'"),
    ('{"examples": [', "cannot read"),
])
def test_malformed_rows_are_one_clear_error(spec, tmp_path: Path, content: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message) as raised:
        load_samples(spec, _data_dir_with(tmp_path, content))
    assert "navigate" in str(raised.value) and "\n" not in str(raised.value)


def test_missing_files_name_the_expected_layout(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=r"big_bench_hard/<task>\.json"):
        load_samples(spec, tmp_path)


def test_offline_without_data_dir_fails_fast_with_advice(spec) -> None:  # type: ignore[no-untyped-def]
    """Offline (conftest sets HF_HUB_OFFLINE=1), the download fails at once instead of through ~23 s of retries."""
    started = time.monotonic()
    with pytest.raises(UserError, match="--data-dir") as raised:
        load_samples(spec, None)
    elapsed_s = time.monotonic() - started
    assert "\n" not in str(raised.value)
    assert elapsed_s < 10 * TIMING_SCALE, f"offline failure took {elapsed_s:.1f} s"  # about 1 s here
