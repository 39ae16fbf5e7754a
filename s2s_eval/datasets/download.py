"""A local copy of the benchmark data, downloaded once from each eval's official source (`s2s-eval fetch-data`).

Runs read the official sources online by themselves; a local copy is for machines that will be offline later, for
CI jobs that must not depend on the network mid-test, and for pinning what a series of runs reads. Files land in
the layout the adapters read with `--data-dir` (each eval's `source.local`), written atomically, and each eval is
then loaded through its own adapter, so a truncated download or an HTML error page fails here, not in a run.
Evals whose source is the Hugging Face Hub (ComplexFuncBench, Big Bench Audio's official recordings) are loaded from
the Hub at run time and are not part of the copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from s2s_eval import registry
from s2s_eval.datasets.spec import EvalSpec, load_eval
from s2s_eval.errors import UserError, first_line
from s2s_eval.files import atomic_write_bytes

TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Fetched:
    """What one eval needed: the files written (or already there), and why it was skipped, if it was."""

    eval: str
    files: tuple[Path, ...]
    skipped: str = ""


def _files(spec: EvalSpec) -> list[tuple[str, str]]:
    """(url, local relative path) of each file an eval's official source consists of."""
    url, local = spec.source.get("url"), spec.source.get("local")
    if not url or not local:
        return []
    if "{category}" not in url:
        return [(url, local)]
    return [(url.format(category=c), local.format(category=c)) for c in spec.categories]


def _get(url: str) -> bytes:
    import requests  # imported here: the rest of the CLI does not need it

    try:
        response = requests.get(url, timeout=TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise UserError(f"cannot download {url} ({first_line(exc)}); offline? copy the data by hand into the "
                        "layout of each eval's source.local instead") from None
    return response.content


def fetch(out: Path, evals: Sequence[str] | None = None, *, force: bool = False,
          progress: Callable[[str], None] = lambda _: None) -> list[Fetched]:
    """Download every named eval's official source files into `out` (all evals with a URL source by default).

    A file already present is kept unless `force`; either way the eval is loaded from `out` to check it.
    """
    from s2s_eval.datasets import load_samples

    names = list(evals) if evals else registry.available("evals")
    results = []
    for name in names:
        spec = load_eval(name)
        files = _files(spec)
        if not files:
            results.append(Fetched(name, (), "its source is not a downloadable file (loaded online at run time)"))
            continue
        written = []
        for url, local in files:
            target = out / local
            if force or not target.is_file():
                progress(f"{name}: {url}")
                data = _get(url)
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, data)
            written.append(target)
        # The adapter's own checks, so a bad download is one clear error now. Only the text is fetched here: official
        # recordings (a separate Hub dataset) are not part of the copy.
        load_samples(spec.model_copy(update={"audio_source": "tts"}), out)
        results.append(Fetched(name, tuple(written)))
    return results
