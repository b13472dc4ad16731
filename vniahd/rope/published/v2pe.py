"""V2PE (Ge et al., "V2PE: Improving Multimodal Long-Context Capability of Vision-Language
Models with Variable Visual Position Encoding", arXiv 2412.09616).

1-D positions in which visual tokens advance by a fraction: a visual block of L tokens that
follows position ``last`` puts token n at ``last + (n+1)·δ`` with ``δ = visual_stride / L``;
after the block ``last = ⌈last visual position⌉`` and text resumes at ``last + 1``. Rule as in
JJJYmmm/Multimodal-RoPEs ``pos_design/v2pe.py`` L56-L112 (``configs/v2pe.py`` L13-L24:
``visual_stride = 16``), which follows InternVL's ``rope_pos_id_stride / num_image_token``.
InternVL feeds a video as one image per frame, so a block is one frame by default
(``block=frame``); ``block=video`` makes the whole video one block. Frequencies: 1-D RoPE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vniahd.rope.components import Layout, Positions, choice_check, finish, number_check, text_run
from vniahd.rope.layouts import register_layout
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.segments import Segment, Text

SOURCE = "V2PE (arXiv 2412.09616); rule of JJJYmmm/Multimodal-RoPEs pos_design/v2pe.py L56-L112"


def v2pe_positions(segments: Sequence[Segment], visual_stride: float, block: str) -> Positions:
    """Text counts up by one from ``last + 1``; each visual block advances by ``visual_stride``
    in all (module docstring); the same value on all three streams."""
    last = -1.0
    chunks: list[torch.Tensor] = []
    for seg in segments:
        if isinstance(seg, Text):
            chunks.append(text_run(last + 1, seg.n))
            last += seg.n
            continue
        hw = seg.height * seg.width
        blocks = [hw] * seg.frames if block == "frame" else [seg.num_tokens]
        for size in blocks:
            step = visual_stride / size
            pos = last + step * torch.arange(1, size + 1, dtype=torch.float64)
            chunks.append(pos.expand(3, size).clone())
            last = float(math.ceil(pos[-1].item()))
    return finish(chunks)


register_layout(
    Layout(
        "v2pe",
        v2pe_positions,
        "1-D; a visual block of L tokens advances visual_stride in all (δ = stride/L); text at ceil + 1",
        SOURCE,
        defaults={"visual_stride": 16.0, "block": "frame"},
        checks={
            "visual_stride": number_check("v2pe layout", "visual_stride"),
            "block": choice_check(
                "v2pe layout",
                "block",
                {"frame": "each frame is a block (InternVL)", "video": "one block per video"},
            ),
        },
    )
)

register_preset(
    make_variant(
        "v2pe",
        "uniform",
        name="v2pe",
        description="V2PE: 1-D RoPE, visual tokens advance visual_stride/L each (16 per frame by default)",
        source=f"{SOURCE}; configs/v2pe.py L13-L24",
    )
)
