"""Circle-RoPE (Wang et al., arXiv 2505.16416).

Official code: lose4578/CircleRoPE ``code/circle_rope.py`` and
``code/modular_qwen2_5_vl_circle_rope.py`` (images only; config ``code/config.json`` L11-L17:
radius 10, alpha 0.5, ``move_to_origin``). A frame's tokens are centred (x = c − (W−1)/2,
y = r − (H−1)/2), given the angle ``θ = α·θ_norm + (1−α)·θ_index`` (``θ_norm``: atan2(y, x)
rescaled to [0, 2π] over the frame, ``θ_index = (r·W + c)/(H·W)·2π``; ``map_to_circle``
L162-L214), put on a circle of radius R, ``(X, Y) = R·(cos θ, sin θ)``, and turned into the
plane orthogonal to the text direction (1, 1, 1): ``t' = 2Y/√6``, ``h' = X/√2 − Y/√6``,
``w' = −X/√2 − Y/√6`` (L128-L159), around the block start (S, S, S). The text after the block
starts one past the largest value of any stream (modular file L180-L183) — not an integer.
Frequencies: Qwen2.5-VL's M-RoPE blocks (unchanged). Video: the official code raises on more
than one frame; like JJJYmmm/Multimodal-RoPEs (``pos_design/circlerope.py`` L127-L135) frame f
repeats frame 0's ring shifted by ``stride·f`` on all three streams. Not expressible here: the
official default alternates circle positions (even layers) with plain M-RoPE (odd layers,
``AGE_mode: strategy_4``), a per-layer choice no single position table describes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vniahd.rope.components import Layout, Positions, frame_grid, grid_positions, number_check
from vniahd.rope.layouts import register_layout
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.segments import Segment, Video

SOURCE = "Circle-RoPE (arXiv 2505.16416); lose4578/CircleRoPE code/circle_rope.py"


def ring_offsets(height: int, width: int, radius: float, alpha: float) -> torch.Tensor:
    """(t', h', w') offsets [3, H·W] of one frame's tokens on the ring (module docstring)."""
    rows, cols = frame_grid(height, width)
    x, y = cols - (width - 1) / 2, rows - (height - 1) / 2
    angle = torch.atan2(y, x)
    spread = angle.max() - angle.min()
    theta_norm = (angle - angle.min()) / spread * 2 * math.pi if float(spread) != 0 else angle
    theta_index = (rows * width + cols) / (height * width) * 2 * math.pi
    theta = alpha * theta_norm + (1 - alpha) * theta_index
    big_x, big_y = radius * torch.cos(theta), radius * torch.sin(theta)
    r2, r6 = math.sqrt(2.0), math.sqrt(6.0)
    return torch.stack([2 * big_y / r6, big_x / r2 - big_y / r6, -big_x / r2 - big_y / r6])


def circle_positions(segments: Sequence[Segment], radius: float, alpha: float, stride: float) -> Positions:
    """Visual (f, r, c) at ``S + stride·f + ring(r, c)`` on each of t, h, w; next segment one
    past the block's largest value."""

    def video(start: float, seg: Video) -> tuple[torch.Tensor, float]:
        ring = ring_offsets(seg.height, seg.width, radius, alpha)
        pos = torch.cat([start + stride * f + ring for f in range(seg.frames)], dim=1)
        return pos, float(pos.max().item()) + 1.0

    return grid_positions(segments, video)


register_layout(
    Layout(
        "circle",
        circle_positions,
        "each frame's tokens on a ring (radius, alpha) orthogonal to (1,1,1) around S; "
        "frames shifted by stride",
        f"{SOURCE} map_to_circle L162-L214, rotate_plane_perpendicular_to_vector L128-L159; "
        "video stacking from JJJYmmm/Multimodal-RoPEs pos_design/circlerope.py L127-L135",
        defaults={"radius": 10.0, "alpha": 0.5, "stride": 1.0},
        checks={
            "radius": number_check("circle layout", "radius"),
            "alpha": number_check("circle layout", "alpha", strict=False),
            "stride": number_check("circle layout", "stride", strict=False),
        },
    )
)

register_preset(
    make_variant(
        "circle",
        "mrope-blocks",
        name="circle-rope",
        description="Circle-RoPE: visual tokens on a radius-10 ring orthogonal to the text direction; "
        "M-RoPE frequencies; frames stacked along t (Multimodal-RoPEs' video extension)",
        source=f"{SOURCE}; code/config.json L11-L17 (radius 10, alpha 0.5); "
        "modular_qwen2_5_vl_circle_rope.py "
        "L164-L183 (text before/after)",
    )
)
