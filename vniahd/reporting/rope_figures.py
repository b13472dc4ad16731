"""Figures of what a RoPE variant does, in the VideoRoPE paper's layout (arXiv 2502.05173).

- :func:`temporal_angle_figure` (Fig. 4): for the pairs a variant gives to time, the cosine of
  the angle a token turns by between frame 0 and frame f, against f, with the distractor spacing
  marked. M-RoPE's temporal pairs are the fastest and oscillate within a few frames; VideoRoPE's
  are the slowest and stay monotonic over hundreds, so a distractor one period away looks like
  the needle to one and not the other.
- :func:`adjacent_frames_figure` (Fig. 5): the (t, h, w) positions of two adjacent frames and the
  text around them, one 3-D panel per variant.

Each writes a PNG and, beside it, ``PATH.json`` with the plotted numbers and what made them
(variant specs, rotary config, vniahd version).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vniahd.files import write_json_atomic
from vniahd.reporting.style import FONT, new_figure, save_png


def _provenance(extra: dict[str, Any]) -> dict[str, Any]:
    from vniahd.provenance import provenance

    return {**extra, "provenance": provenance()}


def temporal_angle_figure(
    panels: Sequence[dict[str, Any]], path: str | Path, period: float | None, meta: dict[str, Any]
) -> Path:
    """``panels``: one dict per variant with ``name``, ``band`` (what was selected), ``pairs``
    (indices) and ``angles`` (float64 [frames, len(pairs)], from frame 0). ``period``: the
    distractor spacing in frames (a dashed line), or None."""
    import matplotlib as mpl

    path = Path(path)
    fig = new_figure(4.2 * len(panels), 3.4)
    # own y range per panel: VideoRoPE's slow temporal pairs stay near cos = 1 over hundreds of frames
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    record: dict[str, Any] = {}
    for ax, panel in zip(axes, panels):
        angles: torch.Tensor = panel["angles"]
        pairs: list[int] = panel["pairs"]
        frames = torch.arange(angles.shape[0]).tolist()
        cmap = mpl.colormaps["viridis"]
        for k, j in enumerate(pairs):
            color = cmap(k / max(1, len(pairs) - 1))
            ax.plot(frames, torch.cos(angles[:, k]).tolist(), color=color, linewidth=0.9, label=f"pair {j}")
        ax.set_xlim(0, max(1, len(frames) - 1))
        if not pairs:
            ax.text(0.5, 0.5, f"no {panel['band']} pairs", ha="center", va="center", transform=ax.transAxes)
        if period is not None and period < len(frames):
            ax.axvline(
                period, color="#d62728", linestyle="--", linewidth=1.0, label=f"distractor ({period:g})"
            )
        title = f"{panel['name']}: {panel['band']} pairs"
        title += f" {pairs[0]}–{pairs[-1]}" if pairs else " (none)"
        ax.set_title(title, fontsize=FONT["title"])
        ax.set_xlabel("frame distance", fontsize=FONT["label"])
        ax.tick_params(labelsize=FONT["tick"])
        if pairs and len(pairs) <= 8:
            ax.legend(fontsize=FONT["annot"], loc="lower left")
        record[panel["name"]] = {
            "spec": panel["spec"],
            "band": panel["band"],
            "pairs": pairs,
            "cos": torch.cos(angles).tolist(),
        }
    axes[0].set_ylabel("cos(angle turned since frame 0)", fontsize=FONT["label"])
    save_png(fig, path)
    write_json_atomic(
        path.with_name(path.name + ".json"),
        _provenance({"figure": "temporal-angles", "period_frames": period, **meta, "variants": record}),
    )
    return path


def adjacent_frames_figure(panels: Sequence[dict[str, Any]], path: str | Path, meta: dict[str, Any]) -> Path:
    """``panels``: one dict per variant with ``name``, ``spec``, ``streams`` (names), ``positions``
    (float64 [K, S]) and ``kinds`` (a label per token: ``text`` or ``frame F``)."""
    path = Path(path)
    fig = new_figure(4.0 * len(panels), 4.4)
    record: dict[str, Any] = {}
    colors = {"text": "#7f7f7f"}
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
        pos: torch.Tensor = panel["positions"]
        kinds: list[str] = panel["kinds"]
        for kind in dict.fromkeys(kinds):
            idx = [n for n, k in enumerate(kinds) if k == kind]
            color = colors.setdefault(kind, palette[(len(colors) - 1) % len(palette)])
            xs, ys, zs = (pos[a, idx].tolist() for a in range(3))
            ax.scatter(xs, ys, zs, s=14, color=color, label=kind, depthshade=False)
        names = panel["streams"]
        ax.set_xlabel(names[0], fontsize=FONT["label"])
        ax.set_ylabel(names[1], fontsize=FONT["label"])
        ax.set_zlabel(names[2], fontsize=FONT["label"])
        title = panel["name"]
        if len(names) > 3:  # a 3-D plot holds three streams; the JSON beside it has them all
            title += f"\n(streams {', '.join(names[3:])} not drawn: in the .json)"
        ax.set_title(title, fontsize=FONT["title"], pad=14)
        ax.tick_params(labelsize=FONT["annot"])
        ax.legend(fontsize=FONT["annot"], loc="upper left")
        record[panel["name"]] = {
            "spec": panel["spec"],
            "streams": list(names),
            "kinds": kinds,
            "positions": pos.tolist(),
        }
    save_png(fig, path)
    write_json_atomic(
        path.with_name(path.name + ".json"),
        _provenance({"figure": "adjacent-frames", **meta, "variants": record}),
    )
    return path
