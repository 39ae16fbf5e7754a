"""The `s2s-eval` command: prepare, run, report, compare, merge, list, serve."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from s2s_eval import __version__, loops
from s2s_eval.errors import UserError
from s2s_eval.loops import LOOP_ENV
from s2s_eval.runners.selftest_plan import SESSIONS_RULE
from s2s_eval.server import API_KEY_ENV


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _number(convert: Callable[[str], float], what: str, ok: Callable[[float], bool],
            rule: str) -> Callable[[str], Any]:
    """An argparse type: `convert` the text, refusing what does not parse or breaks `rule`, in one line."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(rule)
        return value
    return parse


_non_negative_int = _number(int, "a whole number", lambda v: v >= 0, "must be 0 or more")
_positive_float = _number(float, "a number", lambda v: v > 0, "must be more than 0")
_non_negative = _number(float, "a number", lambda v: v >= 0, "must be 0 or more")


def _probability(text: str) -> float:
    value = _non_negative(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError("K must be between 1 and N")
    return k, n


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("expected whole numbers separated by commas, e.g. 1,8,32") from None
    if min(levels) < 1:
        raise argparse.ArgumentTypeError("each level must be at least 1")
    return levels


def _float_levels(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected numbers separated by commas, e.g. 30,20,10") from None


def _ids(text: str) -> list[str]:
    return [i.strip() for i in text.split(",") if i.strip()]


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--eval", required=True, help="eval name in evals/ (e.g. big_bench_audio)")
    parser.add_argument("--limit", type=_positive_int, help="only the first N samples (round-robin by category)")
    parser.add_argument("--ids", type=_ids, help="only these sample ids, comma-separated")
    parser.add_argument("--data-dir", type=Path, help="local dataset folder (default: $S2S_DATA_DIR, else the "
                        "official source online)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2s-eval", description=__doc__)
    parser.add_argument("--version", action="version", version=f"s2s-eval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    prepare = sub.add_parser("prepare", help="synthesise the spoken questions of an eval into the audio cache")
    _add_data_options(prepare)
    prepare.add_argument("--tts", help="TTS engine instead of the eval's: espeak (espeak-ng), pyttsx3, "
                                       "edge (edge-tts), openai")
    prepare.add_argument("--voice", help="TTS voice instead of the eval's (and its voice mix)")

    run = sub.add_parser("run", help="run an eval against a model profile")
    run.add_argument("--model", required=True, help="profile name in runners/ (e.g. gpt-realtime, local)")
    _add_data_options(run)
    run.add_argument("--concurrency", type=_positive_int, help="sessions at once (default: the profile's)")
    run.add_argument("--url", help="point the profile at another endpoint, e.g. ws://127.0.0.1:8765/v1/realtime")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<time>-<model>-<eval>)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished samples")
    run.add_argument("--accept-changes", action="store_true", help="with --resume: continue even where this "
                     "invocation differs from the run (input, voice, ...); the change is recorded in spec.json")
    run.add_argument("--no-audio", action="store_true", help="do not keep the models' output audio")
    run.add_argument("--turn-mode", choices=("manual", "vad"), default="manual", help="manual: commit and ask "
                     "(time zero = response.create sent); vad: the server detects the end of speech (time zero = "
                     "the last voiced sample sent)")
    run.add_argument("--pace", choices=("burst", "realtime"), help="upload audio at once or in real time "
                     "(default: burst for manual, realtime for vad and for Gemini, whose turn end gets no reply)")
    run.add_argument("--protocol", choices=("ga", "beta"), help="override the profile's protocol shape")
    run.add_argument("--voice", help="override the profile's output voice")
    run.add_argument("--reasoning-effort", metavar="EFFORT",
                     help="override the profile's reasoning effort (reasoning models only; the values its provider "
                     "documents, e.g. minimal|low|medium|high|xhigh for gpt-realtime-2, none|high for Grok)")
    run.add_argument("--input", dest="input_modality", choices=("audio", "text"), default="audio",
                     help="ask the question as speech (default) or as text, for modality ablations")
    run.add_argument("--output", "--output-modality", dest="output_modality", choices=("audio", "text"),
                     help="the model answers in speech (with its transcript) or in text (default: the profile's)")
    run.add_argument("--turn-timeout", type=float, help="seconds a turn may go without progress (no audio sent, "
                     "no response finished) before it fails as a timeout (default: the profile's)")
    run.add_argument("--attempts", type=_positive_int, default=1, metavar="K", help="independent tries per sample; "
                     "a sample passes if any try does (pass@k), and pass@1 is reported beside it")
    run.add_argument("--max-attempts", type=_positive_int, default=6, help="attempts per sample for transient "
                     "and rate-limited failures (fatal ones are never retried)")
    run.add_argument("--seed", type=int, default=0, help="seed for retry jitter")
    run.add_argument("--shard", type=_shard, help="run shard K of N (e.g. 2/4); join shards with `merge`")
    run.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="run the sessions in N "
                     "processes (each with its share of --concurrency) to use more cores; the results are the same, "
                     "only the runner's own latency error changes (default 1)")

    sweep = sub.add_parser("sweep", help="run one eval once per perturbation level, then report them together")
    sweep.add_argument("--model", required=True, help="profile name in runners/ (e.g. gpt-realtime, local)")
    _add_data_options(sweep)
    sweep.add_argument("--perturb", required=True, choices=("noise", "rate", "packet_loss"), help="what to vary")
    sweep.add_argument("--levels", required=True, type=_float_levels, help="comma-separated: SNR in dB (noise), "
                       "tempo factor (rate), percent of 20 ms packets lost (packet_loss); e.g. 30,20,10")
    sweep.add_argument("--noise", choices=("white", "pink", "babble"), default="white", help="noise kind")
    sweep.add_argument("--perturb-seed", type=int, default=0, help="seed of the noise and loss draws")
    sweep.add_argument("--concurrency", type=_positive_int, help="sessions at once (default: the profile's)")
    sweep.add_argument("--url", help="point the profile at another endpoint")
    sweep.add_argument("--out", type=Path, help="folder of the runs, one per level (default: "
                       "runs/<time>-sweep-<model>-<eval>-<kind>)")
    sweep.add_argument("--report", type=Path, help="the report (default: reports/<the --out folder's name>.html)")

    report = sub.add_parser("report", help="build the HTML report of one or more runs")
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, default=Path("reports/index.html"),
                        help="the HTML file; its audio goes into a folder beside it (index.html -> index_media/)")
    report.add_argument("--no-audio", action="store_true", help="copy no audio beside the report (no players)")
    report.add_argument("--no-input-audio", action="store_true", help="copy no spoken questions beside the report")

    compare = sub.add_parser("compare", help="pair two runs' samples and test for a regression (exit 1 on one "
                             "with --fail-on-regression)")
    compare.add_argument("base", type=Path, metavar="BASE_RUN")
    compare.add_argument("new", type=Path, metavar="NEW_RUN")
    compare.add_argument("--fail-on-regression", action="store_true", help="exit 1 when the new run regressed "
                         "significantly beyond a threshold")
    compare.add_argument("--max-accuracy-drop", type=_non_negative, default=5.0, metavar="PP",
                         help="accuracy drop in percentage points tolerated; also a turn-taking run's rise of "
                         "takeovers or false yields, or drop of yields (default: 5)")
    compare.add_argument("--max-ttfa-increase-ms", type=_non_negative, default=100.0, metavar="MS",
                         help="rise of the median time to first audio tolerated; also of a turn-taking run's "
                         "median yield and turn-end latencies (default: 100)")
    compare.add_argument("--max-error-rate", type=_non_negative, default=10.0, metavar="PCT",
                         help="share of failed samples in the new run above which the gate fails, however many "
                         "samples were paired (default: 10)")
    compare.add_argument("--max-error-increase", type=_non_negative, default=2.0, metavar="PP",
                         help="significant rise of the error rate in percentage points tolerated (default: 2)")
    compare.add_argument("--alpha", type=_probability, default=0.05, help="significance level (default: 0.05)")
    compare.add_argument("--min-pairs", type=_positive_int, default=30, help="with fewer paired samples than this "
                         "nothing fails the gate: the comparison is flagged underpowered (default: 30)")
    compare.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON")

    regrade = sub.add_parser("regrade", help="grade a finished run again from its log, without the model")
    regrade.add_argument("run", type=Path, metavar="RUN_DIR")
    regrade.add_argument("--grader", help="a grader compatible with the run's (default: the run's own, current "
                         "version), e.g. big_bench_audio_judge for a big_bench_audio run")
    where = regrade.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="write the re-graded run to this new directory")
    where.add_argument("--in-place", action="store_true", help="replace the run's grades in RUN_DIR")

    fetch = sub.add_parser("fetch-data", help="download a local copy of the evals' data for offline runs")
    fetch.add_argument("--out", type=Path, required=True, help="folder for the copy; pass it later as --data-dir "
                       "or S2S_DATA_DIR")
    fetch.add_argument("--eval", action="append", dest="evals", metavar="EVAL",
                       help="only this eval (repeatable; default: every eval with a downloadable source)")
    fetch.add_argument("--force", action="store_true", help="download again files that are already there")

    merge = sub.add_parser("merge", help="join shard run directories into one run")
    merge.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR")
    merge.add_argument("--out", type=Path, required=True, help="the merged run directory (new)")

    listing = sub.add_parser("list", help="the evals or model profiles there are, and where each comes from")
    listing.add_argument("kind", choices=("evals", "models"), help="evals (evals/*.yaml) or models (runners/*.yaml)")

    selftest = sub.add_parser("selftest", help="measure this machine's latency error against an injected delay",
                              description="Measure how exactly this machine measures time to first audio: the "
                              "reference server injects a known delay, and the table gives the error with its parts. "
                              "Prints an estimate of its duration first and a progress bar meanwhile.")
    selftest.add_argument("--delay-ms", type=float, default=300.0)
    selftest.add_argument("--sessions", type=_positive_int, default=64, metavar="N",
                          help=f"per-level cap on sessions: {SESSIONS_RULE}")
    selftest.add_argument("--concurrency", type=_levels, default=[1, 8, 32], help="levels, e.g. 1,8,32")
    selftest.add_argument("--pace", choices=("burst", "realtime", "both"), default="both")
    selftest.add_argument("--baseline", action="store_true", help="also run a deliberately naive client (raw "
                          "websockets, json and base64) against the same server, and print the runner's figures as "
                          "ratios to it")
    selftest.add_argument("--loop", choices=("default", "asyncio", "uvloop", "both"), default="default",
                          help="event loop of the client and the server: default = uvloop when installed "
                          f"(${LOOP_ENV}=asyncio forces the standard one); both = one set of rows per loop")

    serve = sub.add_parser("serve", help="run the embedded reference Realtime server")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (anything but loopback needs --api-key)")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument("--engine", choices=("echo", "scripted"), default="echo")
    serve.add_argument("--script", type=Path, help="scripted engine: JSONL script keyed by sample id")
    serve.add_argument("--first-audio-delay-ms", type=float, help="send the first audio delta this long after "
                       "response.create arrives")
    serve.add_argument("--jitter-ms", type=float, default=0.0, help="add a random 0..J ms to that delay (seeded)")
    serve.add_argument("--faults", type=_ids, default=[], help="comma-separated fault kinds: disconnect, "
                       "rate_limit, server_error, malformed, stall, invalid_request (the one fatal kind)")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="share of responses that get a fault")
    serve.add_argument("--seed", type=int, default=0, help="seed for faults and jitter (deterministic per sample)")
    serve.add_argument("--api-key", help=f"require this key from clients (default: ${{{API_KEY_ENV}}})")
    serve.add_argument("--protocol", choices=("ga", "beta", "grok", "gemini"), default="ga", help="beta: every "
                       "session speaks the beta shape (clients can also ask with OpenAI-Beta: realtime=v1); grok: as "
                       "xAI Grok Voice documents it (conversation.created first, flat session, token totals only); "
                       "gemini: Gemini Live (BidiGenerateContent) instead of the Realtime protocol")
    serve.add_argument("--beta", choices=("accept", "reject"), default="accept", help="reject: refuse beta clients "
                       "with beta_api_shape_disabled, as OpenAI does today")
    serve.add_argument("--tls-cert", type=Path, help="serve wss:// with this PEM certificate chain (needs --tls-key; "
                       "Google's SDK dials only wss://)")
    serve.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    serve.add_argument("--max-sessions", type=_positive_int, default=1000)
    serve.add_argument("--max-session-s", type=float, default=3600.0, help="session_expired after this long")
    serve.add_argument("--compression", action="store_true", help="offer permessage-deflate (off by default)")
    serve.add_argument("--stamp-send-time", action="store_true", help="add the send time (monotonic clock) to "
                       "each first content delta as `s2s_sent_at` (for selftest; not part of the protocol)")
    serve.add_argument("--vad-min-speech-ms", type=_non_negative_int, default=0, help="server VAD reports speech "
                       "only once voiced audio has lasted this long; shorter utterances (backchannels) are ignored "
                       "entirely (default 0: at the first voiced frame)")
    serve.add_argument("--yield-delay-ms", type=_non_negative, default=0.0, help="a VAD barge-in (interrupt_response) "
                       "cancels the playing response this long after speech is detected, not at once")
    serve.add_argument("--output-rate", type=_positive_float, help="pace each response's audio deltas at this "
                       "multiple of real time from its first delta (default: as fast as synthesised)")
    serve.add_argument("--loop", choices=("default", "asyncio", "uvloop"), default="default", help="event loop: "
                       f"default = uvloop when installed (${LOOP_ENV}=asyncio forces the standard one)")
    serve.add_argument("--ready-json", action="store_true", help="print one JSON line with the URL when ready")
    serve.add_argument("--exit-with-stdin", action="store_true", help="stop when standard input closes (a parent "
                       "holding a pipe to it thus never leaves the server behind, even when killed)")
    return parser


def _prepare(args: argparse.Namespace) -> int:
    from s2s_eval.datasets import load_samples, select
    from s2s_eval.datasets.spec import load_eval
    from s2s_eval.datasets.tts_input import InputAudio
    from s2s_eval.runners.run import default_data_dir, texts_to_speak
    from s2s_eval.speech.asr import load_transcriber

    spec = load_eval(args.eval)
    if args.tts or args.voice:
        tts = spec.tts.model_copy(update={"engine": args.tts or spec.tts.engine, "voice": args.voice or spec.tts.voice,
                                          "voices": () if args.voice else spec.tts.voices})
        spec = spec.model_copy(update={"tts": tts})
    speech = InputAudio(spec)  # an unknown engine or voice label stops here, before the dataset loads
    samples, _ = load_samples(spec, args.data_dir or default_data_dir())
    selected = select(samples, args.ids, args.limit)

    async def prepare() -> Any:
        transcriber = load_transcriber()
        try:
            return await speech.prepare(selected, lambda s: texts_to_speak([s], spec), transcriber)
        finally:
            if transcriber is not None:
                await transcriber.aclose()

    done = asyncio.run(prepare())
    excluded = f", {len(done.excluded)} samples fail verification" if done.excluded else ""
    print(f"{done.clips} clips ready for {len(selected)} samples ({done.synthesized} synthesised, "
          f"{done.clips - done.synthesized} from the cache{excluded}) in {speech.cache_root / 'audio'}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from s2s_eval.runners.run import RunOptions, execute

    options = RunOptions(model=args.model, eval=args.eval, limit=args.limit, ids=args.ids,
                         concurrency=args.concurrency, url=args.url, out=args.out, resume=args.resume,
                         accept_changes=args.accept_changes,
                         data_dir=args.data_dir, save_audio=not args.no_audio, turn_mode=args.turn_mode,
                         pace=args.pace, protocol=args.protocol, voice=args.voice,
                         reasoning_effort=args.reasoning_effort,
                         output_modality=args.output_modality, input_modality=args.input_modality,
                         turn_timeout_s=args.turn_timeout,
                         max_attempts=args.max_attempts, trials=args.attempts, seed=args.seed, shard=args.shard,
                         workers=args.workers)
    run_dir, summary = loops.run(execute(options))
    counts = summary["counts"]
    accuracy = accuracy_text(summary)
    ttfa = summary["latency"]["ttfa_ms"]["p50"]
    cost = summary["cost"]["usd"]
    print(f"{run_dir}: {counts['total']} samples, {counts['error']} errors, accuracy {accuracy}, "
          f"TTFA p50 {'not measured' if ttfa is None else f'{ttfa:.0f} ms'}, "
          f"cost {'not measured' if cost is None else f'${cost:.4f}'}")
    if summary.get("trials"):
        print(tries_text(summary["trials"]))
    # A run whose every sample failed is a failure (a nightly job must notice), however complete its journal.
    return 0 if summary.get("complete") and (counts["ok"] or not counts["total"]) else 1


def accuracy_text(summary: dict[str, Any]) -> str:
    """`62.5% (5/8, 95% CI 30.6%–86.3%, Wilson score)`, or "not measured" when nothing was graded."""
    if summary["accuracy"] is None:
        return "not measured"
    ci = summary.get("accuracy_ci")
    interval = f", 95% CI {ci['low']:.1%}–{ci['high']:.1%}, {ci['method']}" if ci else ""
    return f"{summary['accuracy']:.1%} ({summary['correct']}/{summary['graded']}{interval})"


def tries_text(trials: dict[str, Any]) -> str:
    """One line of `--attempts K` figures: pass@1, pass@k, pass^k and verdict flips, with 95% intervals."""
    def part(name: str, figure: dict[str, Any] | None) -> str:
        if figure is None:
            return f"{name} not measured"
        return f"{name} {figure['estimate']:.1%} ({figure['low']:.1%}–{figure['high']:.1%})"

    k = trials["k"]
    return (f"{trials['items']} items × up to {k} tries: " + ", ".join([
        part("pass@1", trials["pass_at_1"]), part(f"pass@{k}", trials["pass_at_k"]),
        part(f"pass^{k}", trials["pass_hat_k"]), part("verdict flips", trials["verdict_flips"])])
        + f" (95% CI; pass@1 by {trials['pass_at_1']['method']}, the rest Wilson score)")


def _sweep(args: argparse.Namespace) -> int:
    from s2s_eval.reports.html import build_report
    from s2s_eval.runners.run import RunOptions
    from s2s_eval.runners.sweep import SweepLevel, sweep, sweep_dir

    base = RunOptions(model=args.model, eval=args.eval, limit=args.limit, ids=args.ids, concurrency=args.concurrency,
                      url=args.url, data_dir=args.data_dir)
    out = args.out or sweep_dir(base, args.perturb)

    def said(level: SweepLevel) -> None:
        counts, accuracy = level.summary["counts"], level.summary["accuracy"]
        print(f"{args.perturb} {level.level:g}: {level.run_dir}: {counts['total']} samples, {counts['error']} errors, "
              f"accuracy {'not measured' if accuracy is None else f'{accuracy:.1%}'}", flush=True)

    levels = loops.run(sweep(base, args.perturb, args.levels, out, noise=args.noise, seed=args.perturb_seed,
                             on_level=said))
    report = build_report([level.run_dir for level in levels], args.report or Path("reports") / f"{out.name}.html")
    print(f"report: {report}")
    ok = all(level.summary.get("complete") and level.summary["counts"]["ok"] for level in levels)
    return 0 if ok else 1


def _report(args: argparse.Namespace) -> int:
    from s2s_eval.reports.html import build_report

    out = build_report(args.runs, args.out, audio=not args.no_audio, input_audio=not args.no_input_audio)
    print(f"report: {out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from s2s_eval.log import write_json
    from s2s_eval.reports.compare import Thresholds, compare, format_text

    thresholds = Thresholds(max_accuracy_drop_pp=args.max_accuracy_drop,
                            max_ttfa_increase_ms=args.max_ttfa_increase_ms,
                            max_error_rate_pct=args.max_error_rate, max_error_increase_pp=args.max_error_increase,
                            alpha=args.alpha,
                            min_pairs=args.min_pairs)
    result = compare(args.base, args.new, thresholds)
    print(format_text(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, {**result.as_dict(), "thresholds": vars(thresholds)})
    return 1 if args.fail_on_regression and result.regression else 0


def _regrade(args: argparse.Namespace) -> int:
    from s2s_eval.runners.regrade import regrade

    out, summary = asyncio.run(regrade(args.run, out=args.out, in_place=args.in_place, grader_name=args.grader))
    accuracy = "not measured" if summary["accuracy"] is None else f"{summary['accuracy']:.1%}"
    print(f"regraded {summary['counts']['total']} samples into {out}: accuracy {accuracy} "
          f"({summary['graded']} graded)")
    return 0


def _fetch_data(args: argparse.Namespace) -> int:
    from s2s_eval.datasets.download import fetch

    results = fetch(args.out, args.evals, force=args.force, progress=lambda line: print(f"downloading {line}"))
    for result in results:
        print(f"{result.eval}: " + (f"skipped: {result.skipped}" if result.skipped else
                                    f"{len(result.files)} file(s) checked under {args.out}"))
    print(f"data copy ready: pass --data-dir {args.out} or set S2S_DATA_DIR={args.out}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from s2s_eval.runners.merge import merge

    summary = merge(args.shards, args.out)
    missing = f", missing shards {summary['missing_shards']}" if summary["missing_shards"] else ""
    print(f"{args.out}: {summary['counts']['total']} samples from {len(args.shards)} shards{missing}")
    return 0 if summary["complete"] else 1


def _list(args: argparse.Namespace) -> int:
    """Each name, where it comes from (built-in, or the user's file and whether it overrides one) and its
    description; a file that does not load is listed with its error, and the exit status is then 1."""
    from s2s_eval import paths, registry
    from s2s_eval.datasets.spec import load_eval
    from s2s_eval.runners.profile import RunnerProfile, load_profile

    kind, load = ("evals", load_eval) if args.kind == "evals" else ("runners", load_profile)
    found = registry.entries(kind)
    user, mine = paths.user_registry(kind), paths.home() / kind
    if user is None and mine.resolve() == paths.builtin(kind).resolve():
        yours = f"none ({mine} is the built-in folder itself)"
    else:
        yours = f"{mine}{'' if user else ' (no such folder)'}; a file there overrides the built-in of the same name"
    print(f"{args.kind} ({kind}/*.yaml) built in: {paths.builtin(kind)}\nyours: {yours}")
    width = max((len(name) for name in found), default=0)
    broken = 0
    for name, entry in found.items():
        try:
            loaded = load(name)
            description = loaded.description
            shutdown = loaded.shutdown() if isinstance(loaded, RunnerProfile) else None
            if shutdown is not None:
                description += f" [shutdown {shutdown.date}" + (f" → {shutdown.replacement}]" if shutdown.replacement
                                                                else "]")
        except UserError as exc:
            description, broken = f"cannot load: {exc}", broken + 1
        print(f"  {name:<{width}}  {entry.origin}: {description}")
    return 1 if broken else 0


def _loop(asked: str) -> loops.LoopName:
    if asked == "default":
        return loops.preferred()
    if asked not in loops.available():
        raise UserError(f"{asked} is not installed: pip install uvloop (Linux and macOS), or use --loop asyncio")
    return asked  # type: ignore[return-value]


def _selftest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from s2s_eval.runners.selftest import TablePrinter, header, run_levels
    from s2s_eval.runners.selftest_plan import estimate_s, plan_levels

    paces = ["burst", "realtime"] if args.pace == "both" else [args.pace]
    loads = [(pace, c) for pace in paces for c in args.concurrency]
    levels = plan_levels(loads, args.sessions, ["naive", "s2s-eval"] if args.baseline else ["s2s-eval"])
    event_loops = list(loops.available()) if args.loop == "both" else [_loop(args.loop)]
    sessions = sum(level.sessions for level in levels) * len(event_loops)
    minutes = estimate_s(levels, args.delay_ms, len(event_loops)) / 60
    print(f"{sessions} session{'s' * (sessions != 1)} on {' and '.join(event_loops)}, about {minutes:.1f} min on an "
          "idle machine (longer under load)", flush=True)
    print(header(args.delay_ms), flush=True)
    rows = run_levels(levels, args.delay_ms, event_loops, on_row=TablePrinter(tqdm.write))
    return 0 if all(row.failed == 0 for row in rows) else 1


def _serve(args: argparse.Namespace) -> int:
    from s2s_eval.server.app import ServerConfig, api_key_from_env, serve_forever, stdin_closed
    from s2s_eval.server.faults import FaultConfig

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)  # not a line per connection
    try:
        faults = FaultConfig(kinds=tuple(args.faults), rate=args.fault_rate, seed=args.seed, jitter_ms=args.jitter_ms)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    config = ServerConfig(host=args.host, port=args.port, engine=args.engine, script=args.script,
                          first_audio_delay_ms=args.first_audio_delay_ms, compression=args.compression, faults=faults,
                          api_key=args.api_key or api_key_from_env(), protocol=args.protocol, beta=args.beta,
                          max_sessions=args.max_sessions, max_session_s=args.max_session_s,
                          stamp_send_time=args.stamp_send_time, tls_cert=args.tls_cert, tls_key=args.tls_key,
                          vad_min_speech_ms=args.vad_min_speech_ms, yield_delay_ms=args.yield_delay_ms,
                          output_rate=args.output_rate)

    def ready(url: str) -> None:
        if args.ready_json:
            print(json.dumps({"event": "listening", "url": url}), flush=True)
        else:
            print(f"s2s-eval reference server listening on {url} (engine: {args.engine})", flush=True)

    try:
        loops.run(serve_forever(config, ready, until=stdin_closed if args.exit_with_stdin else None),
                  _loop(args.loop))
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"prepare": _prepare, "run": _run, "report": _report, "compare": _compare, "merge": _merge,
                "fetch-data": _fetch_data, "list": _list, "regrade": _regrade, "selftest": _selftest, "serve": _serve,
                "sweep": _sweep}
    try:
        status = handlers[args.command](args)
        sys.stdout.flush()  # a reader that left fails here, where it is handled, not at exit
        return status
    except UserError as exc:
        print(f"s2s-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("s2s-eval: interrupted; finished samples are journaled (continue with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `s2s-eval list models | head`: the reader left; say nothing more, not a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
