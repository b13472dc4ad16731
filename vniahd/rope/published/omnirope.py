"""OmniRoPE (OmniGen2, arXiv 2506.18871): spatial-reset positions with M-RoPE's frequency blocks.

Rule as reimplemented in JJJYmmm/Multimodal-RoPEs: ``(shift + stride·f, r, c)`` per visual
token, ``shift += max(stride·(T−1) + 1, H, W)`` after the block (``pos_design/omnirope.py``
L92-L114) — numerically MRoPE-I's spatial reset — and the chunked M-RoPE embedding
(``entry.py`` L92, sections (16, 24, 24))."""

from __future__ import annotations

from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.published.mrope_i import SPATIAL_RESET

OMNIROPE = register_preset(
    make_variant(
        SPATIAL_RESET.name,
        "mrope-blocks",
        name="omnirope",
        description="OmniRoPE: spatial-reset positions + M-RoPE t/h/w frequency blocks",
        source="OmniGen2 (arXiv 2506.18871) as in JJJYmmm/Multimodal-RoPEs pos_design/omnirope.py "
        "L55-L122, configs/omnirope.py L9-L26, entry.py L92",
    )
)
