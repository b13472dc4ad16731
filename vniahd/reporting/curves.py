"""``accuracy_vs_length.png``: mean accuracy against haystack length, one line per variant.

Each line pools depths and needles at every length, with its Wilson 95% band. Colour identifies
the (model,) variant; line style the benchmark — V-NIAH (schedule ``none``) solid, V-NIAH-D
(``reference``) dashed, ``periodic`` dash-dot — so both benchmarks of a variant share a colour.
Several scoring modes get one panel each. Datasets that share a schedule (labelled apart, e.g.
``V-NIAH-D [period 4]``) also differ in marker.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import FuncFormatter, MaxNLocator

from vniahd.reporting import aggregate, style

#: Colour-blind-safe qualitative palette (Okabe & Ito 2008), then matplotlib's tab10 for more.
#: Markers of the first, second, … dataset of one schedule.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def _colour(i: int) -> str | tuple[float, float, float, float]:
    """A hex colour from the palette, then tab10's RGBA tuples."""
    if i < len(PALETTE):
        return PALETTE[i]
    return colormaps["tab10"](i % 10)


def plot_curves(records: pd.DataFrame, path: str | Path, *, x: str = "frames") -> Path:
    """Accuracy vs. length, one line per group. The stack task's lengths count context tokens,
    another axis: beside other benchmarks its lines are left out (its heatmaps show it)."""
    stack = aggregate.is_stack(records)
    if stack.any() and not stack.all():
        records = records[~stack]
    x = aggregate.axis(records, x)
    groups = aggregate.groups(records)
    scorings = list(dict.fromkeys(k.scoring for k, _ in groups))
    lines = list(dict.fromkeys((k.model_spec, k.model_fp, k.variant) for k, _ in groups))
    colours = {ln: _colour(i) for i, ln in enumerate(lines)}
    many_models = len({ln[:2] for ln in lines}) > 1
    markers: dict[tuple[str, str], str] = {}
    for k, _ in groups:  # the n-th dataset of a schedule gets the n-th marker
        same = [b for b in markers if b[0] == k.schedule]
        markers.setdefault(k.bench, MARKERS[len(same) % len(MARKERS)])
    fig = style.new_figure(5.2 * len(scorings) + 2.4, 4.4)
    axes = fig.subplots(1, len(scorings), squeeze=False, sharey=True)[0]
    all_x: set[float] = set()
    for ax, scoring in zip(axes, scorings):
        for key, g in groups:
            if key.scoring != scoring:
                continue
            c = aggregate.curve(g, x)
            all_x.update(c["x"])
            name = f"{aggregate.label(g, 'model')} · {key.variant}" if many_models else key.variant
            colour = colours[(key.model_spec, key.model_fp, key.variant)]
            ax.fill_between(c["x"], c["ci_low"], c["ci_high"], color=colour, alpha=0.10, linewidth=0)
            ax.plot(
                c["x"],
                c["mean"],
                linestyle=style.linestyle(key.schedule),
                color=colour,
                marker=markers[key.bench],
                markersize=3.5,
                linewidth=1.8,
                label=f"{name} · {aggregate.label(g, 'benchmark')}",
            )
        ax.set_title(
            f"{scoring} scoring" if len(scorings) > 1 else "Accuracy vs. length", fontsize=style.FONT["title"]
        )
        ax.set_xlabel(style.x_label(x), fontsize=style.FONT["label"])
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(labelsize=style.FONT["tick"])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: style.format_x(v, x)))
    xs = sorted(all_x)
    for ax in axes:
        if len(xs) <= 8:
            ax.set_xticks(xs)  # a short grid: label exactly the lengths measured
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True))
        if len(xs) > 1:
            pad = 0.03 * (xs[-1] - xs[0])
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)
    axes[0].set_ylabel("Mean accuracy (95% CI band)", fontsize=style.FONT["label"])
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside right center", fontsize=style.FONT["tick"], frameon=False)
    return style.save_png(fig, path)
