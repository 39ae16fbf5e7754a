"""Text-to-speech behind one interface, with a content-addressed cache of 24 kHz mono PCM16 clips.

A clip's cache key is the hash of everything that changes its sound: text, engine, engine version, voice, rate, the
target loudness every clip is scaled to (`loudness.py`) and any engine-specific identity (an endpoint's URL). The
same key always maps to the same file, so repeat runs, the runner and the embedded server share clips. Beside each
clip, `<key>.json` records what it was spoken with.

The engines live in `tts_engines.py`; how a sample's input audio is chosen (voice mix, official recordings,
round-trip verification, perturbations) in `datasets/tts_input.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from s2s_eval import audio, paths
from s2s_eval.files import atomic_write_json
from s2s_eval.speech import loudness
from s2s_eval.speech.tts_engines import ENGINES, EdgeEngine, Engine, EspeakEngine, canonical_engine

__all__ = ["ENGINES", "EdgeEngine", "EspeakEngine", "Synthesizer", "TTSSettings", "Verification", "spoken_form"]


class Verification(BaseModel):
    """Round-trip check of synthesised clips: on when the eval spec enables it and a transcription backend is
    configured (`S2S_ASR_*`). Opt-in per eval, because it can change which samples a run holds: a backend set up
    to measure the models' output must not silently shrink the sample set of every eval.

    A clip fails when the WER of its transcription against the text it speaks exceeds `max_wer`. A failed sample
    is spoken again with the next voice of the mix (then `fallback_voices`) until one passes (`resynthesize`); if
    none does, or with `exclude`, the sample is left out of the run and listed in `spec.json`; `keep` only flags.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = False
    max_wer: float = Field(default=0.1, ge=0.0)
    on_fail: Literal["resynthesize", "exclude", "keep"] = "resynthesize"
    fallback_voices: tuple[str, ...] = ()


class TTSSettings(BaseModel):
    """How an eval's text is spoken: `engine`, `voice`, `rate` (words per minute) of one clip, plus the eval-wide
    voice mix (`voices`: each sample is spoken by one of them, chosen by a hash of `seed` and the sample id) and the
    round-trip `verify` settings. A voice in `voices` may name another engine as `engine:voice`
    (`edge-tts:en-US-AriaNeural`). Every clip is scaled to `loudness_lufs` (BS.1770 integrated loudness; None
    keeps the engine's own level)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: str = "espeak-ng"
    voice: str = "en-us"
    rate: int = Field(default=175, gt=0)
    voices: tuple[str, ...] = ()
    seed: int = 0
    verify: Verification = Verification()
    loudness_lufs: float | None = Field(default=loudness.DEFAULT_TARGET_LUFS, le=0.0, ge=-70.0)

    def for_voice(self, label: str) -> TTSSettings:
        """These settings speaking with one voice of the mix (`voice` or `engine:voice`)."""
        engine, colon, voice = label.partition(":")
        if colon:
            return self.model_copy(update={"engine": canonical_engine(engine), "voice": voice})
        return self.model_copy(update={"voice": label})


def spoken_form(text: str) -> str:
    """Collapse line breaks and list markup into sentences a TTS voice reads naturally."""
    text = re.sub(r"\s*\n\s*-\s*", ", ", text)  # "Options:\n- Yes\n- No" -> "Options:, Yes, No"
    text = text.replace(":,", ":")
    text = re.sub(r"\s*\n\s*", " ", text)
    text = re.sub(r"\s{2,}", " ", text).strip()
    return text if text.endswith((".", "?", "!")) else text + "."


class Synthesizer:
    """Speaks texts with one engine, voice and rate, through the on-disk cache."""

    def __init__(self, settings: TTSSettings, cache_root: Path | None = None, engine: Engine | None = None) -> None:
        name = canonical_engine(settings.engine)
        self.settings = settings.model_copy(update={"engine": name})
        self.engine: Engine = engine if engine is not None else ENGINES[name]()
        self.root = (cache_root or paths.cache_dir()) / "audio"

    def describe(self) -> dict[str, Any]:
        """What a clip is spoken with (engine, voice, rate, engine version, target loudness and its meter, ...), as
        recorded in a run's spec. All of it is in the cache key: a clip at another level is another clip."""
        base = {"engine": self.settings.engine, "voice": self.settings.voice, "rate": self.settings.rate,
                "engine_version": self.engine.version, "sample_rate": audio.SAMPLE_RATE}
        if self.settings.loudness_lufs is not None:
            base.update(loudness_target_lufs=self.settings.loudness_lufs, loudness_meter=loudness.meter_name())
        return {**base, **self.engine.identity()}

    def key(self, text: str) -> str:
        payload = json.dumps({"text": text, **self.describe()}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def path(self, text: str) -> Path:
        key = self.key(text)
        return self.root / self.settings.engine / key[:2] / f"{key}.wav"

    def cached(self, text: str) -> bool:
        return self.path(text).exists()

    def speech(self, text: str) -> bytes:
        """The clip for `text`: from the cache, or synthesised and stored. Thread-safe."""
        path = self.path(text)
        if path.exists():
            return audio.read_wav(path)
        self.engine.check()
        pcm = self.engine.synthesize(text, self.settings)
        measured: dict[str, Any] = {}
        if self.settings.loudness_lufs is not None:
            pcm, measured = loudness.normalise_loudness(pcm, self.settings.loudness_lufs)
        audio.write_wav(path, pcm)
        _write_sidecar(path.with_suffix(".json"), {"text": text, **self.describe(), **measured})
        return pcm

    def prepare(self, texts: list[str], workers: int | None = None, progress: bool = True) -> int:
        """Synthesise every text not yet cached, in parallel (all cores for espeak-ng); return how many."""
        missing = sorted({t for t in texts if not self.cached(t)})
        if not missing:
            return 0
        self.engine.check()  # an unreachable service is one line here, not one failure per clip
        with ThreadPoolExecutor(max_workers=workers or self.engine.max_workers) as pool:
            done = pool.map(self.speech, missing)
            for _ in tqdm(done, total=len(missing), desc=f"TTS ({self.settings.engine} {self.settings.voice})",
                          unit="clip", disable=not progress):
                pass
        return len(missing)


def _write_sidecar(path: Path, facts: dict[str, Any]) -> None:
    atomic_write_json(path, facts, sort_keys=True)
