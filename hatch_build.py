"""Build hook: map the checkout's top-level built-ins into the wheel as package data.

The built-in evals, model profiles and the dependency lock have one copy, at the top of the checkout, where users
read and edit them. A wheel has no checkout beside it, so they go into `s2s_eval/builtin/` when a wheel is built.
An editable install gets nothing: `s2s_eval/paths.py` reads the checkout's folders directly, and a copy in
site-packages would only go stale. (A plain `force-include` table would copy them into editable installs too.)
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILTINS = {"evals": "s2s_eval/builtin/evals", "runners": "s2s_eval/builtin/runners",
            "uv.lock": "s2s_eval/builtin/uv.lock"}


class BuiltinsHook(BuildHookInterface):
    PLUGIN_NAME = "s2s-eval-builtins"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"].update(BUILTINS)
