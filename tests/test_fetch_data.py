"""`s2s-eval fetch-data`: a local copy of the data from each eval's official source, checked by its adapter.

The official sources are served from loopback by a real HTTP server (the evals' URLs rewritten to point at it), so
the download, the layout and the checks are the ones CI uses online to get the data.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture
def upstream(tmp_path: Path, data_dir: Path) -> Iterator[tuple[Path, str]]:
    """A loopback HTTP server holding the upstream files, and the base URL it serves them at."""
    served = tmp_path / "served"
    shutil.copytree(data_dir / "big_bench_hard", served / "bbh")
    shutil.copytree(data_dir / "multichallenge", served / "mc")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def home_with_sources(tmp_path: Path, base_url: str) -> Path:
    """A project folder whose evals are the real ones with their official URLs pointed at `base_url`."""
    home = tmp_path / "home"
    (home / "evals").mkdir(parents=True)
    (home / "runners").mkdir()
    for spec in (ROOT / "evals").glob("*.yaml"):
        text = spec.read_text(encoding="utf-8")
        text = re.sub(r"url: https://raw\.githubusercontent\.com/\S+/bbh/", f"url: {base_url}/bbh/", text)
        text = re.sub(r"url: https://github\.com/\S+/data/", f"url: {base_url}/mc/", text)
        (home / "evals" / spec.name).write_text(text, encoding="utf-8")
    return home


def fetch_data(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "S2S_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "s2s_eval", "fetch-data", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=home)


def test_copies_every_downloadable_source_into_the_adapters_layout(tmp_path: Path, data_dir: Path,
                                                                    upstream: tuple[Path, str]) -> None:
    _, base_url = upstream
    home = home_with_sources(tmp_path, base_url)
    out = tmp_path / "copy"
    done = fetch_data(home, "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    for task in ("formal_fallacies", "navigate", "object_counting", "web_of_lies"):
        assert (out / "big_bench_hard" / f"{task}.json").read_bytes() == \
            (data_dir / "big_bench_hard" / f"{task}.json").read_bytes()
    assert (out / "multichallenge" / "benchmark_questions.jsonl").read_bytes() == \
        (data_dir / "multichallenge" / "benchmark_questions.jsonl").read_bytes()
    assert "big_bench_audio: 4 file(s) checked" in done.stdout and "multichallenge: 1 file(s) checked" in done.stdout
    assert "complexfuncbench: skipped: its source is not a downloadable file" in done.stdout
    assert not list(out.rglob(".*"))  # no temporary file left behind
    # Each file was downloaded once, though four evals read the Big-Bench-Hard files.
    assert done.stdout.count("downloading big_bench_audio") == 4 and "downloading big_bench_audio_" not in done.stdout


def test_a_bad_download_is_one_clear_line(tmp_path: Path, upstream: tuple[Path, str]) -> None:
    served, base_url = upstream
    home = home_with_sources(tmp_path, base_url)
    (served / "bbh" / "navigate.json").unlink()  # the server answers 404
    done = fetch_data(home, "--out", tmp_path / "copy", "--eval", "big_bench_audio")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"cannot download {base_url}/bbh/navigate.json" in lines[0] and "404" in lines[0]
    # An error page or a cut-off file served with 200 is caught by the adapter's checks.
    (served / "bbh" / "navigate.json").write_text("<html>rate limited</html>")
    done = fetch_data(home, "--out", tmp_path / "copy", "--eval", "big_bench_audio")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "navigate.json" in lines[0], done.stderr


def test_ci_fails_on_missing_data_with_one_line(tmp_path: Path) -> None:
    """Under S2S_REQUIRE_DATA=1 (set by .ci/run and ci.yml) a missing copy stops pytest at once: no silent skips."""
    env = {**os.environ, "S2S_DATA_DIR": str(tmp_path / "nowhere"), "S2S_REQUIRE_DATA": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_compare.py"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    output = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 1 and len(output) == 1, output
    assert f"no local copy of the benchmark data at {tmp_path / 'nowhere'}" in output[0]
    assert "S2S_REQUIRE_DATA=1 requires it" in output[0] and "passed" not in output[0]
    for entry in (ROOT / ".ci" / "run", ROOT / ".github" / "workflows" / "ci.yml"):
        assert "S2S_REQUIRE_DATA" in entry.read_text(encoding="utf-8"), entry
