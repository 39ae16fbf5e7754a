"""The one table of providers: name → the class that implements it, imported only when a profile uses it.

A profile's `provider:` must be a key here. Adding a vendor is one module and one line (README, "Adding a
provider").
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from s2s_eval.errors import UserError

if TYPE_CHECKING:
    from s2s_eval.providers._base import Provider

PROVIDERS: dict[str, str] = {
    "openai": "s2s_eval.providers._openai:OpenAI",
    "azure": "s2s_eval.providers._openai:Azure",
    "openai-compatible": "s2s_eval.providers._openai:OpenAICompatible",
    "local": "s2s_eval.providers._openai:Local",
    "xai": "s2s_eval.providers._xai:XAI",
    "gemini": "s2s_eval.providers._gemini:Gemini",
    "gemini-compatible": "s2s_eval.providers._gemini:GeminiCompatible",
}


def provider_names() -> list[str]:
    return list(PROVIDERS)


@functools.cache
def get_provider(name: str) -> Provider:
    """The provider registered as `name` (its module is imported on first use)."""
    if name not in PROVIDERS:
        raise UserError(f"unknown provider {name!r}; available: {', '.join(PROVIDERS)}")
    module, _, attribute = PROVIDERS[name].partition(":")
    provider: Provider = getattr(importlib.import_module(module), attribute)()
    return provider
