"""What identifies the harness a run was measured with: version, source commit, and the dependency lock.

Two machines that install the same commit should measure with the same libraries. `uv.lock` pins the whole
dependency tree; a run records the lock's sha256 and, because an environment can drift from its lock (a wheel
installed with plain `pip install` resolves only our direct pins, a hand-upgraded package), the installed runtime
libraries whose versions differ from it. An empty list is the claim "these are the locked libraries"; a missing lock
is recorded as null with the reason, never as a match.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import subprocess
import tomllib
from typing import Any

from s2s_eval import __version__, paths

PROJECT = "s2s-eval"


def git_commit() -> str | None:
    """The commit of the source checkout the harness runs from; None for an installed wheel (no checkout)."""
    source = paths.checkout()
    if source is None:
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: dict[str, Any], extras: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """Locked versions of every package the project needs: its dependencies (plus its `extras`, e.g. `test`) and
    theirs, with the extras they ask for. Markers are ignored: a package for another platform is just not installed."""
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock.get("package", []):
        packages.setdefault(_normal(package["name"]), []).append(package)
    versions: dict[str, set[str]] = {}
    todo = [(PROJECT, extras)]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (_normal(name), wanted) in seen:
            continue
        seen.add((_normal(name), wanted))
        for package in packages.get(_normal(name), []):
            if "version" in package and _normal(name) != PROJECT:
                versions.setdefault(_normal(name), set()).add(package["version"])
            deps = list(package.get("dependencies", []))
            for extra in wanted:
                deps += package.get("optional-dependencies", {}).get(extra, [])
            todo += [(dep["name"], tuple(dep.get("extra", ()))) for dep in deps]
    return versions


def installed_versions() -> dict[str, str]:
    """Version of each installed distribution, by normalised name; of two with one name, the one imported."""
    installed: dict[str, str] = {}
    for dist in importlib.metadata.distributions():  # in sys.path order
        if dist.metadata["Name"]:
            installed.setdefault(_normal(dist.metadata["Name"]), dist.version)
    return installed


def differences(locked: dict[str, set[str]]) -> list[str]:
    """`name installed X, locked Y` for each installed package whose version the lock does not have."""
    installed = installed_versions()
    return sorted(f"{name} installed {installed[name]}, locked {' or '.join(sorted(want))}"
                  for name, want in locked.items() if name in installed and installed[name] not in want)


def lock_facts() -> dict[str, Any]:
    """`lock_sha256` of the uv.lock this harness was built from, and `lock_differences`: installed runtime libraries
    (the test extra aside) whose version is not the locked one."""
    path = paths.builtin("uv.lock")
    try:
        data = path.read_bytes()
    except OSError:
        return {"lock_sha256": None, "lock_differences": None,
                "lock_note": f"no uv.lock at {path}: this installation was not built from a locked checkout"}
    locked = locked_versions(tomllib.loads(data.decode("utf-8")))
    return {"lock_sha256": hashlib.sha256(data).hexdigest(), "lock_differences": differences(locked)}


def harness() -> dict[str, Any]:
    """The `harness` block of a run's spec.json."""
    return {"name": PROJECT, "version": __version__, "git_commit": git_commit(), **lock_facts()}
