"""Normalise server events to GA names. The one beta→GA mapping table of the project lives here."""

from __future__ import annotations

from typing import Any

BETA_TO_GA = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}


def normalise(event: dict[str, Any]) -> dict[str, Any]:
    """Rename a beta event to its GA name; GA events and unknown types pass through unchanged."""
    name = event.get("type")
    if name in BETA_TO_GA:
        return {**event, "type": BETA_TO_GA[name]}
    return event
