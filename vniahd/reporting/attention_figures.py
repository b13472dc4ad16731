"""Frame × frame attention maps in the VideoRoPE paper's layout (Fig. 3): the variants side by side,
one row per band of rotary pairs, frame numbers on both axes, needle and distractor frames marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vniahd.reporting.style import FONT, new_figure, save_png


def frame_maps_figure(
    record: dict[str, Any], bands: Sequence[str], layer: int | None, path: str | Path
) -> Path:
    """Draw ``record`` (a :func:`vniahd.analysis.attention.sample_attention` result) at ``layer``
    (None: the last one caught) to ``path``."""
    import numpy as np
    from matplotlib.colors import LogNorm

    variants = list(record["variants"])
    fig = new_figure(3.2 * len(variants) + 0.8, 3.0 * len(bands) + 0.4)
    axes = fig.subplots(len(bands), len(variants), squeeze=False)
    frames = int(record["frames"])
    for c, name in enumerate(variants):
        layers = record["variants"][name]["layers"]
        chosen = layers[-1] if layer is None else next((x for x in layers if x["layer"] == layer), layers[-1])
        for r, band in enumerate(bands):
            ax = axes[r][c]
            grid = np.array(chosen["bands"][band]["frame_map"], dtype=float)
            # log colours: the few frames near the query take most of the weight; the needle's share is small
            norm = LogNorm(vmin=1e-4, vmax=1.0)
            image = ax.imshow(np.clip(grid, 1e-4, 1.0), cmap="viridis", norm=norm, interpolation="nearest")
            for f in record["needle_frames"]:
                ax.axvline(f, color="#ff3b3b", linewidth=0.8)
            for f in record["distractor_frames"]:
                ax.axvline(f, color="#ffb000", linewidth=0.8, linestyle="--")
            mass = chosen["bands"][band]["mass"]
            ax.set_title(
                f"{name} · {band} · layer {chosen['layer']}\nneedle {mass['needle']:.2f}  "
                f"distractor {mass['distractor']:.2f}",
                fontsize=FONT["annot"] + 1,
            )
            ax.set_xlabel("key frame", fontsize=FONT["annot"])
            ax.set_ylabel("query frame", fontsize=FONT["annot"])
            ax.tick_params(labelsize=FONT["annot"])
            if frames <= 20:
                ax.set_xticks(range(frames))
                ax.set_yticks(range(frames))
            fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(
        f"{record['model']} · sample {record['sample_id']} (needle: red line, distractor: dashed)",
        fontsize=FONT["title"],
    )
    return save_png(fig, path)
