"""HoPE (Li et al., "HoPE: Hybrid of Position Embedding for Length Generalization in
Vision-Language Models", arXiv 2505.20444).

Official code: hrlics/HoPE ``modeling_hope.py``.
- Positions: VideoRoPE's diagonal layout with the frame index scaled by ``s`` (``t = N + s·f``,
  ``h = t + r − ⌊(H−1)/2⌋``, ``w = t + c − ⌊(W−1)/2⌋``), the text after the video one past the
  t stream's maximum (``get_dynamic_rope_index`` L1538-L1660): vniahd's ``diagonal`` layout with
  ``delta = s``. Training draws s per video from {0.5, 0.75, 1, 1.25, 1.5}; the V-NIAH
  evaluation fixes s = 0.75 (``vision_niah/eval_vision_niah.py`` L193-L195), the preset's default.
- Frequencies, "hybrid" allocation (``apply_hybrid_multimodal_rotary_pos_emb`` L264-L293): the
  first s_h + s_w pairs alternate h (even j) and w (odd j); the last s_t pairs (the lowest
  frequencies) are NoPE. The t stream is never read: time enters only through h and w.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vniahd.rope.allocations import check_sections, register_allocation
from vniahd.rope.components import NOPE, Allocation, H, T, W
from vniahd.rope.presets import make_variant, register_preset

PAPER = "HoPE (arXiv 2505.20444)"


def alternating_axes(num_pairs: int, sections: Sequence[int]) -> torch.Tensor:
    """The first P − s_t pairs h (even j) and w (odd j), strictly alternating; the last s_t
    pairs t. Equal to VideoRoPE's ``lta`` when s_h = s_w (HoPE and VideoRoPE++ code both index
    by parity, so with s_h ≠ s_w their counts are ⌈·/2⌉ and ⌊·/2⌋, not the sections)."""
    st, _, _ = check_sections(num_pairs, sections)
    spatial = num_pairs - st
    return torch.tensor([H if j % 2 == 0 else W for j in range(spatial)] + [T] * st, dtype=torch.long)


def hybrid_axes(num_pairs: int, sections: Sequence[int]) -> torch.Tensor:
    """h/w alternating on the high pairs, the last s_t pairs NoPE (hrlics/HoPE
    ``modeling_hope.py`` L279-L288)."""
    axes = alternating_axes(num_pairs, sections)
    return torch.where(axes == T, torch.full_like(axes, NOPE), axes)


HYBRID = register_allocation(
    Allocation(
        "hybrid",
        hybrid_axes,
        "h,w alternating over the high freqs; the lowest s_t pairs NoPE (HoPE)",
        f"{PAPER}; hrlics/HoPE modeling_hope.py L264-L293 (apply_hybrid_multimodal_rotary_pos_emb)",
    ),
    model_sections=True,
)

HOPE = register_preset(
    make_variant(
        "diagonal",
        "hybrid",
        name="hope",
        delta=0.75,
        description="HoPE: diagonal layout with temporal scale 0.75 + hybrid allocation "
        "(lowest s_t pairs NoPE)",
        source=f"{PAPER}; hrlics/HoPE modeling_hope.py get_dynamic_rope_index L1538-L1660, "
        "apply_hybrid_multimodal_rotary_pos_emb L264-L293; "
        "s = 0.75 from vision_niah/eval_vision_niah.py L193-L195",
    )
)
