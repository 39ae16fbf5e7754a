"""The YAML registries a user edits instead of code: model profiles in `runners/`, eval specs in `evals/`.

Each kind has the built-ins that ship with the harness and, optionally, the user's own folder (`paths.py` says
where both are). A user's file adds a name, or replaces the built-in of the same file name whole: no merging of
fields, so what runs is exactly one file, and `s2s-eval list` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from s2s_eval import paths
from s2s_eval.errors import UserError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Entry:
    """One registered name and the file that defines it."""

    name: str
    path: Path
    builtin: bool  # shipped with the harness
    overrides_builtin: bool = False  # a user's file that replaces a built-in of the same name

    @property
    def origin(self) -> str:
        """Where it comes from, for people: `built-in`, or the user's file (and whether it replaces a built-in)."""
        if self.builtin:
            return "built-in"
        return f"{self.path} (overrides built-in)" if self.overrides_builtin else str(self.path)


def entries(kind: str) -> dict[str, Entry]:
    """Every name of the registry `kind`, sorted: the built-ins, then the user's files on top of them."""
    found = {p.stem: Entry(p.stem, p, builtin=True) for p in sorted(paths.builtin(kind).glob("*.yaml"))}
    user = paths.user_registry(kind)
    for path in sorted(user.glob("*.yaml")) if user else ():
        found[path.stem] = Entry(path.stem, path, builtin=False, overrides_builtin=path.stem in found)
    return dict(sorted(found.items()))


def available(kind: str) -> list[str]:
    """Names (file stems) in the registry `kind`, built-in and the user's."""
    return list(entries(kind))


def _where(kind: str) -> str:
    user = paths.user_registry(kind)
    return f"built-in{f' and {user}' if user else ''}"


def load(kind: str, name: str, model: type[M], what: str) -> M:
    """Load and validate the file registered as `name`; an unknown name or a malformed file is one clear error."""
    found = entries(kind)
    if name not in found:
        raise UserError(f"unknown {what} {name!r}; available: {', '.join(found) or 'none'} ({_where(kind)}; "
                        f"add {kind}/{name}.yaml in the current folder or $S2S_HOME)")
    path = found[name].path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{path}: {where}: {first['msg']}") from None
