"""The reference server's beta mode (protocol brief §3): what a beta server does beyond translating events.

The translation itself, both ways, is `s2s_eval.protocol_beta`, shared with the harness so that one table says
what beta and GA call each thing.
"""

from __future__ import annotations

from typing import Any

from s2s_eval.protocol_beta import client_event_to_ga, server_event_to_beta
from s2s_eval.server.protocol import RealtimeSession

__all__ = ["after_created", "client_event_to_ga", "server_event_to_beta"]


def after_created(session: RealtimeSession) -> list[dict[str, Any]]:
    """Beta servers follow `session.created` with `conversation.created`."""
    return [session.event("conversation.created",
                          conversation={"id": session.conversation_id, "object": "realtime.conversation"})]
