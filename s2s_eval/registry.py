"""The YAML registries a user edits instead of code: model profiles in `runners/`, eval specs in `evals/`."""

from __future__ import annotations

from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from s2s_eval import paths
from s2s_eval.errors import UserError

M = TypeVar("M", bound=BaseModel)


def available(kind: str) -> list[str]:
    """Names (file stems) in the registry folder `kind`."""
    return sorted(p.stem for p in paths.registry(kind).glob("*.yaml"))


def load(kind: str, name: str, model: type[M], what: str) -> M:
    """Load and validate `<kind>/<name>.yaml`; an unknown name or a malformed file is one clear error."""
    path = paths.registry(kind) / f"{name}.yaml"
    if not path.exists():
        raise UserError(f"unknown {what} {name!r}; available: {', '.join(available(kind)) or 'none'} "
                        f"(in {path.parent})")
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
