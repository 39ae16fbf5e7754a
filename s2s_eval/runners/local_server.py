"""Start the embedded reference server in its own process for the `local` profile.

A separate process keeps the server's work (speech synthesis, JSON) off the runner's event loop, so the latency
the runner measures is not inflated by the server sharing its loop, and the two use both cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from s2s_eval.errors import UserError
from s2s_eval.runners.profile import LocalServerSettings

START_TIMEOUT_S = 30


@dataclass(frozen=True)
class LocalServer:
    url: str  # ws://127.0.0.1:<port>/v1/realtime
    pid: int  # for measuring its CPU time (selftest)


@contextlib.asynccontextmanager
async def local_server(settings: LocalServerSettings, log_path: Path, *, compression: bool = False,
                       extra_args: Sequence[str] = ()) -> AsyncIterator[LocalServer]:
    """Run `s2s-eval serve` on a free loopback port for the duration; yields its URL and process id.

    The server's log goes to `log_path` (a file, so a chatty server can never block on a full pipe).
    """
    command = [sys.executable, "-m", "s2s_eval", "serve", "--host", "127.0.0.1", "--port", "0",
               "--engine", settings.engine, "--ready-json", "--exit-with-stdin"]
    if settings.script:
        command += ["--script", settings.script]
    if settings.first_audio_delay_ms is not None:
        command += ["--first-audio-delay-ms", str(settings.first_audio_delay_ms)]
    if settings.vad_min_speech_ms:
        command += ["--vad-min-speech-ms", str(settings.vad_min_speech_ms)]
    if settings.yield_delay_ms:
        command += ["--yield-delay-ms", str(settings.yield_delay_ms)]
    if settings.output_rate is not None:
        command += ["--output-rate", str(settings.output_rate)]
    if compression:
        command += ["--compression"]
    command += list(extra_args)
    log = Path(log_path).open("ab")
    # The server stops when its stdin pipe closes: it never outlives this process, even one killed with SIGKILL.
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line:
            lines = Path(log_path).read_text(errors="replace").strip().splitlines()
            raise UserError(f"the embedded server did not start: {lines[-1] if lines else 'no output'}")
        yield LocalServer(json.loads(line)["url"], process.pid)
    finally:
        log.close()
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
            if process.returncode is None:
                process.kill()
                await process.wait()
