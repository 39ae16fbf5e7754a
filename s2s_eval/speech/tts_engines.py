"""TTS engines behind one small interface: espeak-ng (offline), pyttsx3 (the system's voices: SAPI5 on Windows,
NSSpeechSynthesizer on macOS, espeak-ng on Linux), edge-tts (neural, online) and any OpenAI-compatible
`/v1/audio/speech` endpoint (optional).

An engine turns (text, voice, rate) into 24 kHz mono PCM16. It says what it is (`name`, `version`, `identity()`),
so the cache key of a clip covers everything that changes its sound, and whether it can work right now (`check()`),
so an unreachable service is one clear line before any clip is attempted, not a thousand failures.

`rate` is words per minute for every engine. espeak-ng takes it as is; engines with a relative speed scale it
against `NOMINAL_RATE` (175 wpm = the engine's normal speed), and the scale they used is in `identity()`.

espeak-ng is driven through its command line, not pyttsx3: pyttsx3 keeps one global engine per process behind an
event loop (`runAndWait`) that is not safe to share between threads, and it can only write files; a subprocess per
clip parallelises across cores and returns the WAV on stdout. The `pyttsx3` engine is for machines without
espeak-ng; its global engine lives in a worker process of its own, so it never blocks or races the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import io
import multiprocessing
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit

from s2s_eval import audio
from s2s_eval.errors import UserError
from s2s_eval.speech.endpoint import EndpointConfig, describe_error, public_url

if TYPE_CHECKING:
    from s2s_eval.speech.tts import TTSSettings

__all__ = ["ALIASES", "ENGINES", "NOMINAL_RATE", "EdgeEngine", "Engine", "EspeakEngine", "OpenAISpeechEngine",
           "Pyttsx3Engine", "canonical_engine", "register"]

NOMINAL_RATE = 175  # words per minute that engines with a relative speed treat as their normal speed
CHOOSE_ANOTHER = "choose another engine: `tts: {engine: espeak-ng}` in the eval spec, or `--tts espeak`"


class Engine(Protocol):
    name: ClassVar[str]
    max_workers: int  # clips synthesised at once

    @property
    def version(self) -> str: ...

    def identity(self) -> dict[str, Any]:
        """Facts beyond engine, version, voice and rate that change the sound (they join the cache key)."""
        ...

    def check(self) -> None:
        """Raise `UserError` (one line) if the engine cannot synthesise now; cheap after the first call."""
        ...

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        """Speak `text` with `settings.voice` at `settings.rate`; return 24 kHz mono PCM16. Thread-safe."""
        ...


ENGINES: dict[str, Callable[[], Engine]] = {}
ALIASES: dict[str, str] = {}


def register(name: str, *aliases: str) -> Callable[[type], type]:
    """Class decorator: make an engine available under `name` (and short `aliases`, e.g. `--tts edge`)."""

    def decorate(cls: type) -> type:
        ENGINES[name] = cls
        ALIASES.update({alias: name for alias in aliases})
        return cls

    return decorate


def canonical_engine(name: str) -> str:
    """The registered name of an engine given by name or alias; unknown names are one clear error."""
    name = ALIASES.get(name, name)
    if name not in ENGINES:
        choices = ", ".join(sorted({*ENGINES, *ALIASES}))
        raise UserError(f"unknown TTS engine {name!r}; choose one of {choices}")
    return name


def _pool_size(cap: int | None = None) -> int:
    cores = os.cpu_count() or 1
    return min(cores, cap) if cap else cores


# --- espeak-ng ------------------------------------------------------------------------------------------------

@register("espeak-ng", "espeak")
class EspeakEngine:
    """espeak-ng through its command line (offline; formant synthesis, robotic but intelligible).

    Voices are espeak-ng voice names (`en-us`, `en-gb`, `en-gb-scotland`, ...) with an optional variant after a
    `+` (`en-us+f3`, `en-gb+m7`, `en-us+Alex`); `espeak-ng --voices=en` and `--voices=variant` list them.
    espeak-ng silently ignores an unknown variant, so variants are checked here.
    """

    name: ClassVar[str] = "espeak-ng"

    def __init__(self) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise UserError("espeak-ng is not installed; install it with `sudo apt-get install espeak-ng` "
                            "(or run `make setup`)")
        self.binary = binary
        self.max_workers = _pool_size()

    @functools.cached_property
    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
        return match.group(1) if match else out.strip()

    @functools.cached_property
    def variants(self) -> frozenset[str]:
        """Variant names (`f3`, `m7`, `Alex`, ...), as `+variant` takes them."""
        out = subprocess.run([self.binary, "--voices=variant"], capture_output=True, text=True, check=True).stdout
        return frozenset(m.group(1) for m in re.finditer(r"!v/(\S+)", out))

    def identity(self) -> dict[str, Any]:
        return {}

    def check(self) -> None:
        return None

    def _check_variant(self, voice: str) -> None:
        _, plus, variant = voice.partition("+")
        if plus and variant not in self.variants:
            raise UserError(f"espeak-ng has no voice variant {variant!r} (in {voice!r}); `espeak-ng --voices=variant` "
                            "lists them (e.g. f3, m7)")

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        self._check_variant(settings.voice)
        # Text goes through stdin, not argv: no length limit, and a text starting with "-" is not an option.
        done = subprocess.run(
            [self.binary, "-v", settings.voice, "-s", str(settings.rate), "--stdout"],
            input=text.encode("utf-8"), capture_output=True, timeout=120,
        )
        if done.returncode != 0 or not done.stdout:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            message = lines[-1] if lines else f"exit code {done.returncode}"
            raise UserError(f"espeak-ng failed for voice {settings.voice!r}: {message}")
        return audio.decode_to_pcm16(done.stdout)


# --- pyttsx3 -------------------------------------------------------------------------------------------------

PYTTSX3_TIMEOUT_S = 120.0
_PYTTSX3: Any = None  # the worker process's one pyttsx3 engine


def _pyttsx3_start() -> None:
    """Worker process initialiser: the process's global pyttsx3 engine, created once."""
    global _PYTTSX3
    import pyttsx3

    _PYTTSX3 = pyttsx3.init()


def _pyttsx3_facts() -> dict[str, Any]:
    """In the worker: the driver's name, the worker's pid, and the voices as (id, name, languages)."""
    voices = [(v.id, v.name or "", [str(lang) for lang in (v.languages or [])])
              for v in _PYTTSX3.getProperty("voices")]
    return {"driver": type(_PYTTSX3.proxy._driver).__module__.rsplit(".", 1)[-1], "pid": os.getpid(),
            "voices": voices}


PYTTSX3_TRIES = 3


def _pyttsx3_speak(text: str, voice_id: str, rate: int) -> bytes:
    """In the worker: `text` spoken to a temporary file (the only output pyttsx3 has); its bytes.

    pyttsx3 2.99's espeak driver writes the file when espeak reports the end of the message, before it adds the
    audio that came with that same callback: now and then a clip comes out with no samples at all (seen in CI).
    Such a clip is spoken again, and never returned: an empty question would be cached and asked as silence.
    """
    _PYTTSX3.setProperty("voice", voice_id)
    _PYTTSX3.setProperty("rate", rate)
    for _ in range(PYTTSX3_TRIES):
        with tempfile.TemporaryDirectory(prefix="s2s-pyttsx3-") as folder:
            path = Path(folder) / "clip.wav"  # SAPI5 and espeak write WAV; NSSpeechSynthesizer writes AIFF
            with contextlib.redirect_stdout(io.StringIO()):  # the espeak driver prints "Audio saved to ..."
                _PYTTSX3.save_to_file(text, str(path))
                _PYTTSX3.runAndWait()
            data = path.read_bytes() if path.exists() else b""
        if len(data) > 64:  # more than a bare WAV header: there are samples
            return data
    raise RuntimeError(f"no audio after {PYTTSX3_TRIES} tries")


@register("pyttsx3")
class Pyttsx3Engine:
    """The operating system's voices through `pyttsx3`: SAPI5 on Windows, NSSpeechSynthesizer on macOS, espeak-ng
    (libespeak-ng) on Linux. Offline, for machines without the espeak-ng command.

    Voices are pyttsx3 voice ids (`gmw/en-us` with espeak, a registry key with SAPI5, `com.apple.voice...` on
    macOS), the part after the last `/` (`en-us`), or a voice's name (`English (America)`, `Samantha`). `rate` is
    words per minute, as pyttsx3 takes it. pyttsx3 keeps one global engine per process behind a blocking event
    loop, so it runs in one worker process of its own; clips are spoken there one at a time.
    """

    name: ClassVar[str] = "pyttsx3"

    def __init__(self) -> None:
        try:
            importlib.metadata.version("pyttsx3")
        except importlib.metadata.PackageNotFoundError:
            raise UserError(f"pyttsx3 is not installed; `pip install pyttsx3`, or {CHOOSE_ANOTHER}") from None
        self.max_workers = 1  # one worker process; more threads would only queue behind it
        self._pool: ProcessPoolExecutor | None = None
        self._facts: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_pyttsx3_start)
            pool = self._pool
        try:
            return pool.submit(fn, *args).result(timeout=PYTTSX3_TIMEOUT_S)
        except FutureTimeout:
            raise UserError(f"pyttsx3 did not finish within {PYTTSX3_TIMEOUT_S:g} s; {CHOOSE_ANOTHER}") from None
        except Exception as exc:  # the driver failed to load (no libespeak-ng, no SAPI5) or the worker died
            raise UserError(f"pyttsx3 failed: {type(exc).__name__}: {str(exc)[:200]}; {CHOOSE_ANOTHER}") from None

    @property
    def facts(self) -> dict[str, Any]:
        if self._facts is None:
            self._facts = self._call(_pyttsx3_facts)
        return self._facts

    @property
    def version(self) -> str:
        return importlib.metadata.version("pyttsx3")

    def identity(self) -> dict[str, Any]:
        return {"driver": self.facts["driver"]}

    def check(self) -> None:
        self.facts  # noqa: B018  (starts the worker: a missing driver is one line here, not one per clip)

    def worker_pid(self) -> int:
        """The process that owns pyttsx3's global engine (never the runner's)."""
        return int(self.facts["pid"])

    def voice_id(self, voice: str) -> str:
        """The pyttsx3 voice id that `voice` names (id, id tail or name); unknown voices are one clear error."""
        voices = self.facts["voices"]
        for match in (lambda v: v[0] == voice, lambda v: v[0].rsplit("/", 1)[-1].lower() == voice.lower(),
                      lambda v: v[1].lower() == voice.lower()):
            found = [v[0] for v in voices if match(v)]
            if found:
                return str(found[0])
        some = ", ".join(v[0] for v in voices[:6])
        raise UserError(f"pyttsx3 ({self.facts['driver']}) has no voice {voice!r}; it has {len(voices)} voices, "
                        f"e.g. {some}")

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        data = self._call(_pyttsx3_speak, text, self.voice_id(settings.voice), settings.rate)
        pcm = audio.decode_to_pcm16(data) if data else b""
        if not pcm:  # a bare header decodes to nothing: never cache silence as a question
            raise UserError(f"pyttsx3 wrote no audio for voice {settings.voice!r}")
        return pcm

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


# --- edge-tts -------------------------------------------------------------------------------------------------

REACHABILITY_TIMEOUT_S = 4.0  # DNS + TCP connect, all told: an offline machine hears "unreachable" within 5 s
EDGE_ATTEMPTS = 4


def _reachable(host: str, port: int, timeout_s: float) -> str | None:
    """None if a TCP connection to host:port opens within `timeout_s` (DNS included), else why not."""
    deadline = time.monotonic() + timeout_s
    # getaddrinfo cannot be given a timeout and can hang on a broken resolver: run it in a thread and stop waiting.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        addresses = future.result(timeout=timeout_s)
    except FutureTimeout:
        return f"DNS lookup of {host} timed out after {timeout_s:g} s"
    except OSError as exc:
        return f"DNS lookup of {host} failed ({exc.strerror or exc})"
    finally:
        pool.shutdown(wait=False)
    last = "no address"
    for family, kind, proto, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"connecting to {host}:{port} timed out after {timeout_s:g} s"
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(remaining)
                sock.connect(address)
            return None
        except TimeoutError:
            last = f"connecting to {host}:{port} timed out after {timeout_s:g} s"
        except OSError as exc:
            last = f"connecting to {host}:{port} failed ({exc.strerror or exc})"
    return last


def _edge_rate(rate: int) -> str:
    percent = round((rate / NOMINAL_RATE - 1) * 100)
    return f"{percent:+d}%"


@register("edge-tts", "edge")
class EdgeEngine:
    """Microsoft Edge's online neural voices through the `edge-tts` package (needs the internet, no key).

    Voices are Edge voice names (`en-US-AriaNeural`, `en-GB-RyanNeural`; `edge-tts --list-voices` lists them).
    Transient failures (connection errors, timeouts, 429/5xx, a stream that ends without audio) are retried with
    jittered exponential backoff; anything else fails the clip at once.
    """

    name: ClassVar[str] = "edge-tts"

    def __init__(self) -> None:
        try:
            import edge_tts
        except ImportError:
            raise UserError("edge-tts is not installed; `pip install edge-tts` (it is in the project's "
                            f"dependencies), or {CHOOSE_ANOTHER}") from None
        self._edge = edge_tts
        self.max_workers = 4  # a free public service: a few clips at a time
        self._checked = False

    @property
    def version(self) -> str:
        return str(self._edge.__version__)

    @property
    def url(self) -> str:
        return str(self._edge.communicate.WSS_URL)

    def identity(self) -> dict[str, Any]:
        return {"rate_scale": f"relative to {NOMINAL_RATE} wpm"}

    def check(self) -> None:
        if self._checked:
            return
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme in ("wss", "https") else 80)
        problem = _reachable(host, port, REACHABILITY_TIMEOUT_S)
        if problem:
            raise UserError(f"edge-tts: the Microsoft Edge speech service is unreachable ({problem}); connect to "
                            f"the internet, or {CHOOSE_ANOTHER}")
        self._checked = True

    def _transient(self, exc: BaseException) -> bool:
        import aiohttp

        if isinstance(exc, aiohttp.ClientResponseError):
            return exc.status in (408, 429) or exc.status >= 500
        return isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | TimeoutError
                          | self._edge.exceptions.NoAudioReceived | self._edge.exceptions.WebSocketError)

    async def _speak(self, text: str, settings: TTSSettings) -> bytes:
        communicate = self._edge.Communicate(text, settings.voice, rate=_edge_rate(settings.rate),
                                             connect_timeout=10, receive_timeout=60)
        chunks = [chunk["data"] async for chunk in communicate.stream() if chunk["type"] == "audio"]
        return b"".join(chunks)

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        self.check()
        rng = random.Random(f"{settings.voice}:{text}")
        for attempt in range(1, EDGE_ATTEMPTS + 1):
            try:
                mp3 = asyncio.run(self._speak(text, settings))
                return audio.decode_to_pcm16(mp3)
            except ValueError as exc:  # edge-tts validates voice and rate strings with ValueError
                raise UserError(f"edge-tts rejected voice {settings.voice!r}: {exc}") from None
            except Exception as exc:
                if not self._transient(exc) or attempt == EDGE_ATTEMPTS:
                    detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                    hint = " (is the voice name right? `edge-tts --list-voices`)" if isinstance(
                        exc, self._edge.exceptions.NoAudioReceived) else ""
                    raise UserError(f"edge-tts failed for voice {settings.voice!r} after {attempt} attempt"
                                    f"{'s' if attempt > 1 else ''}: {detail}{hint}") from None
                time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + rng.random()))
        raise AssertionError("unreachable")


# --- OpenAI-compatible /v1/audio/speech -----------------------------------------------------------------------

SPEECH_ENV_PREFIX = "S2S_TTS"


class SpeechConfig(EndpointConfig):
    """An OpenAI-compatible `/v1/audio/speech` endpoint."""

    model: str = "gpt-4o-mini-tts"
    concurrency: int = 4


def _speech_config() -> SpeechConfig:
    return SpeechConfig.from_env(SPEECH_ENV_PREFIX) or SpeechConfig()


@register("openai")
class OpenAISpeechEngine:
    """Any OpenAI-compatible `/v1/audio/speech` endpoint (optional; paid on api.openai.com).

    Configured like the judge and the transcription backend, by environment: `S2S_TTS_BASE_URL` (default
    https://api.openai.com/v1), `S2S_TTS_MODEL` (default gpt-4o-mini-tts), `S2S_TTS_API_KEY_ENV` (the name of the
    variable holding the key, default OPENAI_API_KEY), `S2S_TTS_TIMEOUT_S`, `S2S_TTS_MAX_RETRIES`,
    `S2S_TTS_CONCURRENCY`. Voices are the service's (`alloy`, `coral`, `sage`, ...). The SDK retries transient
    failures only. The model name is the engine version: pin a dated snapshot for reproducible audio.
    """

    name: ClassVar[str] = "openai"

    def __init__(self) -> None:
        self.config = _speech_config()
        self.max_workers = self.config.concurrency
        self._client: Any = None

    @property
    def version(self) -> str:
        return str(self.config.model)

    def identity(self) -> dict[str, Any]:
        return {"base_url": public_url(self.config.base_url), "speed": f"rate / {NOMINAL_RATE}"}

    def check(self) -> None:
        missing = self.config.missing_key()
        if missing:
            raise UserError(f"openai TTS: {missing} (or point S2S_TTS_BASE_URL at a loopback server); "
                            f"or {CHOOSE_ANOTHER}")

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self.config.sync_client()
        return self._client

    def synthesize(self, text: str, settings: TTSSettings) -> bytes:
        self.check()
        speed = min(4.0, max(0.25, settings.rate / NOMINAL_RATE))
        try:
            reply = self._get_client().audio.speech.create(model=self.config.model, voice=settings.voice, input=text,
                                                           response_format="wav", speed=speed)
            data = reply.read()
        except Exception as exc:  # one line, no secret; the SDK has already retried what is transient
            raise UserError(describe_error(exc, self.config, "the TTS endpoint")) from None
        try:
            return audio.decode_to_pcm16(data)
        except Exception:
            raise UserError(f"the TTS endpoint returned {len(data)} bytes that are not a WAV file") from None
