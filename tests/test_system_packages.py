"""`scripts/ensure-system-packages` picks the package manager of the system: apt-get on Debian, Homebrew on macOS,
and elsewhere one line naming what to install by hand.

Neither Homebrew nor another operating system can run here, so each case runs the real script with a PATH of
stand-ins only: `uname` says which system, `brew` and `apt-get` record how they were called (and `brew` installs a
stand-in program, as the real one would), and the programs the script looks for are present or not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "ensure-system-packages"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """A bin folder holding only what the script may call; `calls` beside it logs the package managers' calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)  # has venv and ensurepip
    _stub(bin_dir, "id", "echo 0")
    return bin_dir


def run(bin_dir: Path, os_name: str, *args: str) -> subprocess.CompletedProcess[str]:
    _stub(bin_dir, "uname", f"echo {os_name}")
    env = {"PATH": str(bin_dir), "HOME": str(bin_dir.parent)}
    return subprocess.run(["/bin/bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir.parent / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_missing_installs_nothing(system: Path) -> None:
    for program in ("espeak-ng", "chromium"):
        _stub(system, program, "true")
    _stub(system, "apt-get", f'echo "apt-get $*" >> {system.parent}/calls')
    done = run(system, "Linux", "--browser")
    assert done.returncode == 0, done.stderr
    assert calls(system) == []


def test_debian_uses_apt_get(system: Path) -> None:
    _stub(system, "apt-get", f'echo "apt-get $*" >> {system.parent}/calls')
    done = run(system, "Linux", "--browser")
    assert done.returncode == 0, done.stderr
    assert calls(system) == ["apt-get update -qq",
                             "apt-get install -y -qq --no-install-recommends espeak-ng chromium"]


def test_macos_uses_homebrew(system: Path) -> None:
    # The real cask puts a `chromium` command on PATH; so does this stand-in.
    chromium = system / "chromium"
    _stub(system, "brew", f'echo "brew $*" >> {system.parent}/calls; '
                          f'[ "$2" = --cask ] && printf "#!/bin/sh\\n" > {chromium} && /bin/chmod +x {chromium}; true')
    _stub(system, "apt-get", "exit 99")  # never used on macOS
    done = run(system, "Darwin", "--browser")
    assert done.returncode == 0, done.stderr
    assert calls(system) == ["brew install espeak-ng", "brew install --cask chromium"]


def test_macos_chromium_off_path_says_how_to_point_at_it(system: Path) -> None:
    _stub(system, "brew", f'echo "brew $*" >> {system.parent}/calls')
    _stub(system, "espeak-ng", "true")
    done = run(system, "Darwin", "--browser")
    assert done.returncode == 1
    assert calls(system) == ["brew install --cask chromium"]
    assert "S2S_CHROMIUM=" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("os_name", ["Linux", "Darwin", "FreeBSD"])
def test_without_apt_get_or_homebrew_one_line_names_what_to_install(system: Path, os_name: str) -> None:
    done = run(system, os_name, "--browser")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "espeak-ng chromium" in lines[0] and "package manager" in lines[0], done.stderr


def test_the_browser_is_checked_only_when_asked(system: Path) -> None:
    _stub(system, "espeak-ng", "true")
    assert run(system, "FreeBSD").returncode == 0
    assert os.access(SCRIPT, os.X_OK)  # make calls it directly
