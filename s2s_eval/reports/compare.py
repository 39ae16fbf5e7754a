"""Compare two runs of one eval sample by sample, and decide whether the new one regressed.

Samples are paired by id. Accuracy uses McNemar's exact test on the pairs graded in both runs, with Bonett and
Price's interval of the paired difference; TTFA uses a paired bootstrap of the difference in medians. A regression
is a change that is statistically significant *and* larger than its threshold. A comparison that could not have
seen a regression of the threshold's size (too few pairs: under 80% power) is flagged underpowered rather than
passed as "no change", with the number of pairs that would have been enough. Errors are a metric of their own,
since accuracy pairs only graded samples: a new run whose samples mostly failed (an outage, a revoked key, a changed
API) would otherwise look merely underpowered. The error rate fails the gate when it passes an absolute ceiling, at
any number of pairs, or when it rises significantly (McNemar on the paired error indicator) by more than its
threshold. With `--attempts K` in both runs, pass@1 over tries is compared too (reported, not gated).

Full-duplex turn-taking runs (records with `dynamics`, issue 16) gate on their conversational dynamics the same
way: the takeover, yield and false-yield rates are paired yes/no outcomes tested like accuracy (a rise of takeovers
or false yields, or a drop of yields, beyond --max-accuracy-drop percentage points), and the median yield and
turn-end latencies like TTFA (--max-ttfa-increase-ms).

Differences that make the runs not comparable like for like — other samples, dataset revision, TTS settings, judge,
turn mode — are listed as warnings beside the verdict.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2s_eval.errors import UserError
from s2s_eval.log import SUMMARY, RunSpec, read_records, read_spec
from s2s_eval.reports import stats


@dataclass(frozen=True)
class Thresholds:
    """What counts as a regression, and how sure the test must be."""

    max_accuracy_drop_pp: float = 5.0  # percentage points
    max_ttfa_increase_ms: float = 100.0  # on the median
    max_error_rate_pct: float = 10.0  # the new run's share of failed samples, whatever the base's
    max_error_increase_pp: float = 2.0  # a significant rise of the error rate beyond this fails too
    alpha: float = 0.05
    min_pairs: int = 30


@dataclass
class Side:
    """One run as compared: where it is, what it is, its records by sample id."""

    run_dir: Path
    spec: dict[str, Any]
    records: dict[str, dict[str, Any]]
    complete: bool | None

    @property
    def model(self) -> str:
        """The profile name, with its reasoning effort when the run set one (`gpt-realtime-2, effort high`)."""
        model = self.spec.get("model") or {}
        effort = model.get("reasoning_effort")
        return str(model.get("name") or "unknown") + (f", effort {effort}" if effort else "")

    @property
    def eval(self) -> str:
        return str((self.spec.get("eval") or {}).get("name") or "unknown")


@dataclass
class Metric:
    """One compared metric: values, difference with its interval, p-value, and the verdict."""

    name: str
    pairs: int
    base: float | None = None
    new: float | None = None
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    regression: bool = False
    underpowered: bool = False
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Comparison:
    base: str
    new: str
    model: tuple[str, str]
    eval: str
    paired: int
    only_base: list[str]
    only_new: list[str]
    metrics: list[Metric]
    warnings: list[str]

    @property
    def regression(self) -> bool:
        return any(m.regression for m in self.metrics)

    @property
    def underpowered(self) -> bool:
        return any(m.underpowered for m in self.metrics)

    @property
    def verdict(self) -> str:
        if self.regression:
            return "regression"
        return "underpowered" if self.underpowered else "no significant regression"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["only_base"] = self.only_base[:50]
        data["only_new"] = self.only_new[:50]
        data.update(verdict=self.verdict, regression=self.regression, underpowered=self.underpowered,
                    n_only_base=len(self.only_base), n_only_new=len(self.only_new))
        return data


def load_side(run_dir: Path) -> Side:
    """Read a run for comparison; a one-line UserError when it is not a usable run directory."""
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    records: dict[str, dict[str, Any]] = {}
    for record in read_records(run_dir):
        sample_id = record.get("sample_id")
        if not isinstance(sample_id, str):
            raise UserError(f"{run_dir}: a journal record has no sample_id; not a run journal")
        records[sample_id] = record  # a resumed run journals each sample once; the last line wins if not
    if not records:
        raise UserError(f"{run_dir}: the journal holds no samples; nothing to compare")
    complete = None
    summary = run_dir / SUMMARY
    if summary.exists():
        try:
            complete = json.loads(summary.read_text(encoding="utf-8")).get("complete")
        except json.JSONDecodeError:
            raise UserError(f"{summary}: not valid JSON") from None
    return Side(run_dir, spec, records, complete)


def mismatches(base: Side, new: Side) -> list[str]:
    """What makes the two runs not like for like: every facet of their identity but the model and its endpoint,
    which are what one usually compares (`RunIdentity.differences`, as resume and merge use it)."""
    base_id, new_id = RunSpec.model_validate(base.spec).identity(), RunSpec.model_validate(new.spec).identity()
    out = [d.label() for d in base_id.differences(new_id, ignore=("model", "endpoint"))]
    # The model is what one compares, but a different reasoning effort of it is a different setting: say so.
    efforts = [(side.spec.get("model") or {}).get("reasoning_effort") for side in (base, new)]
    if efforts[0] != efforts[1]:
        out.insert(0, f"reasoning efforts differ: base {efforts[0] or 'not set'} vs new {efforts[1] or 'not set'}")
    # Turn-taking figures depend on the client's playback policy and the pause a model is expected to wait through.
    duplex = [(side.spec.get("runner") or {}).get("duplex") for side in (base, new)]
    if duplex[0] != duplex[1]:
        out.append(f"full-duplex settings differ: base {json.dumps(duplex[0], sort_keys=True)} vs new "
                   f"{json.dumps(duplex[1], sort_keys=True)}")
    for side, name in ((base, "base"), (new, "new")):
        if side.complete is False:
            out.append(f"the {name} run is incomplete (summary.json says complete: false)")
    return out


@dataclass(frozen=True)
class _Paired:
    """A yes/no outcome (right, failed) of each paired sample in both runs: the four cells, the difference of the
    rates (new minus base) with its interval, and McNemar's exact p-value on the discordant pairs."""

    n: int
    both: int
    base_only: int
    new_only: int
    ci: stats.Interval
    p_value: float

    @classmethod
    def of(cls, flags: list[tuple[bool, bool]]) -> _Paired:
        n = len(flags)
        both = sum(a and b for a, b in flags)
        base_only = sum(a and not b for a, b in flags)
        new_only = sum(b and not a for a, b in flags)
        ci = stats.paired_difference_ci(both, base_only, new_only, n - both - base_only - new_only)
        assert ci is not None  # callers pair at least one sample
        return cls(n, both, base_only, new_only, ci, stats.mcnemar_exact(base_only, new_only))

    @property
    def neither(self) -> int:
        return self.n - self.both - self.base_only - self.new_only

    @property
    def discordant(self) -> float:
        return (self.base_only + self.new_only) / self.n

    def fill(self, metric: Metric) -> None:
        """The metric's rates, difference, interval and p-value."""
        metric.base, metric.new = (self.both + self.base_only) / self.n, (self.both + self.new_only) / self.n
        metric.difference, metric.low, metric.high = self.ci.estimate, self.ci.low, self.ci.high
        metric.p_value = self.p_value


def _gate_share(metric: Metric, cells: _Paired, t: Thresholds, threshold_pp: float, worse: str) -> float | None:
    """Decide a paired share's verdict: a regression is a significant change the `worse` way ("drop" or "rise") of
    more than `threshold_pp`, on at least --min-pairs pairs; a comparison with too few pairs, or too little power
    to see a change of that size, is flagged underpowered with the pairs it would need. Returns the smallest
    change (a fraction) the pairs could detect with 80% power."""
    n, ci, p, discordant = cells.n, cells.ci, cells.p_value, cells.discordant
    change = max(0.0, -ci.estimate if worse == "drop" else ci.estimate)
    power = stats.mcnemar_power(n, discordant, threshold_pp / 100)
    # Below --min-pairs nothing fails the gate, however small p is: a handful of samples is a smoke test.
    metric.regression = n >= t.min_pairs and change > 0 and p < t.alpha and change * 100 > threshold_pp
    needed = max(stats.pairs_needed(discordant, threshold_pp / 100), t.min_pairs)
    metric.details.update(power=round(power, 3), pairs_needed=needed,
                          interval=ci.method, test="McNemar exact (binomial test of the discordant pairs)")
    if n < t.min_pairs:
        metric.underpowered = True
        metric.note = (f"underpowered: only {n} pairs (fewer than --min-pairs {t.min_pairs}); about "
                       f"{needed:,} are needed for 80% power against a {threshold_pp:g} pp {worse}")
    elif not metric.regression and power < 0.8:
        metric.underpowered = True
        metric.note = (f"underpowered: {n} pairs give {power:.0%} power to detect a {threshold_pp:g} pp "
                       f"{worse}; about {needed:,} are needed")
    return stats.detectable_paired_difference(n, discordant)


def _accuracy(pairs: list[tuple[dict[str, Any], dict[str, Any]]], t: Thresholds) -> Metric:
    graded = [(a["correct"], b["correct"]) for a, b in pairs
              if isinstance(a.get("correct"), bool) and isinstance(b.get("correct"), bool)]
    n = len(graded)
    metric = Metric("accuracy", n, threshold=t.max_accuracy_drop_pp)
    if n == 0:
        metric.note = "not measured: no sample was graded in both runs"
        return metric
    cells = _Paired.of(graded)
    cells.fill(metric)
    metric.details = {"both_right": cells.both, "right_only_in_base": cells.base_only,
                      "right_only_in_new": cells.new_only, "both_wrong": cells.neither}
    detectable = _gate_share(metric, cells, t, t.max_accuracy_drop_pp, "drop")
    metric.details["detectable_drop_pp"] = None if detectable is None else round(detectable * 100, 2)
    return metric


def _tries(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> Metric | None:
    """pass@1 over repeated tries (`--attempts K`), base against new, when both runs made them. Reported, not
    gated: accuracy (pass@k per item) already gates; this shows whether the models' consistency changed."""
    def tally(r: dict[str, Any]) -> tuple[int, int] | None:
        verdicts = [t.get("correct") for t in r.get("trials") or [] if isinstance(t.get("correct"), bool)]
        return (sum(verdicts), len(verdicts)) if verdicts else None

    tallied = [(tally(a), tally(b)) for a, b in pairs]
    both = [(a, b) for a, b in tallied if a is not None and b is not None]
    if not both:
        return None
    base, new = [a for a, _ in both], [b for _, b in both]
    ci = stats.paired_pass_at_1_difference(base, new)
    assert ci is not None
    metric = Metric("pass_at_1", len(both))
    figures = {side: stats.repeated_tries([c for c, _ in counts], [k for _, k in counts])
               for side, counts in (("base", base), ("new", new))}
    metric.base = figures["base"]["pass_at_1"]["estimate"]  # type: ignore[index]
    metric.new = figures["new"]["pass_at_1"]["estimate"]  # type: ignore[index]
    metric.difference, metric.low, metric.high = ci.estimate, ci.low, ci.high
    metric.details = {"interval": ci.method, **figures}
    metric.note = "reported, not gated (accuracy is pass@k per item)"
    return metric


def _errors(pairs: list[tuple[dict[str, Any], dict[str, Any]]], t: Thresholds) -> Metric:
    """The share of samples that ended in an error (`status` other than ok), base against new, over the pairs."""
    failed = [(a.get("status") != "ok", b.get("status") != "ok") for a, b in pairs]
    n = len(failed)
    metric = Metric("error_rate", n, threshold=t.max_error_increase_pp)
    cells = _Paired.of(failed)  # compare() pairs at least one sample
    cells.fill(metric)
    ci, p = cells.ci, cells.p_value
    metric.details = {"failed_in_both": cells.both, "failed_only_in_base": cells.base_only,
                      "failed_only_in_new": cells.new_only, "max_error_rate_pct": t.max_error_rate_pct,
                      "interval": ci.method,
                      "detectable_rise_pp": round(100 * (stats.detectable_paired_difference(
                          n, cells.discordant) or 1.0), 2)}
    over_ceiling = metric.new * 100 > t.max_error_rate_pct
    rose = (n >= t.min_pairs and ci.estimate > 0 and p < t.alpha and ci.estimate * 100 > t.max_error_increase_pp)
    metric.regression = over_ceiling or rose
    if over_ceiling:
        metric.note = (f"the new run's error rate {metric.new:.1%} is over the {t.max_error_rate_pct:g}% ceiling "
                       f"(--max-error-rate): its other metrics leave those samples out")
    elif rose:
        metric.note = f"the error rate rose significantly by more than {t.max_error_increase_pp:g} pp"
    return metric


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ttfa(pairs: list[tuple[dict[str, Any], dict[str, Any]]], t: Thresholds) -> Metric:
    def ttfa(r: dict[str, Any]) -> float | None:
        return _number((r.get("latency") or {}).get("ttfa_ms")) if r.get("status") == "ok" else None

    return _latency("ttfa_p50_ms", "a TTFA", [(ttfa(a), ttfa(b)) for a, b in pairs], t)


def _latency(name: str, what: str, values: list[tuple[float | None, float | None]], t: Thresholds) -> Metric:
    """A median latency, base against new, over the pairs measured in both: a paired bootstrap of the difference in
    medians; a regression is an interval wholly above zero and an estimate past --max-ttfa-increase-ms."""
    measured = [(a, b) for a, b in values if a is not None and b is not None]
    metric = Metric(name, len(measured), threshold=t.max_ttfa_increase_ms)
    ci = stats.paired_quantile_difference([a for a, _ in measured], [b for _, b in measured])
    if ci is None:
        metric.note = f"not measured: fewer than two samples have {what} in both runs"
        return metric
    metric.base = float(np.median([a for a, _ in measured]))
    metric.new = float(np.median([b for _, b in measured]))
    metric.difference, metric.low, metric.high = ci.estimate, ci.low, ci.high
    metric.regression = len(measured) >= t.min_pairs and ci.low > 0 and ci.estimate > t.max_ttfa_increase_ms
    if len(measured) < t.min_pairs:
        metric.underpowered = True
        metric.note = (f"underpowered: only {len(measured)} pairs (fewer than --min-pairs {t.min_pairs}); at least "
                       f"{t.min_pairs} are needed")
    elif not metric.regression and ci.high > t.max_ttfa_increase_ms:
        metric.underpowered = True
        metric.note = (f"underpowered: the 95% interval reaches {ci.high:+,.0f} ms, past the "
                       f"{t.max_ttfa_increase_ms:g} ms threshold; " + _ttfa_pairs_needed(len(measured), ci, t))
    metric.details = {"interval": f"paired {ci.method} of the difference in medians"}
    return metric


# Paired yes/no outcomes of full-duplex scenarios (issue 16): (metric, scenario, dynamics field, which way is worse).
DYNAMICS_RATES = (("takeover_rate", "pause", "takeover", "rise"), ("yield_rate", "interruption", "yielded", "drop"),
                  ("false_yield_rate", "backchannel", "false_yield", "rise"))


def _dynamics_part(r: dict[str, Any]) -> dict[str, Any] | None:
    part = r.get("dynamics")
    return part if r.get("status") == "ok" and isinstance(part, dict) else None


def _dynamics(pairs: list[tuple[dict[str, Any], dict[str, Any]]], t: Thresholds) -> list[Metric]:
    """Turn-taking metrics, when either run has full-duplex records: the takeover, yield and false-yield rates as
    paired outcomes gated like accuracy (McNemar, --max-accuracy-drop in pp, the worse way: a rise of takeovers or
    false yields, a drop of yields), and the median yield and turn-end latencies gated like TTFA. A fact either
    run did not measure (None) leaves that pair out."""
    if not any(r.get("dynamics") for pair in pairs for r in pair):
        return []
    metrics = []
    for name, scenario, key, worse in DYNAMICS_RATES:
        flags = []
        for a, b in pairs:
            da, db = _dynamics_part(a), _dynamics_part(b)
            if da and db and da.get("scenario") == db.get("scenario") == scenario:
                if isinstance(da.get(key), bool) and isinstance(db.get(key), bool):
                    flags.append((da[key], db[key]))
        metric = Metric(name, len(flags), threshold=t.max_accuracy_drop_pp)
        metrics.append(metric)
        if not flags:
            metric.note = f"not measured: no {scenario} scenario measured it in both runs"
            continue
        cells = _Paired.of(flags)
        cells.fill(metric)
        metric.details = {"in_both": cells.both, "only_in_base": cells.base_only, "only_in_new": cells.new_only,
                          "in_neither": cells.neither, "worse": worse}
        detectable = _gate_share(metric, cells, t, t.max_accuracy_drop_pp, worse)
        metric.details["detectable_change_pp"] = None if detectable is None else round(detectable * 100, 2)

    def latency(r: dict[str, Any], key: str) -> float | None:
        part = _dynamics_part(r)
        return _number(part.get(key)) if part else None

    metrics.append(_latency("yield_latency_p50_ms", "a yield latency",
                            [(latency(a, "yield_latency_ms"), latency(b, "yield_latency_ms")) for a, b in pairs], t))
    metrics.append(_latency("turn_end_latency_p50_ms", "a turn-end latency",
                            [(latency(a, "turn_end_latency_ms"), latency(b, "turn_end_latency_ms"))
                             for a, b in pairs], t))
    return metrics


def _ttfa_pairs_needed(n: int, ci: stats.Interval, t: Thresholds) -> str:
    """How many pairs would bring the interval's upper end under the threshold, if the estimate held: an interval's
    half-width shrinks as 1/sqrt(n)."""
    room = t.max_ttfa_increase_ms - ci.estimate
    if room <= 0:
        return "the estimate itself is past it, so more samples would tell which way"
    needed = math.ceil(n * ((ci.high - ci.estimate) / room) ** 2)
    return f"about {max(needed, t.min_pairs):,} pairs are needed to rule out a regression of that size"


def compare(base_dir: Path, new_dir: Path, thresholds: Thresholds | None = None) -> Comparison:
    """Pair the two runs' samples and test accuracy and TTFA; raises UserError when they cannot be compared."""
    t = thresholds or Thresholds()
    base, new = load_side(base_dir), load_side(new_dir)
    if base.eval != new.eval:
        raise UserError(f"base is a {base.eval} run and new a {new.eval} run; compare two runs of one eval")
    common = [i for i in base.records if i in new.records]
    if not common:
        raise UserError(f"{base.run_dir} and {new.run_dir} share no sample id; nothing to pair")
    pairs = [(base.records[i], new.records[i]) for i in common]
    only_base = [i for i in base.records if i not in new.records]
    only_new = [i for i in new.records if i not in base.records]
    warnings = mismatches(base, new)
    if only_base or only_new:
        warnings.insert(0, f"mismatched subsets: {len(only_base)} sample(s) only in base, {len(only_new)} only in "
                           f"new; only the {len(common)} in both are compared")
    metrics = [_accuracy(pairs, t), _ttfa(pairs, t), _errors(pairs, t)]
    tries = _tries(pairs)
    if tries is not None:
        metrics.append(tries)
    metrics += _dynamics(pairs, t)
    return Comparison(str(base.run_dir), str(new.run_dir), (base.model, new.model), base.eval, len(common),
                      only_base, only_new, metrics, warnings)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _figure(figure: dict[str, Any] | None) -> str:
    return "n/a" if figure is None else _pct(figure["estimate"])


RATE_NAMES = {"takeover_rate": "takeover rate (pause)", "yield_rate": "yield rate (interruption)",
              "false_yield_rate": "false-yield rate (backchannel)"}
LATENCY_NAMES = {"ttfa_p50_ms": "TTFA p50", "yield_latency_p50_ms": "yield latency p50",
                 "turn_end_latency_p50_ms": "turn-end latency p50"}


def format_text(c: Comparison) -> str:
    """The human-readable comparison: what was compared, each metric, warnings, verdict."""
    lines = [f"compare {c.eval}: base {c.base} ({c.model[0]}) → new {c.new} ({c.model[1]})",
             f"paired samples: {c.paired:,}" + (f" ({len(c.only_base):,} only in base, {len(c.only_new):,} only in "
                                                 f"new)" if c.only_base or c.only_new else "")]
    for m in c.metrics:
        if m.difference is None:
            lines.append(f"{m.name}: {m.note}")
            continue
        if m.name == "accuracy":
            d = m.details
            line = (f"accuracy: {_pct(m.base)} → {_pct(m.new)} ({m.difference * 100:+.1f} pp, 95% CI "
                    f"{m.low * 100:+.1f} to {m.high * 100:+.1f}; McNemar p={m.p_value:.3g}, "
                    f"{d['right_only_in_base']} right only in base, {d['right_only_in_new']} only in new; "
                    f"n={m.pairs:,}; detectable with 80% power: {d['detectable_drop_pp']:.1f} pp)")
            limit = f"{m.threshold:g} pp"
        elif m.name == "error_rate":
            d = m.details
            line = (f"error rate: {_pct(m.base)} → {_pct(m.new)} ({m.difference * 100:+.1f} pp, 95% CI "
                    f"{m.low * 100:+.1f} to {m.high * 100:+.1f}; McNemar p={m.p_value:.3g}, "
                    f"{d['failed_only_in_new']} failed only in new, {d['failed_only_in_base']} only in base; "
                    f"n={m.pairs:,}; detectable with 80% power: {d['detectable_rise_pp']:.1f} pp)")
            limit = f"{m.threshold:g} pp or {d['max_error_rate_pct']:g}%"
        elif m.name == "pass_at_1":
            b, nw = m.details["base"], m.details["new"]
            line = (f"pass@1 over tries: {_pct(m.base)} → {_pct(m.new)} ({m.difference * 100:+.1f} pp, 95% CI "
                    f"{m.low * 100:+.1f} to {m.high * 100:+.1f}, {m.details['interval']}; n={m.pairs:,}); "
                    f"pass@{b['k']} {_pct(b['pass_at_k']['estimate'])} → {_pct(nw['pass_at_k']['estimate'])}, "
                    f"pass^{b['k']} {_pct(b['pass_hat_k']['estimate'])} → {_pct(nw['pass_hat_k']['estimate'])}, "
                    f"verdict flips {_figure(b['verdict_flips'])} → {_figure(nw['verdict_flips'])}")
            lines.append(f"{line} — {m.note}")
            continue
        elif m.name in RATE_NAMES:
            d = m.details
            line = (f"{RATE_NAMES[m.name]}: {_pct(m.base)} → {_pct(m.new)} ({m.difference * 100:+.1f} pp, 95% CI "
                    f"{m.low * 100:+.1f} to {m.high * 100:+.1f}; McNemar p={m.p_value:.3g}, {d['only_in_base']} "
                    f"only in base, {d['only_in_new']} only in new; n={m.pairs:,}; detectable with 80% power: "
                    f"{d['detectable_change_pp']:.1f} pp)")
            limit = f"a {m.threshold:g} pp {d['worse']}"
        else:
            line = (f"{LATENCY_NAMES.get(m.name, m.name)}: {m.base:,.0f} → {m.new:,.0f} ms ({m.difference:+,.0f} ms, "
                    f"95% CI {m.low:+,.0f} to {m.high:+,.0f}; n={m.pairs:,})")
            limit = f"{m.threshold:g} ms"
        if m.regression:
            status = f"REGRESSION beyond {limit}" + (f": {m.note}" if m.name == "error_rate" else "")
        else:
            status = m.note or f"no significant regression beyond {limit}"
        lines.append(f"{line} — {status}")
    for warning in c.warnings:
        lines.append(f"warning: {warning}")
    lines.append(f"verdict: {c.verdict}")
    return "\n".join(lines)
