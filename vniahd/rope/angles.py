"""The angle table of a variant: by how much every rotary pair of every token is rotated.

Pair ``j`` of a token (``j = 0 … P−1``, ``P = d/2``, pair 0 the fastest) is rotated by

    a_j = pos[stream_j] · scale_j · β^(−2j/d)

radians, where ``pos`` is the token's position streams under the variant's layout, ``stream_j``
the stream its allocation gives pair ``j`` and ``scale_j`` its frequency multiplier (1 for the
classic allocations, 0 for a NoPE pair); a per-KV-head allocation has one such table per head
(docs/rope-math.md, "Notation and conventions"). The ``[L, P]`` table of these angles is the
complete, implementation-independent description of what a variant does to a sequence: two
implementations that agree on it rotate every query and key alike, whatever their position
ids, section splits or pair orders look like.

Sections follow the rule a model uses (:func:`vniahd.rope.variant_axes`): ``sections`` plays the
model's ``mrope_section``, which the block allocations (``mrope-blocks``, ``lta``,
``lta-sequential``) take unless the variant fixes its own; ``interleaved`` uses its own default
and ``uniform`` has none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from vniahd.errors import VniahdError
from vniahd.rope.allocations import Sections, check_sections
from vniahd.rope.components import PairPlan
from vniahd.rope.segments import Segment, Text, Video, check_segments

if TYPE_CHECKING:
    from vniahd.rope.presets import Variant


def inv_freq64(head_dim: int, theta: float) -> torch.Tensor:
    """``θ^(−2j/d)`` for j = 0 … d/2−1 in float64 (:func:`vniahd.rope.inv_freq` is the float32
    buffer models hold)."""
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise VniahdError(f"head dim must be a positive even integer, got {head_dim!r}")
    if not (isinstance(theta, (int, float)) and math.isfinite(theta) and theta > 0):
        raise VniahdError(f"rope theta must be a positive finite number, got {theta!r}")
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim
    return 1.0 / (float(theta) ** exponents)


def angle_sections(variant: Variant, head_dim: int, sections: Sequence[int] | None = None) -> Sections | None:
    """The (t, h, w) sections ``variant`` uses on a model whose ``mrope_section`` is ``sections``
    (``None``: the allocation's default); ``None`` for the uniform allocation."""
    num_pairs = head_dim // 2
    model_sections = None if sections is None else check_sections(num_pairs, sections)
    return variant.sections_for(num_pairs, model_sections)


def angle_plan(
    variant: Variant, head_dim: int, sections: Sequence[int] | None = None, kv_heads: int | None = None
) -> PairPlan:
    """Stream and frequency multiplier of each of the ``head_dim/2`` pairs (per KV head for a
    per-head allocation); the rule of :func:`vniahd.rope.variant_plan` with ``sections`` as the
    model's ``mrope_section``."""
    num_pairs = head_dim // 2
    model_sections = None if sections is None else check_sections(num_pairs, sections)
    if kv_heads is not None and (isinstance(kv_heads, bool) or not isinstance(kv_heads, int) or kv_heads < 1):
        raise VniahdError(f"the number of KV heads must be a positive integer, got {kv_heads!r}")
    return variant.pair_plan(num_pairs, model_sections, kv_heads)


def angle_axes(variant: Variant, head_dim: int, sections: Sequence[int] | None = None) -> torch.Tensor:
    """Stream of each of the ``head_dim/2`` pairs (0=t, 1=h, 2=w; -1 NoPE): long [P]; the rule
    of :func:`vniahd.rope.variant_axes` with ``sections`` as the model's ``mrope_section``."""
    num_pairs = head_dim // 2
    model_sections = None if sections is None else check_sections(num_pairs, sections)
    return variant.axes(num_pairs, model_sections)


def rotary_angles(
    variant: Variant,
    segments: Sequence[Segment],
    head_dim: int,
    theta: float,
    sections: Sequence[int] | None = None,
    kv_heads: int | None = None,
) -> torch.Tensor:
    """Rotation angle in radians (not reduced modulo 2π) of every pair of every token: float64
    ``[L, P]`` with ``[i, j] = pos_i[stream_j] · scale_j · theta^(−2j/head_dim)`` (``scale_j`` =
    0 for a NoPE pair); a per-head variant gives ``[kv_heads, L, P]``, one table per KV head.

    ``variant`` is a concrete :class:`~vniahd.rope.Variant` (``native`` has positions only on a
    model); ``segments`` the sequence (:func:`vniahd.rope.simple_sequence`); ``sections`` the
    model's (t, h, w) ``mrope_section`` in pairs, summing to ``head_dim/2`` (module docstring);
    ``kv_heads`` the model's KV head count (needed by per-head variants only).
    """
    freqs = inv_freq64(head_dim, theta)
    plan = angle_plan(variant, head_dim, sections, kv_heads)
    pos = variant.positions(check_segments(segments)).to(torch.float64).t()  # [L, K]
    if plan.per_head:
        return torch.stack([pos[:, s] * (c * freqs) for s, c in zip(plan.streams, plan.scale)])
    return pos[:, plan.streams] * (plan.scale * freqs)


def token_labels(segments: Sequence[Segment]) -> list[str]:
    """One label per token: ``text``, or ``frame F (R,C)`` for the visual token at row R, column C
    of frame F of its video (frames count from 0 within each video or image)."""
    labels: list[str] = []
    for seg in check_segments(segments):
        if isinstance(seg, Video):
            labels += [
                f"frame {f} ({r},{c})"
                for f in range(seg.frames)
                for r in range(seg.height)
                for c in range(seg.width)
            ]
        else:
            labels += ["text"] * seg.num_tokens
    return labels


def frame_distance_angles(
    variant: Variant,
    head_dim: int,
    theta: float,
    frames: int,
    grid: tuple[int, int] = (1, 1),
    sections: Sequence[int] | None = None,
    kv_heads: int | None = None,
) -> torch.Tensor:
    """How far each pair of a visual token turns between frame 0 and frame ``f`` of one video:
    float64 ``[frames, P]`` (``[kv_heads, frames, P]`` per head), row ``f`` = angle of the first
    token of frame f minus that of frame 0 (VideoRoPE Fig. 4 plots its cosine against f)."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise VniahdError(f"frames must be an integer >= 2, got {frames!r}")
    height, width = grid
    angles = rotary_angles(
        variant, [Text(1), Video(frames, height, width)], head_dim, theta, sections, kv_heads
    )
    first = 1 + torch.arange(frames) * (height * width)  # the first token of every frame
    picked = angles[..., first, :]
    return picked - picked[..., :1, :]
