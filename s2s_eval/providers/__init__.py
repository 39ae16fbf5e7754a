"""Providers: each vendor's URL, authentication, wire protocol and event mapping, registered once.

`get_provider(profile.provider)` returns the `Provider`; its `codec()` translates one session's frames to and
from the GA events the runner speaks. See `_base.py` for the interface and README "Adding a provider".
"""

from s2s_eval.providers._base import Codec, Frame, Provider, Shutdown
from s2s_eval.providers._registry import PROVIDERS, get_provider, provider_names

__all__ = ["PROVIDERS", "Codec", "Frame", "Provider", "Shutdown", "get_provider", "provider_names"]
