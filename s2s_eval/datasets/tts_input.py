"""The audio a sample is asked with: which voice of the eval's mix speaks it, synthesised or the dataset's official
recording, checked by transcribing it back, then perturbed. One `InputAudio` per run: the runner prepares it once,
asks it for each clip, and journals what it says about each sample (`record`).

Voice assignment is a pure function of the mix, the seed and the sample id (SHA-256, modulo the number of voices),
so a sample keeps its voice whatever `--limit`, `--ids`, shard or resume selects. Round-trip verification may move
a sample to another voice of the mix; that choice is made in `prepare` and recorded with the WERs that led to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from s2s_eval import audio, paths
from s2s_eval.datasets import perturb
from s2s_eval.datasets.sample import Sample
from s2s_eval.speech import asr, loudness
from s2s_eval.speech.asr import Transcriber, word_error_rate
from s2s_eval.speech.tts import Synthesizer, TTSSettings
from s2s_eval.speech.tts_engines import ENGINES, Engine

if TYPE_CHECKING:
    from s2s_eval.datasets.spec import EvalSpec

__all__ = ["BABBLE_TEXTS", "BABBLE_VOICES", "InputAudio", "Preparation", "assign_voice"]

OFFICIAL = "official"
# Babble: six espeak-ng talkers reading these at once. Fixed text, not the eval's own questions, so the noise of a
# sample never depends on which other samples a run selects, and no question leaks into another's audio.
BABBLE_TEXTS = (
    "The meeting moved to the third floor because the projector in the small room stopped working again.",
    "If the weather holds we can take the early train and be at the coast before lunch.",
    "She said the invoices were sent on Monday, but the finance team has not seen them yet.",
    "Turn left after the bakery, then keep going until you see the blue gate on your right.",
    "Nobody expected the match to go to penalties, and half the crowd had already left.",
    "Could you check whether the parcel was delivered to the neighbours while we were away?",
    "The recipe needs two cups of flour, a pinch of salt, and more patience than I have.",
    "We are still waiting for the engineer, who promised to call back before five o'clock.",
)
BABBLE_VOICES = ("en-us", "en-gb+f3", "en-us+m3", "en-gb-scotland+f2", "en-us+f4", "en-029+m7")


def assign_voice(sample_id: str, voices: Sequence[str], seed: int) -> str:
    """The voice of the mix that speaks `sample_id`: SHA-256 of `seed:sample_id`, modulo the number of voices."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return voices[int.from_bytes(digest[:8], "big") % len(voices)]


@dataclass
class Preparation:
    """What `InputAudio.prepare` did: clips made or found, verification outcomes, and samples left out."""

    clips: int = 0
    synthesized: int = 0
    verification: Counter[str] = field(default_factory=Counter)
    excluded: dict[str, str] = field(default_factory=dict)  # sample id -> reason


class InputAudio:
    """Speaks the samples of one eval run (voice mix, official audio, verification, perturbation)."""

    def __init__(self, spec: EvalSpec, cache_root: Path | None = None, keep_dir: Path | None = None) -> None:
        """`keep_dir`: a run directory; every question clip is kept there as `audio/<sample id>.input.wav` (a hard
        link to the cache where the clip is the cached one), so the run alone says what the model heard: a report
        plays it without the dataset, the cache or the TTS engine."""
        self.spec = spec
        self.keep_dir = keep_dir
        self.settings: TTSSettings = spec.tts
        self.mix: tuple[str, ...] = spec.tts.voices or (spec.tts.voice,)
        self.perturbation: perturb.Perturbation | None = spec.perturb
        self.official = spec.audio_source == OFFICIAL
        self.cache_root = cache_root or paths.cache_dir()
        self._engines: dict[str, Engine] = {}
        self._synths: dict[str, Synthesizer] = {}
        self._chosen: dict[str, str] = {}  # sample id -> voice, when verification moved it
        self._verified: dict[str, dict[str, Any]] = {}
        self._measured: dict[str, dict[str, Any]] = {}  # sample id -> the question clip's perturbation facts
        self._clips: dict[str, dict[str, Any]] = {}  # sample id -> the question clip's InputClip fields
        self._babble: np.ndarray | None = None
        self._lock = threading.Lock()
        for label in (*self.mix, *self.settings.verify.fallback_voices):
            self.synth(label)  # unknown engines and missing binaries fail here, before any work
        self.verification_summary: dict[str, Any] = {"configured": False, "reason": "not run"}

    def __getstate__(self) -> dict[str, Any]:
        """What a runner's worker process needs: the prepared choices (voices moved by verification, outcomes) and
        settings. Engines, synthesisers and the lock stay behind (an engine may hold a client or a handle); the
        worker makes its own on first use, and reads the clips `prepare` left in the on-disk cache."""
        state = self.__dict__.copy()
        for name in ("_engines", "_synths", "_lock"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _engines={}, _synths={}, _lock=threading.Lock())

    # --- voices -------------------------------------------------------------------------------------------------

    def synth(self, label: str) -> Synthesizer:
        """The synthesiser of one voice label (`voice` or `engine:voice`); engines are shared between voices."""
        with self._lock:
            if label not in self._synths:
                settings = self.settings.for_voice(label)
                synth = Synthesizer(settings, self.cache_root, self._engines.get(settings.engine))
                self._engines.setdefault(synth.settings.engine, synth.engine)
                self._synths[label] = synth
            return self._synths[label]

    def voice_of(self, sample: Sample) -> str:
        """The voice label that speaks `sample` (the official recording's, when the eval uses those)."""
        if self.official:
            return OFFICIAL
        return self._chosen.get(sample.sample_id) or assign_voice(sample.sample_id, self.mix, self.settings.seed)

    def _candidates(self, sample: Sample) -> list[str]:
        first = assign_voice(sample.sample_id, self.mix, self.settings.seed)
        start = self.mix.index(first)
        ordered = [*self.mix[start:], *self.mix[:start], *self.settings.verify.fallback_voices]
        return list(dict.fromkeys(ordered))

    # --- preparing ----------------------------------------------------------------------------------------------

    async def prepare(self, samples: Sequence[Sample], texts: Callable[[Sample], Sequence[str]],
                      transcriber: Transcriber | None = None, progress: bool = True) -> Preparation:
        """Make every clip the samples need (in parallel), then verify them if a transcription backend is given.

        Samples whose clips fail verification with no voice left are in `excluded`; the caller leaves them out.
        """
        result = Preparation()
        if self.official:
            result.clips = len(samples)
            await asyncio.to_thread(self._prepare_official, samples, progress)
        else:
            by_voice: dict[str, list[str]] = {}
            for sample in samples:
                by_voice.setdefault(self.voice_of(sample), []).extend(texts(sample))
            for label, wanted in by_voice.items():
                unique = list(dict.fromkeys(wanted))
                result.clips += len(unique)
                result.synthesized += await asyncio.to_thread(self.synth(label).prepare, unique, progress=progress)
        if self.perturbation and self.perturbation.kind == "noise" and self.perturbation.noise == "babble":
            await asyncio.to_thread(self.babble)
        await self._verify(samples, texts, transcriber, result, progress)
        return result

    def _prepare_official(self, samples: Sequence[Sample], progress: bool) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            done = pool.map(self._official_clip, samples)
            for _ in tqdm(done, total=len(samples), desc="official audio", unit="clip", disable=not progress):
                pass

    def _official_path(self, sample: Sample) -> Path:
        ref = sample.metadata.get("official_audio")
        if not ref:
            from s2s_eval.errors import DataError

            raise DataError(f"{sample.sample_id}: the eval uses official audio but the sample has none")
        target = self.settings.loudness_lufs  # a clip at another level is another clip (None: the recording's own)
        key = hashlib.sha256(ref["path"].encode() if target is None else f"{ref['path']}|{target}".encode())
        return self.cache_root / "audio" / OFFICIAL / key.hexdigest()[:2] / f"{key.hexdigest()}.wav"

    def _official_clip(self, sample: Sample) -> bytes:
        from s2s_eval.datasets.big_bench_audio import read_official_audio

        path = self._official_path(sample)
        if path.exists():
            return audio.read_wav(path)
        pcm = audio.decode_to_pcm16(read_official_audio(sample.metadata["official_audio"]["path"]))
        if self.settings.loudness_lufs is not None:  # recordings too: every question at one level
            pcm, _ = loudness.normalise_loudness(pcm, self.settings.loudness_lufs)
        audio.write_wav(path, pcm)
        return pcm

    async def _verify(self, samples: Sequence[Sample], texts: Callable[[Sample], Sequence[str]],
                      transcriber: Transcriber | None, result: Preparation, progress: bool) -> None:
        rules = self.settings.verify
        if self.official:
            self.verification_summary = {"configured": False, "reason": "not run: official recordings are used"}
            return
        if not rules.enabled or transcriber is None:
            reason = ("not measured: not enabled in the eval spec (tts.verify.enabled)" if not rules.enabled
                      else asr.NOT_CONFIGURED)
            self.verification_summary = {"configured": False, "reason": reason}
            for sample in samples:
                self._verified[sample.sample_id] = {"status": "not measured", "reason": reason}
            return
        bar = tqdm(total=len(samples), desc="round-trip verification", unit="sample", disable=not progress)

        async def one(sample: Sample) -> None:
            outcome = await self._verify_sample(sample, list(texts(sample)), transcriber)
            self._verified[sample.sample_id] = outcome
            result.verification[outcome["status"]] += 1
            if outcome["status"] == "excluded":
                result.excluded[sample.sample_id] = outcome["reason"]
            bar.update(1)

        try:
            async with asyncio.TaskGroup() as group:
                for sample in samples:
                    group.create_task(one(sample))
        finally:
            bar.close()
        counts = {status: result.verification.get(status, 0)
                  for status in ("passed", "resynthesized", "excluded", "flagged", "not measured")}
        self.verification_summary = {"configured": True, "transcriber": transcriber.describe(),
                                     "max_wer": rules.max_wer, "on_fail": rules.on_fail, "samples": len(samples),
                                     **counts, "excluded_ids": dict(sorted(result.excluded.items()))}
        if progress:
            tqdm.write(f"round-trip verification of {len(samples)} samples (WER <= {rules.max_wer:g}): "
                       f"{counts['passed']} passed, {counts['resynthesized']} re-synthesised with another voice, "
                       f"{counts['excluded']} excluded, {counts['flagged']} flagged, "
                       f"{counts['not measured']} not measured", file=sys.stderr)

    async def _verify_sample(self, sample: Sample, clip_texts: list[str], transcriber: Transcriber) -> dict[str, Any]:
        """Transcribe each clip of the sample and compare with its text; try the next voice while one fails."""
        rules = self.settings.verify
        candidates = self._candidates(sample)
        if rules.on_fail != "resynthesize":
            candidates = candidates[:1]
        tried: list[dict[str, Any]] = []
        for label in candidates:
            worst = 0.0
            for text in clip_texts:
                pcm = await asyncio.to_thread(self.synth(label).speech, text)
                heard = await transcriber.transcribe(pcm)
                if heard.text is None:
                    return {"status": "not measured", "reason": heard.error, "voice": label, "tried": tried}
                wer = word_error_rate(text, heard.text).wer
                if wer is None:
                    return {"status": "not measured", "reason": "empty source text", "voice": label, "tried": tried}
                worst = max(worst, wer)
            tried.append({"voice": label, "wer": worst})
            if worst <= rules.max_wer:
                if len(tried) > 1:
                    self._chosen[sample.sample_id] = label
                return {"status": "passed" if len(tried) == 1 else "resynthesized", "voice": label, "wer": worst,
                        "tried": tried}
        reason = (f"WER above {rules.max_wer:g} with every voice tried: "
                  + ", ".join(f"{t['voice']} {t['wer']:.2f}" for t in tried))
        if rules.on_fail == "keep":
            return {"status": "flagged", "reason": reason, "voice": tried[0]["voice"], "wer": tried[0]["wer"],
                    "tried": tried}
        return {"status": "excluded", "reason": reason, "tried": tried}

    # --- clips --------------------------------------------------------------------------------------------------

    def babble(self) -> np.ndarray:
        """The babble track (built once per run from espeak-ng clips in the audio cache)."""
        with self._lock:
            if self._babble is None:
                talkers = []
                for index, voice in enumerate(BABBLE_VOICES):
                    synth = Synthesizer(TTSSettings(engine="espeak-ng", voice=voice), self.cache_root,
                                        self._engines.get("espeak-ng") or ENGINES["espeak-ng"]())
                    order = BABBLE_TEXTS[index:] + BABBLE_TEXTS[:index]  # talkers say different things at once
                    talkers.append(audio.from_pcm16(b"".join(synth.speech(t) for t in order)).astype(np.float64))
                seed = self.perturbation.seed if self.perturbation else 0
                self._babble = perturb.babble_track(talkers, np.random.default_rng(seed))
            return self._babble

    def speech(self, sample: Sample, text: str) -> bytes:
        """The clip of `text` as `sample` is asked it: its voice (or official recording), perturbed. Thread-safe."""
        if self.official and text == sample.prompt_text:
            pcm = self._official_clip(sample)
        else:
            label = self.voice_of(sample) if not self.official else self.mix[0]
            pcm = self.synth(label).speech(text)
        if self.perturbation is not None:
            applied = perturb.apply(pcm, self.perturbation, f"{sample.sample_id}|{text}", babble=self.babble)
            pcm = applied.pcm
            if text == sample.prompt_text:
                self._measured[sample.sample_id] = applied.facts
        if text == sample.prompt_text:
            self._clips[sample.sample_id] = self._keep(sample, text, pcm)
        return pcm

    def _cached_path(self, sample: Sample, text: str) -> Path | None:
        """The cache file holding exactly this question's clip, or None when the clip exists only in memory."""
        if self.perturbation is not None:
            return None
        if self.official:
            return self._official_path(sample)
        return self.synth(self.voice_of(sample)).path(text)

    def _keep(self, sample: Sample, text: str, pcm: bytes) -> dict[str, Any]:
        """Keep the question clip in the run directory (linked from the cache where it is the cached file)."""
        clip: dict[str, Any] = {"text": text, "sha256": hashlib.sha256(pcm).hexdigest(),
                                "duration_s": round(audio.duration_s(pcm), 3), "path": None, "kept": None,
                                "loudness_lufs": loudness.measure_lufs(pcm)}
        cached = self._cached_path(sample, text)
        if self.keep_dir is None:
            if cached is not None and cached.is_file():
                clip.update(path=cached.relative_to(self.cache_root).as_posix(), kept="cache")
            return clip
        relative = f"audio/{sample.sample_id}.input.wav"
        target = self.keep_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            if cached is None or not cached.is_file():
                raise FileNotFoundError(cached)
            os.link(cached, target)  # no second copy of the bytes
        except OSError:  # not cached, another file system, or links not allowed
            audio.write_wav(target, pcm)
        clip.update(path=relative, kept="run")
        return clip

    # --- what is recorded ---------------------------------------------------------------------------------------

    def perturbation_facts(self) -> dict[str, Any] | None:
        """The run's perturbation for `spec.json` (None: clean audio)."""
        return self.perturbation.describe() if self.perturbation else None

    def record(self, sample: Sample) -> dict[str, Any]:
        """The journal fields of one sample: `voice`, `tts` (what spoke the question) and `perturbation`."""
        label = self.voice_of(sample)
        if self.official:
            ref = sample.metadata.get("official_audio") or {}
            tts: dict[str, Any] = {"source": OFFICIAL, "dataset": ref.get("dataset"), "revision": ref.get("revision"),
                                   "file_name": ref.get("file_name"),
                                   "loudness_target_lufs": self.settings.loudness_lufs}
        else:
            tts = {"source": "tts", **self.synth(label).describe()}
            if sample.sample_id in self._verified:
                tts["verification"] = self._verified[sample.sample_id]
        perturbation = None
        if self.perturbation is not None:
            perturbation = {**self.perturbation.describe(), **self._measured.get(sample.sample_id, {})}
        facts: dict[str, Any] = {"voice": label, "tts": tts, "perturbation": perturbation}
        clip = self._clips.get(sample.sample_id)
        if clip is not None:
            facts["input_clip"] = clip
            if clip["kept"] == "run":
                facts["input_audio"] = clip["path"]  # the field's name before InputClip (schema version 0)
        return facts

    def describe(self) -> dict[str, Any]:
        """The run's input audio for `spec.json["tts"]`: the same for every shard of a run."""
        if self.official:
            return {"source": OFFICIAL, "dataset": self.spec.source.get("official_audio"),
                    "revision": self.spec.source.get("official_audio_revision"), "sample_rate": audio.SAMPLE_RATE,
                    "loudness_target_lufs": self.settings.loudness_lufs}
        facts = self.synth(self.mix[0]).describe()  # one voice: exactly the cache's facts, to find its clips
        if len(self.mix) > 1 or self.settings.verify.fallback_voices:
            voices = [{"label": label, **self.synth(label).describe()} for label in self.mix]
            facts.update(engine=" + ".join(dict.fromkeys(v["engine"] for v in voices)),
                         voice=" + ".join(self.mix), voices=voices, source="tts")
            facts["assignment"] = f"sha256('{self.settings.seed}:<sample_id>') mod {len(self.mix)}"
            facts["fallback_voices"] = list(self.settings.verify.fallback_voices)
        return facts
