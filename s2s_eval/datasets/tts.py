"""Text-to-speech behind one interface, with a content-addressed cache of 24 kHz mono PCM16 clips.

A clip's cache key is the hash of everything that changes its sound: text, engine, engine version, voice and
rate. The same key always maps to the same file, so repeat runs, the runner and the embedded server share clips.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from s2s_eval import audio, paths
from s2s_eval.errors import UserError


@dataclass(frozen=True)
class TTSSettings:
    """What a clip is spoken with. `rate` is in words per minute."""

    engine: str = "espeak-ng"
    voice: str = "en-us"
    rate: int = 175


class EspeakEngine:
    """espeak-ng through its command line (offline; formant synthesis, robotic but intelligible)."""

    name = "espeak-ng"

    def __init__(self) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise UserError("espeak-ng is not installed; install it with `sudo apt-get install espeak-ng` "
                            "(or run `make setup`)")
        self.binary = binary

    @functools.cached_property
    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
        return match.group(1) if match else out.strip()

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        """Speak `text`; return 24 kHz mono PCM16. Safe to call from several threads at once."""
        # Text goes through stdin, not argv: no length limit, and a text starting with "-" is not an option.
        done = subprocess.run(
            [self.binary, "-v", settings.voice, "-s", str(settings.rate), "--stdout"],
            input=text.encode("utf-8"), capture_output=True, timeout=120,
        )
        if done.returncode != 0 or not done.stdout:
            message = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
            raise UserError(f"espeak-ng failed for voice {settings.voice!r}: {message}")
        return audio.decode_to_pcm16(done.stdout)


ENGINES = {"espeak-ng": EspeakEngine, "espeak": EspeakEngine}


def spoken_form(text: str) -> str:
    """Collapse line breaks and list markup into sentences a TTS voice reads naturally."""
    text = re.sub(r"\s*\n\s*-\s*", ", ", text)  # "Options:\n- Yes\n- No" -> "Options:, Yes, No"
    text = text.replace(":,", ":")
    text = re.sub(r"\s*\n\s*", " ", text)
    text = re.sub(r"\s{2,}", " ", text).strip()
    return text if text.endswith((".", "?", "!")) else text + "."


class Synthesizer:
    """Speaks texts with one engine and settings, through the on-disk cache."""

    def __init__(self, settings: TTSSettings, cache_root: Path | None = None) -> None:
        if settings.engine not in ENGINES:
            raise UserError(f"unknown TTS engine {settings.engine!r}; choose one of {', '.join(sorted(ENGINES))}")
        self.settings = settings
        self.engine = ENGINES[settings.engine]()
        self.root = (cache_root or paths.cache_dir()) / "audio"

    def describe(self) -> dict[str, str | int]:
        """The settings and engine version, as recorded in a run's spec."""
        return {**asdict(self.settings), "engine_version": self.engine.version, "sample_rate": audio.SAMPLE_RATE}

    def key(self, text: str) -> str:
        payload = json.dumps({"text": text, **self.describe()}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def path(self, text: str) -> Path:
        key = self.key(text)
        return self.root / self.settings.engine / key[:2] / f"{key}.wav"

    def cached(self, text: str) -> bool:
        return self.path(text).exists()

    def speech(self, text: str) -> bytes:
        """The clip for `text`: from the cache, or synthesised and stored."""
        path = self.path(text)
        if path.exists():
            return audio.read_wav(path)
        pcm = self.engine.synthesize(text, self.settings)
        audio.write_wav(path, pcm)
        return pcm

    def prepare(self, texts: list[str], workers: int | None = None, progress: bool = True) -> int:
        """Synthesise every text not yet cached, on all cores; return how many were synthesised."""
        missing = sorted({t for t in texts if not self.cached(t)})
        if not missing:
            return 0
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            done = pool.map(self.speech, missing)
            for _ in tqdm(done, total=len(missing), desc=f"TTS ({self.settings.engine})", unit="clip",
                          disable=not progress):
                pass
        return len(missing)

