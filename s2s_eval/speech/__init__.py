"""Speech in and out of the harness, and the OpenAI-compatible endpoint client that speech and the judge share.

`tts` and `tts_engines` speak texts (dataset questions, the reference server's answers); `asr` transcribes audio
and holds the WER normalisation (output consistency, round-trip checks of synthesised questions, matching official
recordings); `endpoint` and `response_cache` are the HTTP client and cache behind the ASR backend, the OpenAI TTS
engine and the LLM judge. Datasets, graders, runners and the server all use these pieces, so they live here, where
they import none of those packages: that is what keeps `datasets` and `graders` free of an import cycle.
"""

from __future__ import annotations

from s2s_eval.speech.asr import (
    AsrConfig,
    Consistency,
    EndpointTranscriber,
    Transcriber,
    Transcription,
    load_transcriber,
    measure_consistency,
    normalise,
    normalise_for_wer,
    word_error_rate,
)
from s2s_eval.speech.endpoint import EndpointClient, EndpointConfig, describe_error, public_url, scrub
from s2s_eval.speech.response_cache import ResponseCache, request_key
from s2s_eval.speech.tts import Synthesizer, TTSSettings, spoken_form
from s2s_eval.speech.tts_engines import ENGINES, EdgeEngine, Engine, EspeakEngine, OpenAISpeechEngine, canonical_engine

__all__ = [
    "ENGINES", "AsrConfig", "Consistency", "EdgeEngine", "EndpointClient", "EndpointConfig", "EndpointTranscriber",
    "Engine", "EspeakEngine", "OpenAISpeechEngine", "ResponseCache", "Synthesizer", "TTSSettings", "Transcriber",
    "Transcription", "canonical_engine", "describe_error", "load_transcriber", "measure_consistency", "normalise",
    "normalise_for_wer", "public_url", "request_key", "scrub", "spoken_form", "word_error_rate"
]
