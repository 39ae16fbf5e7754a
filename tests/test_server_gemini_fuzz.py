"""Any JSON a client sends to the Gemini Live server ends in an answer or a close, never in a crash.

`GeminiSession.handle` is I/O-free, so it is fuzzed directly: each message either returns an `Outcome` or raises
`GeminiClose` (what Google's server does with a bad request); any other exception would take the connection down
with a traceback instead of a close code a client can classify.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_eval.server.gemini import GeminiSession, Outcome
from s2s_eval.server.gemini_wire import GeminiClose

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                    st.sampled_from(["", "AUDIO", "TEXT", "models/x", "Kore", "audio/pcm;rate=16000", "AAAA",
                                     "START_SENSITIVITY_HIGH", "NO_INTERRUPTION", "-_-_"]))
KEYS = st.sampled_from(["setup", "model", "generationConfig", "generation_config", "responseModalities",
                        "speechConfig", "voiceConfig", "prebuiltVoiceConfig", "voiceName", "systemInstruction",
                        "parts", "text", "realtimeInputConfig", "automaticActivityDetection", "disabled",
                        "prefixPaddingMs", "silenceDurationMs", "startOfSpeechSensitivity", "activityHandling",
                        "realtimeInput", "realtime_input", "audio", "data", "mimeType", "mime_type", "mediaChunks",
                        "activityStart", "activityEnd", "audioStreamEnd", "clientContent", "turns", "role",
                        "turnComplete", "toolResponse", "functionResponses", "id", "name", "response",
                        "outputAudioTranscription"]) | st.text(max_size=6)
JSON = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(KEYS, kids, max_size=4),
                    max_leaves=12)
SETUP_FIELDS = ["generationConfig", "systemInstruction", "tools", "realtimeInputConfig", "outputAudioTranscription",
                "generation_config", "realtime_input_config"]
NESTED = st.recursive(SCALARS, lambda kids: st.dictionaries(KEYS, kids, max_size=3) | st.lists(kids, max_size=2),
                      max_leaves=8)
SETUPS = st.fixed_dictionaries({"model": st.just("models/m")},
                               optional={name: NESTED for name in SETUP_FIELDS}).map(lambda s: {"setup": s})
SETUP = {"setup": {"model": "models/m", "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}}}}


def apply(session: GeminiSession, message: Any) -> None:
    try:
        assert isinstance(session.handle(message), Outcome)
    except GeminiClose as exc:
        assert exc.code in (1007, 1008) and len(exc.reason.encode()) <= 123


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSON, min_size=1, max_size=4))
def test_any_first_messages_answer_or_close(messages: list[Any]) -> None:
    session = GeminiSession()
    for message in messages:
        apply(session, message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSON, min_size=1, max_size=4), st.booleans())
def test_any_messages_after_a_setup_answer_or_close(messages: list[Any], manual: bool) -> None:
    session = GeminiSession()
    session.handle(SETUP if manual else {"setup": {"model": "models/m"}})
    for message in messages:
        apply(session, message)
        apply(session, {"realtimeInput": message})
        apply(session, {"clientContent": message})
        apply(session, {"toolResponse": message})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SETUPS)
def test_any_setup_with_a_model_answers_or_closes(setup: dict[str, Any]) -> None:
    apply(GeminiSession(), setup)
