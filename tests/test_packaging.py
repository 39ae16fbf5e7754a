"""The harness as a user installs it: a wheel that carries everything it reads at run time, a non-editable install
that runs, reports and finds its built-ins from an empty folder, a user's own evals and profiles on top of the
built-ins, and one dependency lock that the set-up installs and every run records."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from s2s_eval import paths, provenance, registry
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import UserError
from s2s_eval.log import read_spec
from s2s_eval.runners.profile import load_profile
from tests.browser import require_chromium
from tests.cdp import open_page
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds from this checkout (offline: the pinned backend is in the test extra)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", ".", "-w", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("s2s_eval-*.whl")
    return built


def test_the_wheel_carries_templates_builtins_and_lock_but_no_tests_or_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packaged = {name: archive.read(name) for name in names if name.startswith("s2s_eval/builtin/")}
    assert {"s2s_eval/reports/templates/report.js", "s2s_eval/reports/templates/report.html.j2",
            "s2s_eval/__main__.py", "s2s_eval/server/app.py"} <= names
    # The built-ins are the checkout's files, byte for byte: one source, mapped in at build time.
    for kind in ("evals", "runners"):
        # (with sub-folders: the turn_taking eval's scenario file is evals/scenarios/turn_taking.yaml)
        expected = {f"s2s_eval/builtin/{kind}/{p.relative_to(ROOT / kind).as_posix()}": p.read_bytes()
                    for p in (ROOT / kind).rglob("*.yaml")}
        assert expected and {k: v for k, v in packaged.items() if f"/builtin/{kind}/" in k} == expected
    assert packaged["s2s_eval/builtin/uv.lock"] == (ROOT / "uv.lock").read_bytes()
    top = {name.split("/")[0] for name in names}
    assert top == {"s2s_eval", "s2s_eval-0.1.0.dist-info"}, top  # no tests/, datasets/, benchmarks/, runs/
    assert not [n for n in names if n.endswith((".pyc", ".wav", ".jsonl")) or "__pycache__" in n]


def test_an_editable_install_reads_the_checkout_and_copies_nothing(tmp_path: Path) -> None:
    """The build hook maps built-ins only into real wheels: an editable one is a pointer to this checkout, so there is
    no stale second copy in site-packages."""
    build = f"import hatchling.build as b; print(b.build_editable({str(tmp_path)!r}))"
    done = subprocess.run([sys.executable, "-c", build], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / done.stdout.strip().splitlines()[-1]) as archive:
        names = archive.namelist()
        pth = [archive.read(n).decode() for n in names if n.endswith(".pth")]
    assert not [n for n in names if n.startswith("s2s_eval/")], names
    assert pth == [str(ROOT)]
    assert paths.builtin("evals") == ROOT / "evals" and paths.builtin("runners") == ROOT / "runners"


def _fresh_venv(root: Path, wheel: Path) -> Path:
    """A new virtualenv with our package installed from the wheel, not editable; returns its site-packages.

    Installing every dependency from the index into it would take minutes, so it sees this test run's libraries
    through a .pth file naming their site-packages. A plain path line adds only that folder: the .pth files inside
    it (among them the editable install's pointer to this checkout) are not processed, and the new venv's own
    site-packages, holding the wheel's `s2s_eval`, comes first on sys.path."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    (site,) = (root / "lib").glob("python3*/site-packages")
    libraries = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_s2s_test_libraries.pth").write_text("".join(f"{p}\n" for p in libraries), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install",
                           "--quiet", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def test_a_wheel_install_runs_and_reports_from_an_empty_folder(wheel: Path, data_dir: Path, tmp_path: Path) -> None:
    """`pip install <wheel>`, then from an empty folder `s2s-eval run --model local` (the embedded server started
    as a subprocess of the installed package) and `s2s-eval report`: a report that works in Chromium. The run's
    outputs and the audio cache land in that folder, and spec.json records the lock the wheel was built from."""
    require_chromium()
    venv = tmp_path / "venv"
    site = _fresh_venv(venv, wheel)
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("S2S_HOME", "S2S_CACHE_DIR", "OPENAI_API_KEY", "PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"S2S_DATA_DIR": str(data_dir), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}

    def s2s(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "s2s-eval"), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import s2s_eval; print(s2s_eval.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr

    done = s2s("run", "--model", "local", "--eval", "big_bench_audio", "--limit", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 samples, 0 errors" in done.stdout
    (run_dir,) = (work / "runs").iterdir()  # the default run directory is under the current folder
    assert list((work / "datasets" / "audio").rglob("*.wav")), "the audio cache defaults to ./datasets"
    spec = read_spec(run_dir)
    assert spec["endpoint"] == "embedded server (loopback)" and (run_dir / "server.log").is_file()
    assert spec["harness"]["git_commit"] is None  # no checkout behind a wheel
    assert spec["harness"]["lock_sha256"] == hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()
    assert spec["harness"]["lock_differences"] == []

    done = s2s("report", str(run_dir.relative_to(work)))
    assert done.returncode == 0, done.stdout + done.stderr
    report = work / "reports" / "index.html"
    assert sorted(p.name for p in work.iterdir()) == ["datasets", "reports", "runs"]
    with open_page(report.as_uri()) as page:
        page.settle()
        assert page.evaluate("document.documentElement.dataset.ready") == "1", page.problems
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert images and all(ok and w > 200 and h > 100 for ok, w, h in images), images
        assert page.evaluate("document.querySelectorAll('#sample-table tbody tr').length") == 4
        assert page.problems == [], page.problems


# --- the user's evals and profiles -----------------------------------------------------------------------------

@pytest.fixture
def user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, as a user's; S2S_HOME unset."""
    monkeypatch.delenv("S2S_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _user_profile(folder: Path, name: str, description: str, concurrency: int) -> Path:
    (folder / "runners").mkdir(parents=True, exist_ok=True)
    path = folder / "runners" / f"{name}.yaml"
    text = (ROOT / "runners" / "local.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^description: .*$", f"description: {description}", text)
    path.write_text(re.sub(r"(?m)^concurrency: .*$", f"concurrency: {concurrency}", text), encoding="utf-8")
    return path


def test_a_user_file_overrides_the_builtin_of_its_name_and_adds_new_names(user_folder: Path) -> None:
    assert load_profile("local").concurrency == 4 and not registry.entries("runners")["local"].overrides_builtin
    mine = _user_profile(user_folder, "local", "my local", 1)
    (user_folder / "evals").mkdir()
    (user_folder / "evals" / "mine.yaml").write_text(
        (ROOT / "evals" / "big_bench_audio.yaml").read_text().replace("name: big_bench_audio", "name: mine"))
    assert load_profile("local").concurrency == 1
    assert registry.entries("runners")["local"] == registry.Entry("local", mine, builtin=False, overrides_builtin=True)
    assert load_profile("gpt-realtime").model == "gpt-realtime"  # the other built-ins are still there
    assert load_eval("mine").name == "mine" and load_eval("big_bench_audio").name == "big_bench_audio"
    assert registry.entries("evals")["mine"].origin == str(user_folder / "evals" / "mine.yaml")
    with pytest.raises(UserError, match=f"unknown model profile 'nope'.*built-in and {user_folder / 'runners'}"):
        load_profile("nope")


def test_s2s_home_comes_before_the_current_folder(user_folder: Path, tmp_path_factory: pytest.TempPathFactory,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _user_profile(user_folder, "local", "from the current folder", 2)
    home = tmp_path_factory.mktemp("home")
    _user_profile(home, "local", "from S2S_HOME", 3)
    monkeypatch.setenv("S2S_HOME", str(home))
    assert load_profile("local").concurrency == 3
    assert paths.home() == home.resolve()


def test_outputs_and_cache_default_to_the_current_folder(user_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S2S_CACHE_DIR", raising=False)
    assert paths.home() == user_folder.resolve()
    assert paths.cache_dir() == user_folder.resolve() / "datasets"
    monkeypatch.setenv("S2S_CACHE_DIR", str(user_folder / "elsewhere"))
    assert paths.cache_dir() == (user_folder / "elsewhere").resolve()


def test_in_the_checkout_its_folders_are_the_builtins_not_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S2S_HOME", raising=False)
    monkeypatch.chdir(ROOT)
    assert paths.user_registry("runners") is None
    assert all(entry.builtin for entry in registry.entries("runners").values())


def test_list_says_where_each_name_comes_from(user_folder: Path) -> None:
    _user_profile(user_folder, "local", "my local", 1)
    _user_profile(user_folder, "extra", "an extra profile", 1)
    env = {k: v for k, v in os.environ.items() if k != "S2S_HOME"}

    def listing(kind: str) -> dict[str, str]:
        done = subprocess.run([sys.executable, "-m", "s2s_eval", "list", kind], cwd=user_folder, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        rows = [line.split(None, 1) for line in done.stdout.splitlines() if line.startswith("  ")]
        return {name: rest for name, rest in rows}

    models = listing("models")
    assert set(models) == {p.stem for p in (ROOT / "runners").glob("*.yaml")} | {"extra"}
    assert models["local"] == f"{user_folder / 'runners' / 'local.yaml'} (overrides built-in): my local"
    assert models["extra"] == f"{user_folder / 'runners' / 'extra.yaml'}: an extra profile"
    assert models["gpt-realtime"] == ("built-in: OpenAI gpt-realtime (GA, 2025-08-28) "
                                      "[shutdown 2027-01-20 → gpt-realtime-2.1]")
    evals = listing("evals")
    assert set(evals) == {p.stem for p in (ROOT / "evals").glob("*.yaml")}
    assert all(origin.startswith("built-in: ") for origin in evals.values())


def test_list_shows_a_broken_user_file_and_fails(user_folder: Path) -> None:
    (user_folder / "runners").mkdir()
    (user_folder / "runners" / "broken.yaml").write_text("name: broken\nprovider: nobody\n")
    env = {k: v for k, v in os.environ.items() if k != "S2S_HOME"}
    done = subprocess.run([sys.executable, "-m", "s2s_eval", "list", "models"], cwd=user_folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert re.search(r"(?m)^  broken .*: cannot load: .*broken\.yaml: provider", done.stdout), done.stdout


def test_list_into_a_closed_pipe_says_nothing(user_folder: Path) -> None:
    """`s2s-eval list models | head -1` is an ordinary use: a reader that leaves early gets no traceback."""
    done = subprocess.run(["/bin/sh", "-c", f"{sys.executable} -m s2s_eval list models | true"], cwd=user_folder,
                          capture_output=True, text=True, timeout=120)
    assert done.stderr == ""


# --- the lock ---------------------------------------------------------------------------------------------------

def _requirements_lock() -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for name, version in re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.lock").read_text()):
        pins.setdefault(_normal(name), set()).add(version)
    return pins


def test_requirements_lock_is_the_export_of_uv_lock() -> None:
    """pip's set-up (no uv) installs requirements.lock: it must pin exactly what uv.lock pins, with hashes."""
    assert _requirements_lock() == provenance.locked_versions(LOCK, ("test",))
    blocks = re.split(r"(?m)^(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())[1:]
    assert blocks and all("--hash=sha256:" in block for block in blocks)  # pip then checks every download


def test_uv_lock_is_current_with_pyproject() -> None:
    """Editing a pin in pyproject.toml without `uv lock` leaves uv.lock stale; `uv sync --frozen` would then
    install the old version silently."""
    project = next(p for p in LOCK["package"] if p["name"] == "s2s-eval")
    locked = {(_normal(r["name"]), r.get("specifier", ""), tuple(r.get("extras", ())), _marker(r.get("marker", "")))
              for r in project["metadata"]["requires-dist"]}
    declared = set()
    for extra, requirements in [("", PYPROJECT["project"]["dependencies"]),
                                *PYPROJECT["project"]["optional-dependencies"].items()]:
        for text in requirements:
            req = Requirement(text)
            marker = " and ".join(m for m in (str(req.marker or ""), f"extra == '{extra}'" if extra else "") if m)
            declared.add((_normal(req.name), str(req.specifier), tuple(sorted(req.extras)), _marker(marker)))
    assert declared == locked


def _marker(text: str) -> str:
    """An environment marker in one spelling (uv writes 'win32', packaging "win32")."""
    return str(Marker(text)) if text else ""


def test_the_build_backend_is_the_one_the_tests_install() -> None:
    (backend,) = PYPROJECT["build-system"]["requires"]
    assert backend in PYPROJECT["project"]["optional-dependencies"]["test"]


def test_this_environment_has_the_locked_versions() -> None:
    """`make setup` installs the lock, with uv or with pip: every locked package installed here has its version."""
    assert provenance.differences(provenance.locked_versions(LOCK, ("test",))) == []
    assert provenance.lock_facts() == {"lock_sha256": hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest(),
                                       "lock_differences": []}


def test_a_library_that_drifted_from_the_lock_is_named() -> None:
    lock = {"package": [{"name": "s2s-eval", "dependencies": [{"name": "numpy"}, {"name": "openai",
                                                                                  "extra": ["realtime"]}]},
                        {"name": "numpy", "version": "0.0.1"},
                        {"name": "openai", "version": provenance.installed_versions()["openai"],
                         "optional-dependencies": {"realtime": [{"name": "websockets"}]}},
                        {"name": "websockets", "version": "1.0"}]}
    assert provenance.differences(provenance.locked_versions(lock)) == [
        f"numpy installed {provenance.installed_versions()['numpy']}, locked 0.0.1",
        f"websockets installed {provenance.installed_versions()['websockets']}, locked 1.0"]


def test_the_nightly_measures_with_the_locked_libraries() -> None:
    """The nightly runs are the measurements that get compared: each job installs the lock, then our package alone."""
    text = (ROOT / ".github" / "workflows" / "nightly.yml").read_text(encoding="utf-8")
    installs = re.findall(r"(?m)^\s*python -m pip install .*$", text)
    assert installs and all(line.strip() in ("python -m pip install -r requirements.lock",
                                              "python -m pip install --no-deps -e .") for line in installs), installs
    assert text.count("pip install -r requirements.lock") == text.count("pip install --no-deps -e .") >= 3
