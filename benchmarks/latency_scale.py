"""Latency you can trust at 256 sessions (issue 17): the runner against the naive floor, on the same server.

For each event loop installed (asyncio's, and uvloop when present), starts the reference server once in its own
process on that loop, then runs back to back against it, at each load, the naive client of
`../shared/docs/measurement-notes.md` (raw websockets, json, base64, one coroutine per session, no compression)
and the runner's own session code (`run_session` + `SessionMachine`): 2 s of 24 kHz PCM16 in 100 ms chunks,
commit, `response.create`, first audio delta. Loads: 1, 128 and 256 sessions paced at real time (starts staggered
over a second) and 128 in a burst. Each row gives the TTFA error against the injected delay (median, p99), split
into the server's scheduling error (its `s2s_sent_at` stamp minus the deadline) and the transit back (receipt
minus stamp), the client's event-loop lag p99 and the CPU of each side in cores; each runner row is followed by its
ratios to the naive row above it (s2s-eval / naive: below 1 is better). The measuring code is the package's
(`s2s_eval/runners/selftest.py`): `s2s-eval selftest --baseline --loop both` prints the same table.

    .venv/bin/python benchmarks/latency_scale.py                 # the whole table (`make bench`): about 4 minutes
    .venv/bin/python benchmarks/latency_scale.py --quick         # 1, 32 paced, 32 burst: ~3 min (--loop uvloop: half)

Run it on a quiet machine: the 'other' CPU column shows what else ran meanwhile, and that shows up as error here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from s2s_eval import loops  # noqa: E402
from s2s_eval.runners.selftest import TablePrinter, header, run_levels  # noqa: E402
from s2s_eval.runners.selftest_plan import estimate_s, plan_levels  # noqa: E402

FULL = [("realtime", 1), ("realtime", 128), ("realtime", 256), ("burst", 128)]
QUICK = [("realtime", 1), ("realtime", 32), ("burst", 32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=300)
    parser.add_argument("--sessions", type=int, default=256, help="per-level cap (selftest's rule)")
    parser.add_argument("--quick", action="store_true", help="smaller loads, for development")
    parser.add_argument("--loop", choices=("both", *loops.available()), default="both")
    args = parser.parse_args()
    os.environ.setdefault("S2S_HOME", str(ROOT))
    levels = plan_levels(QUICK if args.quick else FULL, args.sessions, ["naive", "s2s-eval"])
    event_loops = list(loops.available()) if args.loop == "both" else [args.loop]
    print(f"{sum(lv.sessions for lv in levels) * len(event_loops)} sessions on {' and '.join(event_loops)}, about "
          f"{estimate_s(levels, args.delay_ms, len(event_loops)) / 60:.1f} min on an idle machine", flush=True)
    print(header(args.delay_ms), flush=True)
    run_levels(levels, args.delay_ms, event_loops, on_row=TablePrinter(tqdm.write))


if __name__ == "__main__":
    main()
