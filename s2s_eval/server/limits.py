"""Limits on client messages that both protocols of the reference server enforce."""

from __future__ import annotations

from typing import Any

# Deeper events are refused as unparseable. Found by fuzzing: past ~1000 levels Python's JSON decoder, and past
# ~500 `copy.deepcopy`, raise RecursionError, which took the session down. 128 is serde_json's default limit; the
# real service's limit is unverified.
MAX_EVENT_DEPTH = 128


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests arrays/objects more than `limit` levels deep (iterative: no recursion limit)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
