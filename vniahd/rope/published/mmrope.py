"""MMRoPE (Lumos-1, arXiv 2507.08801).

Rule as reimplemented in JJJYmmm/Multimodal-RoPEs: M-RoPE positions with each visual axis's
offset from the block start scaled, ``(S + stride·f·σ_t, S + r·σ_h, S + c·σ_w)``, the next
segment one past the largest value (``pos_design/mmrope.py`` L83-L132; ``position_scale``
defaults to 1/1/1, the docs suggest 4/8/8); frequencies in meta-blocks of eight pairs, pair j
reading ``[t, t, h, w, h, w, h, w][j mod 8]`` (``freq_allocation/mmrope.py`` L11-L24), so every
axis spans the whole spectrum in the ratio 2:3:3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from vniahd.errors import VniahdError
from vniahd.rope.allocations import register_allocation
from vniahd.rope.components import (
    Allocation,
    H,
    Layout,
    Positions,
    T,
    W,
    frame_grid,
    grid_positions,
    number_check,
)
from vniahd.rope.layouts import register_layout
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.segments import Segment, Video

CODE = "JJJYmmm/Multimodal-RoPEs"
PATTERN = (T, T, H, W, H, W, H, W)


def _check_scale(value: Any) -> tuple[float, float, float]:
    parts: Sequence[Any] = value.replace("/", ",").split(",") if isinstance(value, str) else value
    try:
        out = tuple(float(str(p).strip()) for p in parts)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(p) and p > 0 for p in out):
        raise VniahdError(
            f"mrope-scaled layout: scale must be three positive numbers t/h/w (e.g. 4/8/8), got {value!r}"
        )
    return (out[0], out[1], out[2])


def scaled_mrope_positions(
    segments: Sequence[Segment], stride: float, scale: tuple[float, float, float]
) -> Positions:
    """``(S + stride·f·σ_t, S + r·σ_h, S + c·σ_w)``; next segment at the block's max + 1."""
    st, sh, sw = scale

    def video(start: float, seg: Video) -> tuple[torch.Tensor, float]:
        rows, cols = frame_grid(seg.height, seg.width)
        frames = [
            torch.stack(
                [torch.full_like(rows, start + stride * f * st), start + rows * sh, start + cols * sw]
            )
            for f in range(seg.frames)
        ]
        pos = torch.cat(frames, dim=1)
        return pos, float(pos.max().item()) + 1.0

    return grid_positions(segments, video)


def mmrope_axes(num_pairs: int, sections: Any) -> torch.Tensor:
    """Pair j reads ``[t, t, h, w, h, w, h, w][j mod 8]`` (``freq_allocation/mmrope.py`` L11-L24)."""
    return torch.tensor([PATTERN[j % len(PATTERN)] for j in range(num_pairs)], dtype=torch.long)


register_layout(
    Layout(
        "mrope-scaled",
        scaled_mrope_positions,
        "M-RoPE with the visual offsets scaled per axis: (S+stride·f·σt, S+r·σh, S+c·σw); next at max + 1",
        f"Lumos-1 (arXiv 2507.08801) as in {CODE} pos_design/mmrope.py L83-L132",
        defaults={"stride": 1.0, "scale": (1.0, 1.0, 1.0)},
        checks={"stride": number_check("mrope-scaled layout", "stride"), "scale": _check_scale},
    )
)

register_allocation(
    Allocation(
        "meta-blocks",
        mmrope_axes,
        "pair j reads [t,t,h,w,h,w,h,w][j mod 8]: every axis over the whole spectrum, 2:3:3 (MMRoPE)",
        f"Lumos-1 (arXiv 2507.08801) as in {CODE} freq_allocation/mmrope.py L11-L24",
        uses_sections=False,
    )
)

register_preset(
    make_variant(
        "mrope-scaled",
        "meta-blocks",
        name="mmrope",
        description="MMRoPE (Lumos-1): M-RoPE positions (scale 1/1/1; 4/8/8 suggested) + "
        "t,t,h,w,h,w,h,w meta-blocks",
        source=f"Lumos-1 (arXiv 2507.08801); {CODE} pos_design/mmrope.py L83-L132, freq_allocation/mmrope.py "
        "L11-L24, configs/mmrope.py L9-L32",
    )
)
