"""Conversational dynamics of a run: takeover, yield and false-yield rates, yield and turn-end latency (issue 16).

Read from the records' `dynamics` part (`s2s_eval.log.Dynamics`), which only full-duplex scenarios (the
`turn_taking` eval) carry, over samples whose session finished (`status` ok). Each figure keeps its n: a rate is a
share of the verdicts that were measured, with its Wilson score interval; a latency is p50 and p90 with percentile
bootstrap intervals (`stats`). A fact recorded as None was not measured and is left out, never counted as 0 or as
"no": a rate with nothing measured, or a latency with no value, is "not measured".

- takeover rate: pause scenarios, the model's playback started before the question's real end (lower is better);
- yield rate: interruption scenarios, the model stopped when the caller cut in (higher is better), and the yield
  latency of those that yielded, overall and per `yield_kind`: "while_generating" (a cancelled response) and
  "during_playback" (generation had ended; the client's playback policy stopped it), which measure different
  things, so both are shown;
- addressed rate: interruption scenarios whose next answer was judged to address the interruption;
- false-yield rate: backchannel scenarios, the model stopped or restarted after a mere "mm-hmm" (lower is better);
- turn-end latency: the caller's last voiced sample to the model's first voiced audio, over every scenario that
  measured it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from s2s_eval.reports import stats
from s2s_eval.reports.aggregate import Run

SCENARIOS = ("pause", "interruption", "backchannel", "turn_end")
YIELD_KINDS = ("while_generating", "during_playback")


@dataclass(frozen=True)
class Rate:
    """`hits` of `n` measured verdicts, with the Wilson score interval; n = 0 is "not measured"."""

    hits: int
    n: int
    ci: stats.Interval | None

    @property
    def estimate(self) -> float | None:
        return self.hits / self.n if self.n else None

    @classmethod
    def of(cls, verdicts: Iterable[bool | None]) -> Rate:
        measured = [bool(v) for v in verdicts if v is not None]
        return cls(sum(measured), len(measured), stats.proportion_ci(sum(measured), len(measured)))


@dataclass(frozen=True)
class Quantiles:
    """p50 and p90 of the measured values (ms), each with a bootstrap interval; `values` for charts."""

    n: int
    p50: stats.Interval | None
    p90: stats.Interval | None
    values: tuple[float, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Quantiles:
        data = tuple(sorted(float(v) for v in values if v is not None))
        if len(data) == 1:  # one value: its quantiles are itself, with no interval to speak of
            only = stats.Interval(data[0], data[0], data[0], "one value: no interval")
            return cls(1, only, only, data)
        return cls(len(data), stats.quantile_ci(data, q=0.5), stats.quantile_ci(data, q=0.9), data)


@dataclass(frozen=True)
class DynamicsFigures:
    """One run's conversational dynamics, and the client settings they were measured under (`spec.runner.duplex`)."""

    label: str
    run_index: int
    policy: str | None
    max_pause_ms: float | None
    frame_ms: float | None
    scenarios: dict[str, int]  # records per scenario
    takeover: Rate
    yielded: Rate
    yield_latency: Quantiles
    yield_latency_by_kind: dict[str, Quantiles]  # every kind in YIELD_KINDS, measured or not
    addressed: Rate
    false_yield: Rate
    turn_end_latency: Quantiles

    def rates(self) -> list[tuple[str, str, Rate]]:
        """(key, name, rate) in the order the report shows them."""
        return [("takeover", "Takeover rate (pause)", self.takeover),
                ("yield", "Yield rate (interruption)", self.yielded),
                ("addressed", "Addressed the interruption", self.addressed),
                ("false_yield", "False-yield rate (backchannel)", self.false_yield)]

    def latencies(self) -> list[tuple[str, str, Quantiles]]:
        """(key, name, latency) in the order the report shows them."""
        kinds = [(f"yield_{kind}", f"… yielded {kind.replace('_', ' ')},", self.yield_latency_by_kind[kind])
                 for kind in YIELD_KINDS]
        return [("yield_latency", "Yield latency", self.yield_latency), *kinds,
                ("turn_end_latency", "Turn-end latency", self.turn_end_latency)]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def dynamics_of(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `dynamics` part of every finished record that has one."""
    return [r["dynamics"] for r in records if r.get("status") == "ok" and isinstance(r.get("dynamics"), dict)]


def figures(parts: Sequence[dict[str, Any]], *, label: str = "", run_index: int = 0,
            spec: dict[str, Any] | None = None) -> DynamicsFigures:
    """The figures of one run's `dynamics` parts (see the module docstring for each)."""
    def of(scenario: str) -> list[dict[str, Any]]:
        return [d for d in parts if d.get("scenario") == scenario]

    def values(items: Iterable[dict[str, Any]], key: str) -> list[float | None]:
        return [_number(d.get(key)) for d in items]

    interruptions = of("interruption")
    yielded = [d for d in interruptions if d.get("yielded") is True]
    duplex = ((spec or {}).get("runner") or {}).get("duplex") or {}
    # The spec says which settings the run used; a run written without them still has each record's own.
    policies = sorted({str(d["policy"]) for d in parts if d.get("policy")})
    pauses = {p for p in values(parts, "max_pause_ms") if p is not None}
    max_pause_ms = _number(duplex.get("max_pause_ms")) if "max_pause_ms" in duplex else (
        pauses.pop() if len(pauses) == 1 else None)
    return DynamicsFigures(
        label=label, run_index=run_index,
        policy=duplex.get("policy") or (", ".join(policies) if policies else None),
        max_pause_ms=max_pause_ms,
        frame_ms=_number(duplex.get("frame_ms")),
        scenarios={s: len(of(s)) for s in SCENARIOS},
        takeover=Rate.of(d.get("takeover") for d in of("pause")),
        yielded=Rate.of(d.get("yielded") for d in interruptions),
        yield_latency=Quantiles.of(values(yielded, "yield_latency_ms")),
        yield_latency_by_kind={kind: Quantiles.of(values([d for d in yielded if d.get("yield_kind") == kind],
                                                         "yield_latency_ms"))
                               for kind in YIELD_KINDS},
        addressed=Rate.of(d.get("addressed") for d in interruptions),
        false_yield=Rate.of(d.get("false_yield") for d in of("backchannel")),
        turn_end_latency=Quantiles.of(values(parts, "turn_end_latency_ms")),
    )


def run_figures(runs: Sequence[Run]) -> list[DynamicsFigures]:
    """The figures of every run that has dynamics records, in report order; empty when none has."""
    out = []
    for index, run in enumerate(runs):
        parts = dynamics_of(run.records)
        if parts:
            out.append(figures(parts, label=run.label, run_index=index, spec=run.spec))
    return out
