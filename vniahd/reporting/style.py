"""Shared look of every report figure: colormaps, tick labels, sizes, atomic PNG saving.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas (never pyplot), so
reports can be drawn from any thread and never open a window.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from vniahd.files import atomic_path

#: The community's V-NIAH heatmap colours, red → yellow → green (as in the reference scripts).
HEATMAP_COLORS = ("#F0496E", "#EBB839", "#9ad5b3")
HEATMAP_CMAP = LinearSegmentedColormap.from_list("vniah", list(HEATMAP_COLORS))
#: Differences from a baseline: red worse, blue better, white no change.
DELTA_CMAP = "RdBu"
#: Background of cells without data: light grey with hatching, so "no data" never reads as 0.
MISSING_FACE = "#f1f1f1"
MISSING_HATCH_COLOR = "#c4c4c4"
DPI = 150
FONT = {"title": 11, "label": 10.5, "tick": 9, "annot": 8}

#: Line styles by schedule: V-NIAH solid, V-NIAH-D dashed (schedules of :mod:`vniahd.plan.schedules`).
SCHEDULE_LINESTYLES = {"none": "-", "reference": "--", "periodic": "-.", "unknown": "-"}


def linestyle(schedule: str) -> str:
    return SCHEDULE_LINESTYLES.get(schedule, ":")


def format_k(value: float) -> str:
    """Compact tick label: 950 → "950", 1200 → "1.2K", 417600 → "417.6K", 1.5e6 → "1.5M"."""
    v = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= limit:
            text = f"{v / limit:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{v:g}"


def format_x(value: float, x: str) -> str:
    """Tick label of a length: whole frames as digits, tokens compact ("1.2K")."""
    return format_k(value) if x in ("tokens", "context") else f"{int(round(value))}"


def format_depth(value: float) -> str:
    return f"{value:.4g}"


def x_label(x: str) -> str:
    if x == "context":  # the stack task: filler text + clip + question
        return "Context Length (tokens)"
    return "Num. of Tokens" if x == "tokens" else "Num. of Frames"


def clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on the Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | Path, dpi: float = DPI) -> Path:
    """Write ``fig`` to ``path`` atomically (temp file + rename) as a PNG."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")
    return path


def ci_text(mean: float, lo: float, hi: float) -> str:
    """ "0.873 [0.842, 0.899]" (a mean with its 95% interval), or "n/a"."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
