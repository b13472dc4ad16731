"""MRoPE-I (Huang et al., "Revisiting Multimodal Positional Encoding", ICLR 2026, arXiv 2510.23095).

Official code: JJJYmmm/Multimodal-RoPEs (the paper's own repository). Positions with
``spatial_reset``: a visual token's t stream counts frames from the block start, its h and w
streams are the token's row and column inside the frame (they restart at 0 in every frame);
the text after the block resumes one past the block's largest extent
(``pos_design/mrope_i.py`` L122-L132). Frequencies: Qwen3-VL's interleaved t/h/w allocation with
sections (24, 20, 20) (``freq_allocation/mrope_i.py`` L9-L24), i.e. vniahd's ``interleaved``.
The repository lays a video out as one grid per frame (Qwen3-VL, timestamps between frames);
vniahd lays the frames of one video out as one grid, the evident intent for spliced frames
(docs/rope-math.md, "Published designs").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vniahd.rope.components import Layout, Positions, frame_grid, grid_positions, number_check
from vniahd.rope.layouts import register_layout
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.segments import Segment, Video

PAPER = "MRoPE-I (Huang et al., ICLR 2026, arXiv 2510.23095)"
CODE = "JJJYmmm/Multimodal-RoPEs"


def spatial_reset_positions(segments: Sequence[Segment], stride: float) -> Positions:
    """Spatial reset: text counts up on all streams; visual token (f, r, c) of a block starting at
    ``S`` sits at ``(S + stride·f, r, c)``; the next segment starts at
    ``S + max(stride·(T−1), H−1, W−1) + 1``.

    Source: Multimodal-RoPEs ``pos_design/mrope_i.py`` L122-L132 (``spatial_reset=True``; the
    max is over the local, un-offset coordinates, L124-L127); OmniRoPE's shift rule
    (``pos_design/omnirope.py`` L92-L114) gives the same numbers."""

    def video(start: float, seg: Video) -> tuple[torch.Tensor, float]:
        rows, cols = frame_grid(seg.height, seg.width)
        frames = [
            torch.stack([torch.full_like(rows, start + stride * f), rows, cols]) for f in range(seg.frames)
        ]
        extent = max(stride * (seg.frames - 1), seg.height - 1, seg.width - 1)
        return torch.cat(frames, dim=1), start + extent + 1.0

    return grid_positions(segments, video)


SPATIAL_RESET = register_layout(
    Layout(
        "spatial-reset",
        spatial_reset_positions,
        "t = S+stride·f, h = r, w = c (h/w local to each frame); next segment at S + max extent + 1",
        f"{PAPER}, {CODE} pos_design/mrope_i.py L122-L132 (spatial_reset=True)",
        defaults={"stride": 1.0},
        checks={"stride": number_check("spatial-reset layout", "stride")},
    )
)

MROPE_I = register_preset(
    make_variant(
        "spatial-reset",
        "interleaved",
        name="mrope-i",
        description="MRoPE-I: spatial-reset positions + Qwen3-VL interleaved t/h/w frequencies (24,20,20)",
        source=f"{PAPER}; {CODE} pos_design/mrope_i.py L122-L132, freq_allocation/mrope_i.py L9-L24, "
        "configs/mrope_i.py L9-L22 (README example: spatial_reset=True, temporal_stride=1)",
    )
)
