"""Depth × length heatmaps in the V-NIAH community's style (docs/reference-protocol.md), matplotlib only.

Two styles (:data:`STYLES`, ``vniahd plot --style``):

- ``default``: depth ("Depth Percent", 0 at the top) on y, length on x, the red→yellow→green
  colormap on a fixed 0..1 scale, white cell borders, and the mean accuracy with its 95% interval
  in the title; values in the cells of grids small enough to read them. Cells without data are
  left unpainted over a grey hatched background, so they never read as zero.
- ``reference``: the released V-NIAH-D heatmap (``plot`` in VideoRoPE's
  ``vision_niah_d/eval_vision_niah*.py``, seaborn) redrawn with matplotlib: 17.5×8 in at 100 dpi
  (1750×800 px), length ticks through its ``thousands_formatter`` (``1.1K``) rotated 45°, depth
  ticks ``0.0 … 100.0``, 14 pt text, white 1.5 pt cell borders, a colour bar labelled "Score"
  without outline, no title and no values in the cells. Cells without data stay blank, as there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vniahd.errors import VniahdError
from vniahd.files import sha256_bytes
from vniahd.reporting import aggregate, style
from vniahd.reporting.sources import safe_name


def cell_size_inches(num_lengths: int, num_depths: int) -> tuple[float, float]:
    """Width and height of one cell: roomy for 3 lengths, compact (but labelled) for 30."""
    w = style.clamp(0.95 - 0.03 * num_lengths, 0.34, 0.85)
    h = style.clamp(0.62 - 0.01 * num_depths, 0.3, 0.55)
    return w, h


def should_annotate(table: pd.DataFrame, annotate: bool | None, max_lengths: int = 16) -> bool:
    """Print values in cells unless the grid is too dense for legible numbers."""
    if annotate is not None:
        return annotate
    return table.shape[1] <= max_lengths and table.shape[0] <= 12


def draw_grid(
    ax: Axes,
    table: pd.DataFrame,
    *,
    x: str = "frames",
    cmap=style.HEATMAP_CMAP,
    norm: Normalize | None = None,
    annotate: bool | None = None,
    signed: bool = False,
    show_ylabels: bool = True,
    max_annotated_lengths: int = 16,
    max_xlabels: int = 32,
    cell_width_in: float | None = None,
) -> QuadMesh:
    """Draw one pivot table (index depth %, columns length) on ``ax``; returns the mesh."""
    norm = norm or Normalize(vmin=0.0, vmax=1.0)
    values = table.to_numpy(dtype=float)
    n_depth, n_len = values.shape
    # Hatched background: visible only where a cell is masked (no data).
    ax.add_patch(
        Rectangle(
            (0, 0),
            n_len,
            n_depth,
            facecolor=style.MISSING_FACE,
            edgecolor=style.MISSING_HATCH_COLOR,
            hatch="///",
            linewidth=0,
            zorder=0,
        )
    )
    border = style.clamp(2.4 - 0.06 * n_len, 0.8, 2.0)
    mesh = ax.pcolormesh(
        np.arange(n_len + 1),
        np.arange(n_depth + 1),
        np.ma.masked_invalid(values),
        cmap=cmap,
        norm=norm,
        edgecolors="white",
        linewidth=border,
        zorder=1,
    )
    ax.set_xlim(0, n_len)
    ax.set_ylim(n_depth, 0)  # depth 0 % at the top, as in the community's figures
    ax.set_xticks(np.arange(n_len) + 0.5)
    step = math.ceil(n_len / max_xlabels)  # dense grids in small panels: label every step-th
    lengths = cast("Iterable[float]", table.columns)  # pandas-stubs type columns as str labels
    labels = [style.format_x(v, x) if j % step == 0 else "" for j, v in enumerate(lengths)]
    # Rotate only when the widest label would not fit its cell(s) upright (9 pt ≈ 0.075 in/char).
    room = (cell_width_in or cell_size_inches(n_len, n_depth)[0]) * step
    rotate = max(len(t) for t in labels) * 0.075 > 0.9 * room
    ax.set_xticklabels(
        labels,
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor",
        fontsize=style.FONT["tick"],
    )
    ax.set_yticks(np.arange(n_depth) + 0.5)
    ax.set_yticklabels(
        [style.format_depth(v) for v in table.index] if show_ylabels else [], fontsize=style.FONT["tick"]
    )
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel(style.x_label(x), fontsize=style.FONT["label"])
    if show_ylabels:
        ax.set_ylabel("Depth Percent", fontsize=style.FONT["label"])
    if should_annotate(table, annotate, max_annotated_lengths):
        fontsize = style.FONT["annot"] if n_len <= 10 else style.FONT["annot"] - 0.5
        for i in range(n_depth):
            for j in range(n_len):
                v = values[i, j]
                if math.isnan(v):
                    continue
                text = (f"{v:+.2f}" if abs(v) >= 0.005 else "0") if signed else f"{v:.2f}"
                dark = signed and abs(norm(v) - 0.5) > 0.33  # deep ends of a diverging map
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    text,
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if dark else "#222222",
                    zorder=2,
                )
    return mesh


def figure_size(table: pd.DataFrame, panels: int = 1) -> tuple[float, float]:
    """Figure size of a single heatmap with its colour bar and a two-line title."""
    n_depth, n_len = table.shape
    cw, ch = cell_size_inches(n_len, n_depth)
    width = style.clamp(cw * n_len, 3.2, 12.0) + 2.0  # + y label, ticks and colour bar
    height = style.clamp(ch * n_depth, 2.0, 7.0) + 1.9  # + title and rotated x labels
    return width, height


def title_lines(
    model: str, variant: str, benchmark: str, scoring: str, mean: float, lo: float, hi: float
) -> str:
    """``benchmark``: the group's benchmark label (``V-NIAH-D``, ``V-NIAH-D [period 4]``)."""
    return f"{model} · {variant}\n{benchmark} · {scoring} scoring · mean {style.ci_text(mean, lo, hi)}"


#: Heatmap styles of ``vniahd plot --style`` (module docstring).
STYLES = ("default", "reference")
#: The released heatmap: ``plt.figure(figsize=(17.5, 8))`` saved at matplotlib's default 100 dpi.
REFERENCE_FIGSIZE = (17.5, 8.0)
REFERENCE_DPI = 100
REFERENCE_FONTSIZE = 14


def reference_tick(value: float) -> str:
    """The released ``thousands_formatter``: 1100 → "1.1K", 1000 → "1.0K", 900 → "900"."""
    v = float(value)
    if v >= 1000:
        return f"{v / 1000:.1f}K"
    return str(int(v)) if v == int(v) else f"{v:g}"


def reference_figure(records: pd.DataFrame, *, x: str = "frames") -> Figure:
    """One group's heatmap in the released style (module docstring), as a figure."""
    x = aggregate.axis(records, x)
    table = aggregate.pivot(records, x)
    values = table.to_numpy(dtype=float)
    n_depth, n_len = values.shape
    fig = Figure(figsize=REFERENCE_FIGSIZE, dpi=REFERENCE_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(
        np.arange(n_len + 1),
        np.arange(n_depth + 1),
        np.ma.masked_invalid(values),
        cmap=style.HEATMAP_CMAP,
        norm=Normalize(vmin=0.0, vmax=1.0),
        edgecolors="white",
        linewidth=1.5,
    )
    ax.set_xlim(0, n_len)
    ax.set_ylim(n_depth, 0)  # seaborn draws the first row (depth 0) at the top
    for side in ax.spines.values():
        side.set_visible(False)
    lengths = cast("Iterable[float]", table.columns)
    ax.set_xticks(
        np.arange(n_len) + 0.5,
        [reference_tick(v) for v in lengths],
        rotation=45,
        fontsize=REFERENCE_FONTSIZE,
    )
    depths = cast("Iterable[float]", table.index)
    ax.set_yticks(
        np.arange(n_depth) + 0.5, [f"{float(v):.1f}" for v in depths], rotation=0, fontsize=REFERENCE_FONTSIZE
    )
    ax.set_xlabel(style.x_label(x), fontsize=REFERENCE_FONTSIZE)
    ax.set_ylabel("Depth Percent", fontsize=REFERENCE_FONTSIZE)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label("Score", size=REFERENCE_FONTSIZE)
    cbar.ax.tick_params(labelsize=REFERENCE_FONTSIZE)
    cbar.outline.set_linewidth(0)
    fig.tight_layout()
    return fig


def plot_heatmap(
    records: pd.DataFrame,
    path: str | Path,
    *,
    x: str = "frames",
    annotate: bool | None = None,
    heatmap_style: str = "default",
) -> Path:
    """One group's heatmap PNG at ``path`` in ``heatmap_style`` (:data:`STYLES`; ``annotate``
    applies to the default style only: the released heatmaps print no values)."""
    if heatmap_style == "reference":
        return style.save_png(reference_figure(records, x=x), path, dpi=REFERENCE_DPI)
    if heatmap_style != "default":
        raise VniahdError(f"unknown heatmap style {heatmap_style!r}; use one of {', '.join(STYLES)}")
    x = aggregate.axis(records, x)
    table = aggregate.pivot(records, x)
    mean, lo, hi, _ = aggregate.group_mean(records)
    first = records.iloc[0]
    fig = style.new_figure(*figure_size(table))
    ax = fig.add_subplot()
    mesh = draw_grid(ax, table, x=x, annotate=annotate)
    ax.set_title(
        title_lines(first["model"], first["variant"], first["benchmark"], first["scoring"], mean, lo, hi),
        fontsize=style.FONT["title"],
        wrap=True,
    )
    cbar = fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02)
    cbar.set_label("Accuracy", fontsize=style.FONT["label"])
    cbar.ax.tick_params(labelsize=style.FONT["tick"])
    cbar.outline.set_visible(False)
    if table.isna().to_numpy().any():
        fig.text(
            0.995,
            0.005,
            "hatched: no data",
            ha="right",
            va="bottom",
            fontsize=style.FONT["tick"] - 1,
            color="#666666",
        )
    return style.save_png(fig, path)


#: Longest file name we write (most file systems allow 255 bytes; leave room for a temp suffix).
MAX_NAME = 200


def heatmap_filename(model: str, variant: str, scoring: str, schedule: str, dataset_tag: str = "") -> str:
    """``heatmap_<model>_<variant>_scoring-<scoring>_schedule-<schedule>[_dataset-<tag>].png``.

    Scoring and schedule are named, so ``…_scoring-reference_schedule-reference.png`` cannot be
    misread; ``dataset_tag`` (e.g. ``period 4``) tells apart datasets with the same schedule. Every
    part is :func:`~vniahd.reporting.sources.safe_name`-d; a name over :data:`MAX_NAME` characters is cut
    and ends in a hash of the whole.
    """
    parts = [
        safe_name(model),
        safe_name(variant),
        f"scoring-{safe_name(scoring)}",
        f"schedule-{safe_name(schedule)}",
    ]
    if dataset_tag:
        parts.append(f"dataset-{safe_name(dataset_tag)}")
    stem = "heatmap_" + "_".join(parts)
    if len(stem) + 4 > MAX_NAME:
        stem = f"{stem[: MAX_NAME - 4 - 9]}_{sha256_bytes(stem)[:8]}"
    return f"{stem}.png"


def heatmap_filenames(
    groups: list[tuple[aggregate.GroupKey, pd.DataFrame]],
) -> dict[aggregate.GroupKey, str]:
    """File name of every group's heatmap (:func:`heatmap_filename`), distinct per group.

    The model and dataset labels of :mod:`vniahd.reporting.load` are already distinct per identity;
    should two names still coincide (labels that differ only in characters a file name cannot
    hold), each gets an 8-hex-digit hash of its group key appended.
    """
    names = {
        k: heatmap_filename(
            aggregate.label(g, "model"), k.variant, k.scoring, k.schedule, aggregate.label(g, "dataset_tag")
        )
        for k, g in groups
    }
    seen: dict[str, list[aggregate.GroupKey]] = {}
    for k, n in names.items():
        seen.setdefault(n, []).append(k)
    for n, ks in seen.items():
        if len(ks) > 1:
            for k in ks:
                names[k] = f"{n[:-4]}_{sha256_bytes(chr(0).join(k))[:8]}.png"
    return names
