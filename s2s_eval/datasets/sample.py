"""The unit every adapter produces and every runner consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One benchmark item.

    `prompt_text` is the text that is spoken to the model; `target` is the gold answer, used only by graders
    (never sent to a server). `category` groups samples in reports.
    """

    sample_id: str
    eval: str
    category: str
    prompt_text: str
    target: str
    metadata: dict[str, Any] = field(default_factory=dict)
