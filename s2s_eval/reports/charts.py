"""Charts for reports: matplotlib (Agg, no pyplot state) rendered to SVG bytes for embedding as a data URI."""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Sequence

import matplotlib
import pandas as pd
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
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(fig_width, 4.4), layout="constrained")
        FigureCanvasAgg(fig)
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
        ax.grid(axis="y", color=GRID, linewidth=0.8, zorder=0)
        ax.tick_params(axis="both", length=0)
        ax.spines[["top", "right"]].set_visible(False)
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        fig.legend(loc="outside upper right", ncol=min(n_models, 3), frameon=False, handlelength=1.0,
                   handleheight=1.0, fontsize=9)
        out = io.BytesIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def data_uri(image: bytes, mime: str = "image/svg+xml") -> str:
    """`data:` URI of image bytes, for an `<img src>` in a self-contained page."""
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
