"""Audio-vs-transcript consistency: transcribe the model's output audio and compare it with the model's own
transcript of that answer (the text the graders score), as a word error rate.

A speech-to-speech model reports a transcript of what it says, and every grader trusts it. If the audio says
something else, the scores describe an answer the user never heard. The optional transcription backend is either
any OpenAI-compatible `/v1/audio/transcriptions` endpoint (`gpt-4o-transcribe`, `whisper-1`, a whisper server), or
faster-whisper on this machine (`asr_local.py`: offline, CPU int8). Without one, consistency is "not measured",
never a number.

WER = (substitutions + deletions + insertions) / words in the reference, computed with `jiwer` after Whisper's
English text normaliser (`whisper-normalizer`, the one the Open ASR Leaderboard uses) on both sides. The reference
is the model's transcript, the hypothesis the backend's transcription of the audio: 0.0 means the audio says
exactly what the transcript claims. The backend's own errors count too, so compare WERs measured with the same
backend and the same normaliser version (both are in `spec.json`).

Transcriptions are cached under `<cache dir>/asr/` by the audio's SHA-256 and everything that changes the text:
model and language for an endpoint; model (with its weights' hash), compute type, decoding settings and library
versions for the local backend. Errors are not cached.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import soundfile as sf
from pydantic import Field, model_validator

from s2s_eval.audio import SAMPLE_RATE
from s2s_eval.speech.endpoint import EndpointClient, EndpointConfig, describe_error
from s2s_eval.speech.response_cache import ResponseCache, request_key

__all__ = ["ENV_PREFIX", "NOT_CONFIGURED", "AsrConfig", "Consistency", "EndpointTranscriber",
           "Transcriber", "Transcription", "load_transcriber", "measure_consistency", "normalisation", "normalise",
           "normalise_for_wer", "word_error_rate"]

ENV_PREFIX = "S2S_ASR"
NOT_CONFIGURED = (f"not measured: no transcription backend configured (set {ENV_PREFIX}_BACKEND, "
                  f"{ENV_PREFIX}_BASE_URL and/or {ENV_PREFIX}_MODEL)")
_CACHE_FORMAT = 1
FASTER_WHISPER = "faster-whisper"


class AsrConfig(EndpointConfig):
    """A transcription backend: an OpenAI-compatible endpoint (`backend: openai`) or faster-whisper on this machine
    (`backend: faster-whisper`, where `model` is a model name the Hub serves, such as `tiny.en` or `small.en`, or a
    local model directory). `base_url` and the key matter to the endpoint only; `compute_type`, `device`,
    `cpu_threads` and `beam_size` to the local backend only, whose `concurrency` is its number of worker threads."""

    backend: Literal["openai", "faster-whisper"] = "openai"
    model: str = "gpt-4o-transcribe"
    language: str | None = None  # ISO-639-1 hint such as "en"; None lets the backend detect it
    compute_type: str = "int8"
    device: str = "cpu"
    cpu_threads: int = Field(default=0, ge=0)  # 0: one per core, at most 4 (CTranslate2's own default is 4)
    beam_size: int = Field(default=5, ge=1)

    env_fields: ClassVar[dict[str, str]] = {
        **EndpointConfig.env_fields, "LANGUAGE": "language", "BACKEND": "backend", "COMPUTE_TYPE": "compute_type",
        "DEVICE": "device", "CPU_THREADS": "cpu_threads", "BEAM_SIZE": "beam_size"}
    switches: ClassVar[tuple[str, ...]] = ("base_url", "model", "backend")

    @model_validator(mode="before")
    @classmethod
    def _local_defaults(cls, values: Any) -> Any:
        """A model directory means the local backend; the local backend defaults to tiny.en and one worker."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        model = values.get("model")
        if "backend" not in values and isinstance(model, str) and (Path(model).expanduser() / "model.bin").is_file():
            values["backend"] = FASTER_WHISPER
        if values.get("backend") == FASTER_WHISPER:
            values.setdefault("model", "tiny.en")
            values.setdefault("concurrency", 1)  # each worker is a CTranslate2 replica on the same cores
        return values

    @classmethod
    def from_env(cls, prefix: str = ENV_PREFIX, env: Mapping[str, str] | None = None) -> AsrConfig | None:
        """`S2S_ASR_BACKEND` (`openai` or `faster-whisper`), `S2S_ASR_MODEL`, `S2S_ASR_LANGUAGE`,
        `S2S_ASR_CONCURRENCY`; for an endpoint `S2S_ASR_BASE_URL`, `S2S_ASR_API_KEY_ENV`, `S2S_ASR_TIMEOUT_S`,
        `S2S_ASR_MAX_RETRIES`; locally `S2S_ASR_COMPUTE_TYPE`, `S2S_ASR_DEVICE`, `S2S_ASR_CPU_THREADS`,
        `S2S_ASR_BEAM_SIZE`. None if backend, base URL and model are all unset. `S2S_ASR_MODEL` naming a directory
        that holds a `model.bin` selects faster-whisper by itself."""
        return super().from_env(prefix, env)

    def public(self) -> dict[str, Any]:
        if self.backend == "openai":
            drop = ("compute_type", "device", "cpu_threads", "beam_size")
        else:
            drop = ("base_url", "api_key_env", "timeout_s", "max_retries")
        return {k: v for k, v in super().public().items() if k not in drop}


# --- normalisation -------------------------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}
_FILLERS = {"um", "umm", "uh", "uhm", "uhh", "er", "erm", "ah", "hmm", "hm", "mm", "mhm"}
_SPELLINGS = {"ok": "okay"}
_CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds", "¥": "yen"}
_NUMBER_RE = re.compile(r"(?<!\w)(\d+)(?:\.(\d+))?(st|nd|rd|th)?(?![\d])")
_CURRENCY_RE = re.compile(r"([$€£¥])\s?(\d+(?:\.\d+)?)")


def _int_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (f" {_ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{_ONES[n // 100]} hundred" + (f" {_int_words(n % 100)}" if n % 100 else "")
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return f"{_int_words(head)} {name}" + (f" {_int_words(rest)}" if rest else "")
    raise AssertionError(n)


def _digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text)


def _number_words(match: re.Match[str]) -> str:
    whole, fraction, ordinal = match.groups()
    if (len(whole) > 1 and whole.startswith("0")) or len(whole) > 15:
        words = _digits(whole)  # "007", account numbers: read digit by digit
    else:
        words = _int_words(int(whole))
    if fraction is not None:
        return f" {words} point {_digits(fraction)} "
    if ordinal:
        head, _, last = words.rpartition(" ")
        last = _ORDINALS.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
        words = f"{head} {last}".strip()
    return f" {words} "


def normalise_for_wer(text: str) -> str:
    """Text reduced to comparable words, the same way on both sides (the project's normaliser before Whisper's:
    WER no longer uses it, but official recordings are matched to rows with it, and the benchmark compares both).

    In order: Unicode NFKC and lowercase; thousands separators dropped ("1,000" -> "1000"); currency symbols
    become words after the amount ("$5" -> "5 dollars"), "%" "percent", "&" "and"; numbers in digits become
    words ("42" -> "forty two", "3.5" -> "three point five", "21st" -> "twenty first", "007" digit by digit), so
    "42" and "forty-two" compare equal; apostrophes are removed ("don't" -> "dont"); hyphens, slashes and all
    other punctuation become spaces; fillers (um, uh, er, hmm, ...) are dropped; "ok" -> "okay"; whitespace is
    collapsed. Not handled: number words in another form than these ("twenty twenty-four" for 2024, "a hundred"),
    spelling variants (colour/color), and abbreviations (Dr., St.).
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    text = _CURRENCY_RE.sub(lambda m: f" {m.group(2)} {_CURRENCY[m.group(1)]} ", text)
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _NUMBER_RE.sub(_number_words, text)
    text = text.replace("'", "")
    text = re.sub(r"[^\w\s]|_", " ", text)
    words = [_SPELLINGS.get(w, w) for w in text.split() if w not in _FILLERS]
    return " ".join(words)


@functools.cache
def _whisper_normaliser() -> Any:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalise(text: str) -> str:
    """Text as WER compares it: Whisper's English normaliser (`whisper-normalizer`), as the Open ASR Leaderboard
    applies it. It lowercases, drops punctuation and fillers (um, uh, hmm), expands contractions ("don't" ->
    "do not"), standardises British spellings and abbreviations ("colour" -> "color", "Dr." -> "doctor"), and
    writes numbers as digits whichever way they came ("forty-two" and "42" -> "42", "twenty first" -> "21st",
    "three point five" -> "3.5", "five dollars" -> "$5"), so digits against words is not an error. Known gap: a
    clock time in digits against words ("10:30" -> "10 30", "ten thirty" -> "1030"), leading zeros ("007" -> "7",
    "double o seven" -> "007"), "ok" against "okay".

    One step comes first: typographic apostrophes (U+2018, U+2019) become "'", which the library leaves as a word
    break ("It’s" -> "it s", against "it is"); models' transcripts are full of them."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(_whisper_normaliser()(text).split())


@functools.cache
def normalisation() -> str:
    """The normaliser's name and version, as `spec.json` records it (WERs across versions differ)."""
    return (f"whisper-normalizer {importlib.metadata.version('whisper-normalizer')} EnglishTextNormalizer "
            "(typographic apostrophes as ' first)")


# --- results -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transcription:
    """The backend's transcription of some audio; `text` None (with `error`) if there is none."""

    text: str | None
    cached: bool
    error: str | None


@dataclass(frozen=True)
class Consistency:
    """Audio-vs-transcript WER; `wer` None when not measured, with `reason` saying why."""

    wer: float | None
    reason: str  # "measured" or "not measured: ..."
    asr_text: str | None = None  # the backend's transcription, as returned
    reference: str = ""  # the model's transcript, normalised
    hypothesis: str = ""  # the backend's transcription, normalised
    reference_words: int = 0
    substitutions: int | None = None
    deletions: int | None = None
    insertions: int | None = None
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def word_error_rate(model_transcript: str, asr_transcript: str, *, legacy: bool = False) -> Consistency:
    """WER of the backend's transcription (`asr_transcript`) against the model's transcript, both normalised
    (with `normalise`; `legacy=True`: with the project's former `normalise_for_wer`, for comparisons only)."""
    import jiwer

    normaliser = normalise_for_wer if legacy else normalise
    reference, hypothesis = normaliser(model_transcript), normaliser(asr_transcript)
    base = {"asr_text": asr_transcript, "reference": reference, "hypothesis": hypothesis,
            "reference_words": len(reference.split())}
    if not reference:
        if not hypothesis:
            return Consistency(wer=0.0, reason="measured", substitutions=0, deletions=0, insertions=0, **base)
        # WER divides by the reference length: undefined here, and no number would be honest.
        return Consistency(wer=None, reason=f"not measured: the model's transcript is empty but the audio has "
                           f"{len(hypothesis.split())} words", insertions=len(hypothesis.split()), **base)
    out = jiwer.process_words(reference, hypothesis)
    return Consistency(wer=round(float(out.wer), 6), reason="measured", substitutions=out.substitutions,
                       deletions=out.deletions, insertions=out.insertions, **base)


# --- the backend ---------------------------------------------------------------------------------------------

def _wav_bytes(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2"), SAMPLE_RATE, subtype="PCM_16",
             format="WAV")
    return buffer.getvalue()


def _audio_file(audio: bytes | str | Path) -> tuple[str, bytes] | None:
    """(file name, file bytes) to upload; None when there is no audio. Raw bytes are 24 kHz mono PCM16."""
    if isinstance(audio, str | Path):
        path = Path(audio)
        data = path.read_bytes()
        return (path.name, data) if data else None
    pcm = bytes(audio)
    return ("output.wav", _wav_bytes(pcm)) if len(pcm) >= 2 else None


class Transcriber:
    """What every transcription backend shares: the response cache, counters, and WER against a transcript.
    A backend supplies `identity()` (what besides the audio changes its text: it joins the cache key),
    `describe()` and `_transcribe(name, wav bytes)`."""

    config: AsrConfig

    def __init__(self, config: AsrConfig, cache_dir: Path | None) -> None:
        from s2s_eval import paths

        self.config = config
        self._cache = ResponseCache((cache_dir or paths.cache_dir()) / "asr")
        self._stats: Counter[str] = Counter()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        return None

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def _facts(self) -> dict[str, Any]:
        return {"metric": "wer (jiwer)", "reference": "model transcript", "normalisation": normalisation()}

    async def _transcribe(self, name: str, data: bytes) -> Transcription:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Counts so far: `requests` sent, `cache_hits`, `errors`."""
        return {key: self._stats[key] for key in ("requests", "cache_hits", "errors")}

    async def transcribe(self, audio: bytes | str | Path) -> Transcription:
        """Transcribe PCM16 (24 kHz mono) bytes or an audio file. Safe to cancel."""
        try:
            upload = _audio_file(audio)
        except OSError as exc:
            return Transcription(None, False, f"not measured: cannot read the audio file: {exc.strerror or exc}")
        if upload is None:
            return Transcription(None, False, "not measured: no output audio")
        name, data = upload
        key = request_key({"cache_format": _CACHE_FORMAT, **self.identity(),
                           "audio_sha256": hashlib.sha256(data).hexdigest()})
        entry = self._cache.get(key)
        if entry is not None and isinstance(entry.get("text"), str):
            self._stats["cache_hits"] += 1
            return Transcription(entry["text"], True, None)
        result = await self._transcribe(name, data)
        if result.text is None:
            self._stats["errors"] += 1
            return result
        self._cache.put(key, {"cache_format": _CACHE_FORMAT, **self.identity(), "text": result.text})
        return result

    async def consistency(self, audio: bytes | str | Path, model_transcript: str | None) -> Consistency:
        """WER between what the audio says (per the backend) and the model's transcript. Safe to cancel."""
        transcription = await self.transcribe(audio)
        if transcription.text is None:
            return Consistency(wer=None, reason=transcription.error or "not measured")
        result = word_error_rate(model_transcript or "", transcription.text)
        return Consistency(**{**result.as_dict(), "cached": transcription.cached})


class EndpointTranscriber(EndpointClient, Transcriber):
    """A transcription backend over one OpenAI-compatible endpoint. Share it between the tasks of one event loop;
    close it with `aclose()` (or `async with`)."""

    config: AsrConfig

    def __init__(self, config: AsrConfig, *, cache_dir: Path | None = None) -> None:
        EndpointClient.__init__(self, config, cache_dir, "asr")

    def identity(self) -> dict[str, Any]:
        return {"model": self.config.model, "language": self.config.language}  # the cache key before backends

    def describe(self) -> dict[str, Any]:
        """What goes into a run's `spec.json`: endpoint (no credentials), model, language, normalisation."""
        return {"kind": "openai-audio-transcriptions", **self.config.public(), **self._facts()}

    async def _transcribe(self, name: str, data: bytes) -> Transcription:
        missing = self.config.missing_key()
        if missing:
            return Transcription(None, False, f"not measured: {missing}")
        extra = {"language": self.config.language} if self.config.language else {}
        async with self._semaphore:
            self._stats["requests"] += 1
            try:
                result = await self._get_client().audio.transcriptions.create(
                    model=self.config.model, file=(name, data), response_format="json", **extra)
            except Exception as exc:  # a backend failure is this sample's "not measured", never the run's crash
                return Transcription(None, False,
                                     f"not measured: {describe_error(exc, self.config, 'the transcription backend')}")
        text = result if isinstance(result, str) else getattr(result, "text", None)
        if not isinstance(text, str):
            return Transcription(None, False, "not measured: the transcription reply has no text")
        return Transcription(text, False, None)


async def measure_consistency(transcriber: Transcriber | None, audio: bytes | str | Path | None,
                              model_transcript: str | None) -> Consistency:
    """`transcriber.consistency(...)`, or "not measured" with the reason when there is no backend or no audio."""
    if transcriber is None:
        return Consistency(wer=None, reason=NOT_CONFIGURED)
    if audio is None:
        return Consistency(wer=None, reason="not measured: no output audio")
    return await transcriber.consistency(audio, model_transcript)


def load_transcriber(env: Mapping[str, str] | None = None, *, cache_dir: Path | None = None) -> Transcriber | None:
    """The backend configured by `S2S_ASR_*` environment variables, or None (callers report `NOT_CONFIGURED`)."""
    config = AsrConfig.from_env(ENV_PREFIX, env)
    if config is None:
        return None
    if config.backend == FASTER_WHISPER:
        from s2s_eval.speech.asr_local import LocalTranscriber

        return LocalTranscriber(config, cache_dir=cache_dir)
    return EndpointTranscriber(config, cache_dir=cache_dir)
