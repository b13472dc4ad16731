"""ILRoPE (arXiv 2505.05472): spatial-reset positions with interleaved frequencies.

Rule as reimplemented in JJJYmmm/Multimodal-RoPEs (``pos_design/ilrope.py`` L4-L5 calls the
OmniRoPE index, ``configs/ilrope.py`` L9-L33 forces ``spatial_reset``, sections (24, 20, 20);
``entry.py`` L91 pairs it with the interleaved embedding). The positions equal MRoPE-I's with
spatial reset, so the preset reuses that layout."""

from __future__ import annotations

from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.published.mrope_i import SPATIAL_RESET

ILROPE = register_preset(
    make_variant(
        SPATIAL_RESET.name,
        "interleaved",
        name="ilrope",
        description="ILRoPE: spatial-reset positions + interleaved t/h/w frequencies (24,20,20)",
        source="ILRoPE (arXiv 2505.05472) as in JJJYmmm/Multimodal-RoPEs pos_design/omnirope.py "
        "L55-L122, configs/ilrope.py L9-L33, entry.py L91",
    )
)
