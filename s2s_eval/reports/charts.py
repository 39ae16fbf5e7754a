"""Charts for reports: matplotlib (Agg, no pyplot state) rendered to SVG bytes for embedding as a data URI."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator, PercentFormatter

# Colour-blind-friendlier, distinct hues; a model keeps its colour in every chart and table of one report.
PALETTE = ("#2563eb", "#f97316", "#10b981", "#8b5cf6", "#e11d48", "#0891b2", "#ca8a04", "#db2777", "#475569",
           "#65a30d")
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"

_STYLE = {
    # Category and model names are untrusted text: never let a `$` in them switch on mathtext (or TeX).
    "text.parse_math": False,
    "text.usetex": False,
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "text.color": INK,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": MUTED,
    "axes.edgecolor": "#9ca3af",
    "svg.fonttype": "path",  # glyphs as paths: the page needs no fonts and looks the same everywhere
    "svg.hashsalt": "s2s-eval",  # stable element ids, so the same runs give the same report bytes
}


@dataclass(frozen=True)
class Bar:
    """One model's headline bar: accuracy and its 95% interval (fractions; None when nothing was graded)."""

    label: str
    accuracy: float | None
    low: float | None = None
    high: float | None = None


@contextlib.contextmanager
def figure(width_in: float, height_in: float) -> Iterator[Figure]:
    """A constrained-layout figure under the report style, outside pyplot's global state."""
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def svg(fig: Figure) -> bytes:
    """The figure as SVG bytes, with no date in it (the same data gives the same bytes)."""
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def style_axes(ax: Axes, grid_axis: str = "y") -> None:
    """The report's quiet axes: a light grid, no tick marks, no top or right spine."""
    ax.grid(axis=grid_axis, color=GRID, linewidth=0.8, zorder=0)
    ax.tick_params(axis="both", length=0)
    ax.spines[["top", "right"]].set_visible(False)


def headline_chart(panels: dict[str, list[Bar]], colours: dict[str, str]) -> bytes:
    """The announcement's chart: one panel per eval, a bar per model with its accuracy printed on top, as SVG.

    A whisker shows the 95% interval (Wilson score for accuracy). A model with nothing graded gets an empty slot
    marked n/a.
    """
    n_panels = max(len(panels), 1)
    widest = max((len(bars) for bars in panels.values()), default=1)
    panel_w = min(max(3.4, 0.95 * widest + 1.2), 6.0)
    with figure(min(panel_w * n_panels + 0.4, 12.5), 4.2) as fig:
        axes = fig.subplots(1, n_panels, squeeze=False)[0]
        for ax, (eval_name, bars) in zip(axes, panels.items(), strict=False):
            xs = range(len(bars))
            for x, bar in zip(xs, bars, strict=True):
                colour = colours.get(bar.label, PALETTE[x % len(PALETTE)])
                if bar.accuracy is None:
                    ax.text(x, 2, "n/a", ha="center", va="bottom", fontsize=9, color=MUTED)
                    continue
                value = bar.accuracy * 100
                ax.bar(x, value, 0.7, color=colour, zorder=3)
                top = value
                if bar.low is not None and bar.high is not None:
                    ax.errorbar(x, value, yerr=[[value - bar.low * 100], [bar.high * 100 - value]], fmt="none",
                                ecolor=INK, elinewidth=1, capsize=3, zorder=4)
                    top = bar.high * 100
                ax.text(x, top + 1.5, f"{value:.1f}%", ha="center", va="bottom", fontsize=9, fontweight="bold",
                        zorder=5)
            ax.set_xticks(list(xs), [textwrap.fill(b.label, 18) for b in bars], rotation=30, ha="right",
                          fontsize=8.5)
            ax.set_xlim(-0.6, max(len(bars), 1) - 0.4)
            ax.set_ylim(0, 108)
            ax.yaxis.set_major_locator(MultipleLocator(20))
            ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
            ax.set_ylabel("Accuracy")
            ax.set_title(textwrap.fill(eval_name.replace("_", " "), 30), loc="left", fontsize=11,
                         fontweight="bold")
            style_axes(ax)
        return svg(fig)


def model_colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per model label, assigned in report order (cycling through the palette after ten models)."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(dict.fromkeys(labels))}


def _tick_label(category: str) -> str:
    return textwrap.fill(category.replace("_", " "), 16)


def accuracy_chart(pivot: pd.DataFrame, colours: dict[str, str], title: str, overall: str) -> bytes:
    """Grouped bars of accuracy (a fraction, NaN = nothing graded) per category (rows) and model (columns), as SVG.

    Bars carry their value as a label, the y axis runs 0–100 %, and the `overall` row's group is set apart by a rule.
    """
    categories = [str(c) for c in pivot.index]
    labels = [str(c) for c in pivot.columns]
    n_models = max(len(labels), 1)
    width = 0.8 / n_models
    # Shown at about its natural size (1 in ≈ 96 px) in a ~1,100 px column: wider figures would shrink the text.
    fig_width = min(max(10.0, 1.2 + len(categories) * (0.38 * n_models + 0.5)), 12.5)
    with figure(fig_width, 4.4) as fig:
        ax = fig.add_subplot()
        for m, label in enumerate(labels):
            xs = [i - 0.4 + width * (m + 0.5) for i in range(len(categories))]
            values = [math.nan if pd.isna(v) else float(v) * 100 for v in pivot[label]]
            bars = ax.bar(xs, [0 if math.isnan(v) else v for v in values], width * 0.92, label=label,
                          color=colours.get(label, PALETTE[m % len(PALETTE)]), zorder=3)
            for bar, value in zip(bars, values, strict=True):
                x = bar.get_x() + bar.get_width() / 2
                text, y, colour = (("n/a", 1.0, MUTED) if math.isnan(value) else (f"{value:.1f}%", value + 1.2, INK))
                ax.text(x, y, text, ha="center", va="bottom", fontsize=8, color=colour,
                        rotation=0 if n_models <= 4 else 90, clip_on=False, zorder=4)
        if overall in categories and len(categories) > 1:
            ax.axvline(categories.index(overall) - 0.5, color=GRID, linewidth=1.2, linestyle="--", zorder=1)
        ax.set_xticks(range(len(categories)), [_tick_label(c) for c in categories])
        for tick, category in zip(ax.get_xticklabels(), categories, strict=True):
            if category == overall:
                tick.set_fontweight("bold")
        ax.set_xlim(-0.6, len(categories) - 0.4)
        ax.set_ylim(0, 100)
        ax.yaxis.set_major_locator(MultipleLocator(20))
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_ylabel("Accuracy")
        style_axes(ax)
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        # Below the plot: labels that name provider, model and effort are too long to share a row with the title.
        per_row = max(1, min(3, 120 // max((len(label) for label in labels), default=1)))  # ~120 characters fit a row
        fig.legend(loc="outside lower center", ncol=min(n_models, per_row), frameon=False, handlelength=1.0,
                   handleheight=1.0, fontsize=9)
        return svg(fig)


def data_uri(image: bytes, mime: str = "image/svg+xml") -> str:
    """`data:` URI of image bytes, for an `<img src>` in a self-contained page."""
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
