"""The local transcription backend: faster-whisper (CTranslate2 Whisper) on this machine, CPU int8 by default.

`S2S_ASR_BACKEND=faster-whisper` turns it on; `S2S_ASR_MODEL` is a model name (`tiny.en`, `small.en`,
`large-v3`, or a Hub id such as `Systran/faster-whisper-small.en`), which faster-whisper downloads from the Hugging
Face Hub once into its cache, or a model directory (`model.bin`, `config.json`, `tokenizer.json`,
`vocabulary.*`), which is read as is and needs no network. A directory alone selects this backend.

Transcription runs off the event loop, on `concurrency` worker threads (default 1: each worker is a CTranslate2
replica on the same cores). The model is loaded once, on first use, in a worker. Whatever changes the text is the
backend's identity: model (and the SHA-256 of its weights, so two directories holding different weights never
share cached transcriptions), compute type, device, beam size, language, and the versions of faster-whisper and
CTranslate2. It joins the cache key of every transcription and is recorded in `spec.json`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from s2s_eval import audio
from s2s_eval.speech.asr import FASTER_WHISPER, AsrConfig, Transcriber, Transcription

__all__ = ["WHISPER_RATE", "LocalTranscriber", "model_directory"]

WHISPER_RATE = 16_000


def model_directory(model: str) -> Path:
    """The directory holding `model`: itself when it is one, else faster-whisper's download (or its Hub cache
    when offline). Raises with a one-line reason when neither is there."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"{path} holds no model.bin: not a faster-whisper (CTranslate2) model directory")
        return path
    from faster_whisper.utils import download_model

    return Path(download_model(model))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _waveform(data: bytes) -> np.ndarray:
    """A WAV (or any soundfile-readable) file as 16 kHz mono float32, what Whisper takes."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio.resample(samples.mean(axis=1), rate, WHISPER_RATE)


class LocalTranscriber(Transcriber):
    """faster-whisper on this machine. Share it between the tasks of a run; `aclose()` stops its workers."""

    def __init__(self, config: AsrConfig, *, cache_dir: Path | None = None) -> None:
        if config.backend != FASTER_WHISPER:
            raise ValueError(f"LocalTranscriber needs backend {FASTER_WHISPER!r}, not {config.backend!r}")
        super().__init__(config, cache_dir)
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="faster-whisper")
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._load_lock = threading.Lock()
        self._model: Any = None
        self._model_path: Path | None = None
        self._model_sha256: str | None = None
        self._load_error: str | None = None

    @property
    def cpu_threads(self) -> int:
        return self.config.cpu_threads or min(4, os.cpu_count() or 1)

    def _resolve(self) -> None:
        """Find the model directory and hash its weights, once; a failure is kept as one line."""
        with self._load_lock:
            if self._model_path is not None or self._load_error is not None:
                return
            try:
                path = model_directory(self.config.model)
                self._model_sha256 = _sha256(path / "model.bin")
                self._model_path = path
            except Exception as exc:  # no network, no cache, a wrong path: one clear line, every sample
                detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                self._load_error = (f"not measured: the faster-whisper model {self.config.model!r} is not available "
                                    f"({detail}); on a machine without the internet, set S2S_ASR_MODEL to a "
                                    "local model directory (see the README)")

    def _load(self) -> Any:
        self._resolve()
        with self._load_lock:
            if self._model is None and self._load_error is None:
                from faster_whisper import WhisperModel

                try:
                    self._model = WhisperModel(str(self._model_path), device=self.config.device,
                                               compute_type=self.config.compute_type, cpu_threads=self.cpu_threads,
                                               num_workers=self.config.concurrency)
                except Exception as exc:  # e.g. a compute type this CPU lacks
                    self._load_error = f"not measured: faster-whisper could not load {self._model_path}: {exc}"
            return self._model

    def identity(self) -> dict[str, Any]:
        """What changes a transcription besides the audio (the cache key and `spec.json` carry it)."""
        self._resolve()
        return {"backend": FASTER_WHISPER, "model": self.config.model, "model_sha256": self._model_sha256,
                "compute_type": self.config.compute_type, "device": self.config.device,
                "beam_size": self.config.beam_size, "language": self.config.language,
                "versions": {name: importlib.metadata.version(name) for name in ("faster-whisper", "ctranslate2")}}

    def describe(self) -> dict[str, Any]:
        """The backend for `spec.json`: identity, workers and threads, and the WER normalisation."""
        facts = {"kind": FASTER_WHISPER, **self.identity(), "concurrency": self.config.concurrency,
                 "cpu_threads": self.cpu_threads, "model_path": str(self._model_path) if self._model_path else None,
                 **self._facts()}
        if self._load_error:
            facts["error"] = self._load_error
        return facts

    def _run(self, data: bytes) -> Transcription:
        model = self._load()
        if model is None:
            return Transcription(None, False, self._load_error)
        try:
            waveform = _waveform(data)
        except Exception as exc:
            return Transcription(None, False, f"not measured: the audio is not readable ({type(exc).__name__})")
        segments, _ = model.transcribe(waveform, language=self.config.language, beam_size=self.config.beam_size)
        return Transcription(" ".join(segment.text.strip() for segment in segments).strip(), False, None)

    async def transcribe(self, audio: bytes | str | Path) -> Transcription:
        """Transcribe PCM16 (24 kHz mono) bytes or an audio file. Safe to cancel."""
        await asyncio.to_thread(self._resolve)  # the identity (cache key) needs the weights' hash: off the loop
        return await super().transcribe(audio)

    async def _transcribe(self, name: str, data: bytes) -> Transcription:
        """One transcription on a worker thread. Safe to cancel: the worker finishes that clip and drops it."""
        async with self._semaphore:
            self._stats["requests"] += 1
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool, self._run, data)
            except Exception as exc:  # a decoding failure is this sample's "not measured", never the run's crash
                return Transcription(None, False, f"not measured: faster-whisper failed: {type(exc).__name__}: "
                                     f"{str(exc)[:200]}")

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
