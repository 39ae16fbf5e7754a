"""Start the reference server as a real `s2s-eval serve` process on a free loopback port."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def serve_subprocess(*args: str, log: Path | None = None,
                     env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `s2s-eval serve --port 0 ARGS...` (stderr to `log`); yield its ws:// URL and process; stop it after."""
    command = [sys.executable, "-m", "s2s_eval", "serve", "--port", "0", "--ready-json", *args]
    with contextlib.ExitStack() as stack:
        stderr = stack.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                detail = f": {log.read_text(errors='replace')}" if log else ""
                raise RuntimeError(f"serve did not start (exit {process.wait(10)}){detail}")
            yield json.loads(line)["url"], process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def serve_process(*args: str, log: Path | None = None) -> Iterator[str]:
    """Run `s2s-eval serve --port 0 ARGS...`; yield its ws:// URL; stop it afterwards."""
    with serve_subprocess(*args, log=log) as (url, _):
        yield url


def write_script(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path
