"""The layering of `speech`, `datasets` and `graders`: no import cycle, at module level or deferred.

`graders` reads `datasets` (a grader grades a `Sample`); `datasets` and `graders` both use `speech` (TTS, ASR, the
endpoint client); `speech` uses neither, and `datasets` never uses `graders`. The cycle this replaces was hidden by
imports moved into function bodies ("not at import time"), so there are two checks: each package, with all its
modules, imported alone in a fresh interpreter; and every import statement in the source, function bodies and
`TYPE_CHECKING` blocks included.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# What each package must never import, directly or through anything it imports.
FORBIDDEN = {"speech": {"datasets", "graders"}, "datasets": {"graders"}, "graders": set()}
PACKAGES = ("s2s_eval.speech", "s2s_eval.datasets", "s2s_eval.graders")

LOAD_ALONE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted({name.split(".")[1] for name in sys.modules if name.startswith("s2s_eval.")})))
"""


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` anywhere in the file names (`from a import b` counts a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_alone_in_a_fresh_interpreter(package: str) -> None:
    done = subprocess.run([sys.executable, "-c", LOAD_ALONE, package], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    name = package.removeprefix("s2s_eval.")
    assert name in loaded
    assert not loaded & FORBIDDEN[name], f"importing {package} loads {sorted(loaded & FORBIDDEN[name])}"


@pytest.mark.parametrize("package", [p for p in PACKAGES if FORBIDDEN[p.removeprefix("s2s_eval.")]])
def test_no_import_statement_crosses_a_layer_even_inside_a_function(package: str) -> None:
    name = package.removeprefix("s2s_eval.")
    forbidden = tuple(f"s2s_eval.{other}" for other in FORBIDDEN[name])
    sources = sorted((ROOT / "s2s_eval" / name).rglob("*.py"))
    assert sources
    crossings = {f"{path.relative_to(ROOT)}: {module}" for path in sources for module in imported_modules(path)
                 if module in forbidden or module.startswith(tuple(f"{f}." for f in forbidden))}
    assert not crossings, sorted(crossings)
