"""MHRoPE (Huang et al., "Revisiting Multimodal Positional Encoding", ICLR 2026, arXiv 2510.23095).

Multi-head allocation: instead of splitting a head's pairs among t, h and w, every key/value
head gives *all* its pairs (the full spectrum) to one stream; ``heads = t/h/w`` KV heads per
stream, in that order, and heads left over are NoPE (never rotated). Query head q uses KV head
``q // (query_heads / kv_heads)`` (``apply_multihead_rotary_pos_emb``, ``repeat_interleave``).

Official code: JJJYmmm/Multimodal-RoPEs ``freq_allocation/mhrope.py`` L11-L46 (allocation),
``configs/mhrope.py`` L9-L28 (``mrope_section = [2, 3, 3]`` counted in KV heads of 8), positions
of MRoPE-I (``entry.py`` L70; README L133 uses ``spatial_reset=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vniahd.errors import VniahdError
from vniahd.rope.allocations import register_allocation
from vniahd.rope.components import Allocation, PairPlan
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.published.mrope_i import SPATIAL_RESET


def _check_heads(value: Any) -> tuple[int, int, int] | str:
    if value is None or value == "auto":
        return "auto"
    parts: Sequence[Any] = value.replace("/", ",").split(",") if isinstance(value, str) else value
    try:
        out = tuple(int(str(p).strip()) for p in parts)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or any(p < 0 for p in out) or sum(out) == 0:
        raise VniahdError(
            f"per-head allocation: heads must be three non-negative integers t/h/w (KV heads per stream, "
            f"e.g. 2/3/3 of 8), got {value!r}"
        )
    return (out[0], out[1], out[2])


def default_heads(kv_heads: int) -> tuple[int, int, int]:
    """KV heads per stream for ``heads=auto``: t = K//4, h = (K−t)//2, w = K−t−h, which is the
    paper's (2, 3, 3) for 8 KV heads."""
    t = kv_heads // 4
    h = (kv_heads - t) // 2
    return t, h, kv_heads - t - h


def per_head_plan(
    num_pairs: int, sections: Any, kv_heads: int, heads: tuple[int, int, int] | str
) -> PairPlan:
    """KV head g reads stream t for g < n_t, h for g < n_t+n_h, w for g < n_t+n_h+n_w, over all
    ``num_pairs`` pairs; later heads are NoPE. Streams [K, P], scales [K, P]."""
    counts: tuple[int, int, int] = default_heads(kv_heads) if isinstance(heads, str) else heads
    if isinstance(heads, str) and min(counts) == 0:
        raise VniahdError(
            f"per-head allocation: a model with {kv_heads} KV heads cannot give t, h and w a head each "
            "by default; pass heads=t/h/w explicitly (e.g. heads=0/1/1)"
        )
    if sum(counts) > kv_heads:
        raise VniahdError(
            f"per-head allocation: heads {'/'.join(map(str, counts))} need {sum(counts)} KV heads but "
            f"the model has {kv_heads}; choose t+h+w <= {kv_heads}"
        )
    streams = torch.zeros(kv_heads, num_pairs, dtype=torch.long)
    scale = torch.zeros(kv_heads, num_pairs, dtype=torch.float64)
    g = 0
    for axis, count in enumerate(counts):
        streams[g : g + count] = axis
        scale[g : g + count] = 1.0
        g += count
    return PairPlan(streams=streams, scale=scale)


PER_HEAD = register_allocation(
    Allocation(
        "per-head",
        per_head_plan,
        "each KV head reads one stream over the full spectrum (heads=t/h/w per stream; rest NoPE)",
        "MHRoPE (arXiv 2510.23095); JJJYmmm/Multimodal-RoPEs freq_allocation/mhrope.py L11-L46",
        defaults={"heads": "auto"},
        checks={"heads": _check_heads},
        uses_sections=False,
        per_head=True,
    )
)

MHROPE = register_preset(
    make_variant(
        SPATIAL_RESET.name,
        "per-head",
        name="mhrope",
        description="MHRoPE: spatial-reset positions; each KV head rotates all its pairs by one of t/h/w",
        source="MHRoPE (Huang et al., ICLR 2026, arXiv 2510.23095); JJJYmmm/Multimodal-RoPEs "
        "freq_allocation/mhrope.py L11-L46, configs/mhrope.py L9-L28 (heads 2/3/3 of 8), README L133",
    )
)
