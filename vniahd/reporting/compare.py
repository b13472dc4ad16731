"""Side-by-side comparisons: every variant's heatmap on one figure, and differences from a baseline.

``compare.png`` has one panel per (model, variant, scoring, benchmark) — variants side by side, one
row per benchmark on short grids, one row per variant on long ones — with one shared 0..1 colour
bar, and each panel titled with its mean and Wilson 95% interval. Rows of more than
:data:`MAX_COLS` panels wrap. ``delta_<variant>.png`` shows variant − baseline per cell
on a diverging colormap with symmetric limits (white = no change), one panel per (model, scoring,
benchmark) where both exist. A benchmark is one dataset of one schedule
(:class:`~vniahd.reporting.aggregate.GroupKey`), titled by its distinct label.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from vniahd.errors import VniahdError
from vniahd.reporting import aggregate, style
from vniahd.reporting.heatmap import cell_size_inches, draw_grid
from vniahd.reporting.sources import safe_name

MAX_COLS = 4
#: Above this many lengths, compare.png puts one variant per row (benchmarks side by side).
WIDE_MAX_LENGTHS = 8
#: Compare panels are smaller than a lone heatmap: print cell values only on short grids.
COMPARE_MAX_ANNOTATED = 10


def _panel_size(tables: list[pd.DataFrame]) -> tuple[float, float]:
    n_depth = max(t.shape[0] for t in tables)
    n_len = max(t.shape[1] for t in tables)
    cw, ch = cell_size_inches(n_len, n_depth)
    # Panels are narrower than a lone heatmap: cells shrink, but labels stay 9 pt.
    width = style.clamp(0.75 * cw * n_len, 2.4, 7.0) + 0.8
    height = style.clamp(0.85 * ch * n_depth, 1.8, 5.0) + 1.5
    return width, height


def _layout(n_panels_per_row: list[int]) -> tuple[list[tuple[int, int]], int, int]:
    """Grid positions of panels, wrapping each logical row at MAX_COLS."""
    cols = min(MAX_COLS, max(n_panels_per_row))
    positions, r = [], 0
    for count in n_panels_per_row:
        for i in range(count):
            positions.append((r + i // cols, i % cols))
        r += math.ceil(count / cols)
    return positions, r, cols


def plot_compare(
    records: pd.DataFrame, path: str | Path, *, x: str = "frames", annotate: bool | None = None
) -> Path:
    """All groups as heatmap panels with one shared colour bar.

    Short grids (≤ :data:`WIDE_MAX_LENGTHS` lengths) put the variants side by side in a row per
    benchmark; longer grids put one variant per row and its benchmarks side by side, so panels
    stay wide enough for readable labels.
    """
    groups = aggregate.groups(records)
    variants = list(dict.fromkeys((k.model_spec, k.model_fp, k.variant) for k, _ in groups))
    benches = list(dict.fromkeys((k.scoring, k.schedule, k.dataset) for k, _ in groups))
    by_key = {k: g for k, g in groups}
    model_label = {k.model: aggregate.label(g, "model") for k, g in groups}
    bench_label = {k.bench: aggregate.label(g, "benchmark") for k, g in groups}
    benches.sort(
        key=lambda b: (b[0], aggregate.schedule_order(b[1]), aggregate.natural_key(bench_label[(b[1], b[2])]))
    )
    tables = {k: aggregate.pivot(g, aggregate.axis(g, x)) for k, g in groups}
    n_len = max(t.shape[1] for t in tables.values())
    many_models = len({v[:2] for v in variants}) > 1
    many_scorings = len({b[0] for b in benches}) > 1
    by_variant = n_len > WIDE_MAX_LENGTHS and len(variants) > 1
    if by_variant:
        panels = [[(v, b) for b in benches] for v in variants]
    else:
        panels = [[(v, b) for v in variants] for b in benches]
    positions, nrows, ncols = _layout([len(p) for p in panels])
    pw, ph = _panel_size(list(tables.values()))
    cell_w = (pw - 0.8) / n_len
    fig = style.new_figure(pw * ncols + 1.0, ph * nrows)
    grid = fig.add_gridspec(nrows, ncols)
    mesh, axes = None, []
    for (v, b), (gi, gj) in zip([p for row in panels for p in row], positions):
        ax = fig.add_subplot(grid[gi, gj])
        axes.append(ax)
        key = aggregate.GroupKey(v[0], v[1], v[2], b[0], b[1], b[2])
        name = v[2]
        if many_models:
            name = f"{model_label[v[:2]]} · {name}"
        bench = bench_label[(b[1], b[2])] + (f" · {b[0]}" if many_scorings else "")
        if key not in by_key:
            ax.set_axis_off()
            ax.text(
                0.5,
                0.5,
                f"{name}\nno {bench} results",
                ha="center",
                va="center",
                fontsize=style.FONT["label"],
                color="#777777",
                transform=ax.transAxes,
            )
            continue
        mesh = draw_grid(
            ax,
            tables[key],
            x=aggregate.axis(by_key[key], x),
            annotate=annotate,
            show_ylabels=(gj == 0),
            max_annotated_lengths=COMPARE_MAX_ANNOTATED,
            max_xlabels=16,
            cell_width_in=cell_w,
        )
        mean, lo, hi, _ = aggregate.group_mean(by_key[key])
        ax.set_title(
            f"{name} · {bench}\nmean {style.ci_text(mean, lo, hi)}", fontsize=style.FONT["title"] - 1
        )
    assert mesh is not None  # every group's own panel has data
    cbar = fig.colorbar(
        mesh, ax=axes, fraction=0.04 if ncols > 1 else 0.06, pad=0.02, shrink=0.9 if nrows == 1 else 0.6
    )
    cbar.set_label("Accuracy", fontsize=style.FONT["label"])
    cbar.ax.tick_params(labelsize=style.FONT["tick"])
    cbar.outline.set_visible(False)
    return style.save_png(fig, path)


def _symmetric_limit(values: np.ndarray) -> float:
    """Colour limit ±L for differences: the largest |Δ| rounded up to 0.1, at least 0.1."""
    finite = np.abs(values[np.isfinite(values)])
    biggest = float(finite.max()) if finite.size else 0.0
    return min(1.0, max(0.1, math.ceil(biggest * 10 - 1e-9) / 10))


def plot_deltas(
    records: pd.DataFrame,
    baseline: str,
    out_dir: str | Path,
    *,
    x: str = "frames",
    annotate: bool | None = None,
) -> dict[str, Path]:
    """``delta_<variant>.png`` for every variant other than ``baseline``; returns name → path."""
    variants = list(dict.fromkeys(records["variant"]))
    if baseline not in variants:
        raise VniahdError(
            f"baseline variant {baseline!r} is not in these results; variants found: {', '.join(variants)}"
        )
    groups = dict(aggregate.groups(records))
    out: dict[str, Path] = {}
    for variant in variants:
        if variant == baseline:
            continue
        pairs = [
            (k, k._replace(variant=baseline))
            for k in groups
            if k.variant == variant and k._replace(variant=baseline) in groups
        ]
        if not pairs:
            continue
        deltas = [
            aggregate.delta(
                aggregate.pivot(groups[k], aggregate.axis(groups[k], x)),
                aggregate.pivot(groups[b], aggregate.axis(groups[b], x)),
            )
            for k, b in pairs
        ]
        limit = _symmetric_limit(np.concatenate([d.to_numpy(dtype=float).ravel() for d in deltas]))
        norm = Normalize(vmin=-limit, vmax=limit)  # symmetric: white is exactly zero
        positions, nrows, ncols = _layout([len(pairs)])
        pw, ph = _panel_size(deltas)
        cell_w = (pw - 0.8) / max(d.shape[1] for d in deltas)
        fig = style.new_figure(pw * ncols + 1.0, ph * nrows)
        grid = fig.add_gridspec(nrows, ncols)
        axes, mesh = [], None
        for (k, b), d, (gi, gj) in zip(pairs, deltas, positions):
            ax = fig.add_subplot(grid[gi, gj])
            axes.append(ax)
            mesh = draw_grid(
                ax,
                d,
                x=aggregate.axis(groups[k], x),
                cmap=style.DELTA_CMAP,
                norm=norm,
                annotate=annotate,
                signed=True,
                show_ylabels=(gj == 0),
                max_annotated_lengths=COMPARE_MAX_ANNOTATED,
                max_xlabels=16,
                cell_width_in=cell_w,
            )
            m_t = aggregate.group_mean(groups[k])[0]
            m_b = aggregate.group_mean(groups[b])[0]
            model = aggregate.label(groups[k], "model")
            ax.set_title(
                f"{variant} − {baseline} · {model}\n"
                f"{aggregate.label(groups[k], 'benchmark')} · "
                f"{k.scoring} · mean Δ {m_t - m_b:+.3f}",
                fontsize=style.FONT["title"] - 1,
            )
        assert mesh is not None  # pairs is not empty
        cbar = fig.colorbar(mesh, ax=axes, fraction=0.05, pad=0.02)
        cbar.set_label(f"Accuracy − {baseline}", fontsize=style.FONT["label"])
        cbar.ax.tick_params(labelsize=style.FONT["tick"])
        cbar.outline.set_visible(False)
        name = f"delta_{safe_name(variant)}.png"
        out[name] = style.save_png(fig, Path(out_dir) / name)
    return out
