"""Latency and history charts: TTFA CDF per model, accuracy vs TTFA, latency vs concurrency, nightly trends.

Same style and contract as `charts`: matplotlib without pyplot, SVG bytes, untrusted names never parsed as math.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MultipleLocator, NullFormatter, PercentFormatter

from s2s_eval.reports import stats
from s2s_eval.reports.charts import INK, MUTED, figure, style_axes, svg

MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


@dataclass(frozen=True)
class Series:
    """One line of a chart: a legend label, a colour, and its points or values."""

    label: str
    colour: str
    values: Sequence[float] = ()
    dashed: bool = False


@dataclass(frozen=True)
class Point:
    """One model on one eval in the accuracy-vs-latency plane (accuracy and interval as fractions)."""

    label: str
    eval: str
    colour: str
    ttfa_p50_ms: float
    accuracy: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class TrendPoint:
    """One dated run of a model: accuracy with its interval, and TTFA p50 (None when not measured)."""

    when: dt.datetime
    accuracy: float | None
    low: float | None
    high: float | None
    ttfa_p50_ms: float | None


def _ms_axis(ax: Axes, values: Sequence[float], axis: str = "x") -> None:
    """Log scale when latencies span more than a factor of 20 (a local server next to a cloud API)."""
    positive = [v for v in values if v > 0]
    target = ax.xaxis if axis == "x" else ax.yaxis
    if positive and max(positive) / min(positive) > 20:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        target.set_minor_formatter(NullFormatter())  # its default labels are mathtext, which is switched off
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))


def _short(label: str, width: int = 60) -> str:
    return label if len(label) <= width else f"{label[:width - 1]}…"


def _legend(ax: Axes, n: int) -> None:
    """Below the plot, where it hides no line; long labels (provider, model, effort) get fewer per row."""
    longest = max((len(text) for text in ax.get_legend_handles_labels()[1]), default=1)
    per_row = max(1, min(3, 120 // longest))
    ax.figure.legend(loc="outside lower center", frameon=False, fontsize=8.5, ncol=min(max(n, 1), per_row),
                     handlelength=1.6)


def cdf_chart(series: Sequence[Series], title: str, xlabel: str = "Time to first audio (ms)",
              ylabel: str = "Share of answers") -> bytes:
    """Empirical CDF of one latency per model: how many answers started within x ms (as SVG)."""
    with figure(10.5, 4.2) as fig:
        ax = fig.add_subplot()
        everything: list[float] = []
        for s in series:
            xs, ys = stats.ecdf(s.values)
            if xs.size == 0:
                continue
            everything.extend(xs.tolist())
            ax.step(xs, ys * 100, where="post", color=s.colour, linewidth=1.8,
                    linestyle="--" if s.dashed else "-", label=f"{s.label} (n={len(s.values):,})")
        for share in (50, 90, 99):
            ax.axhline(share, color=MUTED, linewidth=0.6, linestyle=":", zorder=1)
            ax.text(1.0, share, f" p{share}", transform=ax.get_yaxis_transform(), fontsize=7.5, color=MUTED,
                    va="center", ha="left")
        _ms_axis(ax, everything)
        ax.set_ylim(0, 101)
        ax.yaxis.set_major_locator(MultipleLocator(25))
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        style_axes(ax, "both")
        if everything:
            _legend(ax, len(series))
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color=MUTED)
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        return svg(fig)


def scatter_chart(points: Sequence[Point], title: str) -> bytes:
    """Accuracy (with its interval) against TTFA p50: up and to the left is better (as SVG)."""
    markers = {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(dict.fromkeys(p.eval for p in points))}
    with figure(10.5, 4.6) as fig:
        ax = fig.add_subplot()
        for p in points:
            y = p.accuracy * 100
            yerr = None if p.low is None or p.high is None else [[y - p.low * 100], [p.high * 100 - y]]
            ax.errorbar([p.ttfa_p50_ms], [y], yerr=yerr, fmt=markers[p.eval], color=p.colour, markersize=8,
                        elinewidth=1, capsize=3, zorder=3)
            ax.annotate(_short(p.label), (p.ttfa_p50_ms, y), textcoords="offset points",
                        xytext=(7, 5), fontsize=8, color=INK)
        for name, marker in markers.items():  # legend: marker = eval (colour = model, as everywhere)
            ax.plot([], [], marker, color=MUTED, label=name, linestyle="none")
        _ms_axis(ax, [p.ttfa_p50_ms for p in points])
        if points and len({round(p.ttfa_p50_ms, 3) for p in points}) == 1:  # one x: give it room
            x = points[0].ttfa_p50_ms
            ax.set_xlim(x * 0.5, x * 1.5 + 1)
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_xlabel("TTFA p50 (ms) — lower is faster")
        ax.set_ylabel("Accuracy")
        style_axes(ax, "both")
        if markers:
            _legend(ax, len(markers))
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        return svg(fig)


def concurrency_chart(lines: Sequence[tuple[str, str, Sequence[tuple[int, float | None, float | None]]]],
                      title: str) -> bytes:
    """TTFA p50 (solid) and p90 (dashed) against sessions at once, one colour per model (as SVG).

    `lines` holds (model, colour, [(concurrency, p50, p90), ...]) with points sorted by concurrency.
    """
    with figure(10.5, 4.2) as fig:
        ax = fig.add_subplot()
        levels: set[int] = set()
        values: list[float] = []
        for name, colour, pts in lines:
            for q, (index, dashed) in (("p50", (1, False)), ("p90", (2, True))):
                xy = [(p[0], p[index]) for p in pts if p[index] is not None]
                if not xy:
                    continue
                xs, ys = zip(*xy, strict=True)
                levels.update(xs)
                values.extend(ys)
                ax.plot(xs, ys, marker="o", color=colour, linestyle="--" if dashed else "-", linewidth=1.6,
                        markersize=5, label=f"{name} {q}")
        if levels:
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(levels), [str(x) for x in sorted(levels)])
            ax.minorticks_off()
        _ms_axis(ax, values, "y")
        ax.set_xlabel("Sessions at once (concurrency)")
        ax.set_ylabel("TTFA (ms)")
        style_axes(ax, "both")
        if values:
            _legend(ax, len(lines) * 2)
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        return svg(fig)


def trend_chart(series: Sequence[tuple[str, str, Sequence[TrendPoint]]], title: str) -> bytes:
    """Accuracy (band = 95% interval) and TTFA p50 over dated runs, one colour per model (as SVG)."""
    with figure(10.5, 5.6) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        ttfa_values: list[float] = []
        for name, colour, points in series:
            pts = sorted(points, key=lambda p: p.when)
            acc = [(p.when, p.accuracy * 100, p.low, p.high) for p in pts if p.accuracy is not None]
            if acc:
                when = [a[0] for a in acc]
                top.plot(when, [a[1] for a in acc], marker="o", color=colour, linewidth=1.8, markersize=4,
                         label=name)
                bands = [(a[0], a[2], a[3]) for a in acc if a[2] is not None and a[3] is not None]
                if len(bands) > 1:
                    top.fill_between([b[0] for b in bands], [b[1] * 100 for b in bands],
                                     [b[2] * 100 for b in bands], color=colour, alpha=0.15, linewidth=0)
            lat = [(p.when, p.ttfa_p50_ms) for p in pts if p.ttfa_p50_ms is not None]
            if lat:
                ttfa_values.extend(v for _, v in lat)
                bottom.plot([w for w, _ in lat], [v for _, v in lat], marker="o", color=colour, linewidth=1.6,
                            markersize=4)
        top.set_ylim(0, 100)
        top.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        top.set_ylabel("Accuracy")
        bottom.set_ylabel("TTFA p50 (ms)")
        if ttfa_values:
            bottom.set_ylim(0, max(ttfa_values) * 1.15 or 1.0)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        for ax in (top, bottom):
            style_axes(ax, "both")
        if series:
            _legend(top, len(series))
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        return svg(fig)


def level_chart(lines: Sequence[tuple[str, str, Sequence[tuple[float, float | None, stats.Interval | None]]]],
                axis: str, title: str, *, descending: bool = False) -> bytes:
    """Accuracy (whisker = 95% interval) against a perturbation level, one line per model (as SVG).

    `lines` holds (label, colour, [(level, accuracy, interval), ...]); `descending` puts high levels first
    (SNR: clean on the left, noisier to the right).
    """
    with figure(10.5, 4.2) as fig:
        ax = fig.add_subplot()
        levels: set[float] = set()
        for i, (label, colour, points) in enumerate(lines):
            pts = [(x, acc * 100, ci) for x, acc, ci in points if acc is not None]
            if not pts:
                continue
            xs = [p[0] for p in pts]
            levels.update(xs)
            ys = [p[1] for p in pts]
            ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=colour, linewidth=1.8, markersize=5,
                    label=label)
            lows = [y - p[2].low * 100 if p[2] else 0.0 for y, p in zip(ys, pts, strict=True)]
            highs = [p[2].high * 100 - y if p[2] else 0.0 for y, p in zip(ys, pts, strict=True)]
            ax.errorbar(xs, ys, yerr=[lows, highs], fmt="none", ecolor=colour, elinewidth=1, capsize=3, alpha=0.6)
        if levels:
            ax.set_xticks(sorted(levels), [f"{x:g}" for x in sorted(levels)])
            if descending:
                ax.invert_xaxis()
        ax.set_ylim(0, 100)
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_xlabel(axis)
        ax.set_ylabel("Accuracy")
        style_axes(ax, "both")
        if levels:
            _legend(ax, len(lines))
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        return svg(fig)
