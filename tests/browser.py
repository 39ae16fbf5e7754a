"""Open local HTML files in real headless Chromium: dump the DOM after load, or take a screenshot.

Chromium is found via `S2S_CHROMIUM` or `chromium` on PATH. Without it, `require_chromium()` skips the test,
unless `S2S_REQUIRE_BROWSER=1` (set in CI), where a missing browser is a failure, not a silent pass.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import missing_tool

TIMING_SCALE = float(os.environ.get("S2S_TIMING_SCALE", "1"))
TIMEOUT_S = 60.0 * TIMING_SCALE

# Headless, isolated and quiet: a throwaway profile, no sync, no component or background network traffic.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def find_chromium() -> str | None:
    """Path of the Chromium binary (`S2S_CHROMIUM`, else `chromium` on PATH), or None."""
    configured = os.environ.get("S2S_CHROMIUM")
    if configured:
        return shutil.which(configured) or (configured if Path(configured).is_file() else None)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium binary; skips the calling test without one, or fails it when `S2S_REQUIRE_BROWSER=1`."""
    binary = find_chromium()
    if binary:
        return binary
    missing_tool("chromium not found (set S2S_CHROMIUM or install chromium) — browser checks of the report not run",
                 "S2S_REQUIRE_BROWSER")


def _run(args: list[str], timeout_s: float) -> str:
    """Run Chromium with a fresh profile; return stdout. Kills its whole process group on timeout."""
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="s2s-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        # Its own session, so a hung browser's zygote and renderer processes die with it.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(f"chromium did not finish within {timeout_s:.0f} s: {' '.join(args)}") from None
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise AssertionError(f"chromium exited with {process.returncode}: {' '.join(args)}\n{tail}")
    return stdout


def dump_dom(page: Path, *, timeout_s: float = TIMEOUT_S) -> str:
    """The serialised DOM of a local HTML file after Chromium has loaded it (and run any scripts in it)."""
    return _run(["--dump-dom", Path(page).resolve().as_uri()], timeout_s)


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 2000,
               timeout_s: float = TIMEOUT_S) -> Path:
    """Save a PNG screenshot of the top `width`×`height` pixels of a local HTML file; return its path."""
    png = Path(png).resolve()
    _run([f"--screenshot={png}", f"--window-size={width},{height}", Path(page).resolve().as_uri()], timeout_s)
    if not png.exists():
        raise AssertionError(f"chromium wrote no screenshot to {png}")
    return png
