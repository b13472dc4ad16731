"""VRoPE (Liu et al., "VRoPE: Rotary Position Embedding for Video Large Language Models",
arXiv 2502.11664).

Official code: johncaged/VRoPE ``vrope.py`` (the repository's only code file).
- Positions (``generate_nd_positions`` L106-L154): four spatial streams per visual token,
  ``a = r + c``, ``b = r + (W−1−c)``, ``c = (H−1−r) + c``, ``d = (H−1−r) + (W−1−c)``, each plus
  ``f·(H+W−1)`` and the running index S, so consecutive frames occupy touching integer ranges;
  text counts up on every stream and the text after the video starts at ``S + T·(H+W−1)``
  (L153, L162-L167).
- Frequencies: pair i reads stream ``i mod 4`` (L150; ``half_time_dim`` is forced to 0 at L80,
  so no pair reads time). The file holds no frequency code, so every pair keeps its default
  frequency θ^(−2i/d) (an assumption, stated in docs/rope-math.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vniahd.rope.allocations import register_allocation
from vniahd.rope.components import Allocation, Layout, Positions, frame_grid, grid_positions, int_check
from vniahd.rope.layouts import register_layout
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.segments import Segment, Video

SOURCE = "VRoPE (arXiv 2502.11664); johncaged/VRoPE vrope.py"
STREAMS = ("a", "b", "c", "d")  # r+c, r+(W-1-c), (H-1-r)+c, (H-1-r)+(W-1-c)


def vrope_positions(segments: Sequence[Segment]) -> Positions:
    """Four streams: text i on all; visual (f, r, c) at ``S + f·(H+W−1) + {r+c, r+W−1−c,
    H−1−r+c, H−1−r+W−1−c}``; next segment at ``S + T·(H+W−1)``."""

    def video(start: float, seg: Video) -> tuple[torch.Tensor, float]:
        rows, cols = frame_grid(seg.height, seg.width)
        span = seg.height + seg.width - 1
        flip_r, flip_c = seg.height - 1 - rows, seg.width - 1 - cols
        local = torch.stack([rows + cols, rows + flip_c, flip_r + cols, flip_r + flip_c])
        frames = [start + f * span + local for f in range(seg.frames)]
        return torch.cat(frames, dim=1), start + float(seg.frames * span)

    return grid_positions(segments, video, streams=len(STREAMS))


def cyclic_axes(num_pairs: int, sections: Any, streams: int) -> torch.Tensor:
    """Pair i reads stream ``i mod streams`` (``vrope.py`` L150)."""
    return torch.arange(num_pairs, dtype=torch.long) % streams


register_layout(
    Layout(
        "vrope",
        vrope_positions,
        "4 streams r+c, r+(W-1-c), (H-1-r)+c, (H-1-r)+(W-1-c), each + S + f(H+W-1); next at S + T(H+W-1)",
        f"{SOURCE} generate_nd_positions L106-L154",
        streams=STREAMS,
    )
)

register_allocation(
    Allocation(
        "cyclic",
        cyclic_axes,
        "pair i reads stream i mod streams (VRoPE: 4 spatial streams, no temporal pairs)",
        f"{SOURCE} L150 (half_time_dim forced to 0 at L80)",
        defaults={"streams": 4},
        checks={"streams": int_check("cyclic allocation", "streams", minimum=1)},
        uses_sections=False,
        streams=4,  # the default of its streams parameter, which make_variant checks
    )
)

register_preset(
    make_variant(
        "vrope",
        "cyclic",
        name="vrope",
        description="VRoPE: four symmetric spatial streams shifted by f(H+W-1); pair i reads stream i mod 4",
        source=f"{SOURCE} L80, L106-L167",
    )
)
