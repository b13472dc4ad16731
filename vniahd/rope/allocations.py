"""Frequency allocations: which position stream each rotary pair reads (docs/rope-math.md).

An allocation maps ``P`` rotary pairs (pair n has frequency ``θ^(-2n/d)``; n = 0 is the highest)
to stream indices (``0 = t, 1 = h, 2 = w`` for the classic layouts; :data:`NOPE` for a pair that
is never rotated): a long tensor of shape ``[P]``, or a :class:`~vniahd.rope.components.PairPlan`
when it also scales frequencies or works per KV head. ``sections`` is always given in (t, h, w)
order and must sum to ``P``.

Registry: :data:`ALLOCATIONS` maps a name to an :class:`~vniahd.rope.components.Allocation`
(the classic ones here; each published design's own in :mod:`vniahd.rope.published`, added with
:func:`register_allocation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.rope.components import NOPE, TTHW, Allocation, H, PairPlan, T, W
from vniahd.rope.components import Sections as Sections

AXIS_NAMES = TTHW


def _check_num_pairs(num_pairs: int) -> None:
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
        raise VniahdError(
            f"number of rotary pairs must be a positive integer (head_dim/2), got {num_pairs!r}"
        )


def check_sections(num_pairs: int, sections: Sequence[int] | None) -> Sections:
    """Validate ``sections`` = (s_t, s_h, s_w): three non-negative integers summing to ``num_pairs``."""
    _check_num_pairs(num_pairs)
    if sections is None:
        raise VniahdError("this allocation needs sections (t,h,w); pass e.g. --sections 16,24,24")
    try:
        parts = tuple(int(s) for s in sections)
        ok = len(parts) == 3 and all(p >= 0 and p == s for p, s in zip(parts, sections))
    except (TypeError, ValueError):
        parts, ok = (), False
    if not ok:
        raise VniahdError(f"sections must be three non-negative integers (t,h,w), got {sections!r}")
    if sum(parts) != num_pairs:
        raise VniahdError(
            f"sections {parts} sum to {sum(parts)} but there are {num_pairs} rotary "
            f"pairs (head_dim/2); choose t+h+w = {num_pairs}, "
            f"e.g. {default_sections(num_pairs, 'mrope-blocks')}"
        )
    return parts  # type: ignore[return-value]


def default_sections(num_pairs: int, allocation: str = "mrope-blocks") -> Sections | None:
    """Default (t, h, w) sections for ``num_pairs`` pairs.

    - ``uniform``: ``None`` (no sections).
    - ``interleaved``: Qwen3-VL's (24, 20, 20) for P = 64; for other P, h = w = ⌊5P/16⌋ (the same
      20/64 share, rounded down so 3·h ≤ P holds and every section is realised) and t = P − h − w.
    - every other allocation: t = P//4, h = (P−t)//2, w = P−t−h ((16, 24, 24) for P = 64, the
      Qwen2-VL ``mrope_section``).
    """
    _check_num_pairs(num_pairs)
    known = ALLOCATIONS.get(allocation)
    if known is not None and not known.uses_sections:
        return None
    if (known.section_rule if known is not None else "quarter") == "interleaved":
        h = w = (5 * num_pairs) // 16
        return (num_pairs - h - w, h, w)
    t = num_pairs // 4
    h = (num_pairs - t) // 2
    return (t, h, num_pairs - t - h)


def _tensor(axes: list[int]) -> torch.Tensor:
    return torch.tensor(axes, dtype=torch.long)


def uniform_axes(num_pairs: int, sections: Sequence[int] | None = None) -> torch.Tensor:
    """Every pair reads stream t (the streams are equal under 1D layouts). Sections are ignored."""
    _check_num_pairs(num_pairs)
    return torch.zeros(num_pairs, dtype=torch.long)


def mrope_blocks_axes(num_pairs: int, sections: Sequence[int]) -> torch.Tensor:
    """Qwen2-VL M-RoPE: pairs 0..s_t−1 → t (highest frequencies), next s_h → h, last s_w → w.

    Source: transformers ``Qwen2VLRotaryEmbedding.recomposition_frequencies`` (split by
    ``mrope_section``, chunk i reads stream i % 3).
    """
    st, sh, sw = check_sections(num_pairs, sections)
    return _tensor([T] * st + [H] * sh + [W] * sw)


def lta_axes(num_pairs: int, sections: Sequence[int]) -> torch.Tensor:
    """VideoRoPE Low-frequency Temporal Allocation (arXiv 2502.05173 §3, LTA).

    Pairs 0..P−s_t−1 alternate h, w, h, w… (even → h, odd → w); the last s_t pairs (lowest
    frequencies) → t. When s_h ≠ s_w the alternation runs while both have pairs left and the rest
    go to the larger one, so the counts always equal the sections.
    """
    st, sh, sw = check_sections(num_pairs, sections)
    axes: list[int] = []
    left = {H: sh, W: sw}
    nxt = H
    for _ in range(sh + sw):
        if left[nxt] == 0:
            nxt = W if nxt == H else H
        axes.append(nxt)
        left[nxt] -= 1
        nxt = W if nxt == H else H
    return _tensor(axes + [T] * st)


def lta_sequential_axes(num_pairs: int, sections: Sequence[int]) -> torch.Tensor:
    """LTA with sequential spatial blocks (VideoRoPE Table 7 ablation): h block, w block, then t."""
    st, sh, sw = check_sections(num_pairs, sections)
    return _tensor([H] * sh + [W] * sw + [T] * st)


def interleaved_axes(num_pairs: int, sections: Sequence[int]) -> torch.Tensor:
    """Qwen3-VL interleaved MRoPE: n%3==1 and n<3·s_h → h; n%3==2 and n<3·s_w → w; else t.

    Source: transformers ``Qwen3VLTextRotaryEmbedding.recomposition_frequencies``. The section
    counts are only realised when 3·s_h ≤ P+1 and 3·s_w ≤ P, which is checked.
    """
    st, sh, sw = check_sections(num_pairs, sections)
    if 3 * sh > num_pairs + 1 or 3 * sw > num_pairs:
        raise VniahdError(
            f"interleaved allocation: sections {(st, sh, sw)} cannot be realised "
            f"with {num_pairs} pairs (needs 3·h ≤ P+1 and 3·w ≤ P); use e.g. "
            f"{default_sections(num_pairs, 'interleaved')}"
        )
    axes = []
    for n in range(num_pairs):
        if n % 3 == 1 and n < 3 * sh:
            axes.append(H)
        elif n % 3 == 2 and n < 3 * sw:
            axes.append(W)
        else:
            axes.append(T)
    return _tensor(axes)


ALLOCATIONS: dict[str, Allocation] = {
    a.name: a
    for a in (
        Allocation(
            "uniform",
            uniform_axes,
            "every pair reads one stream (1D RoPE)",
            "RoFormer (Su et al., arXiv 2104.09864)",
            uses_sections=False,
        ),
        Allocation(
            "mrope-blocks",
            mrope_blocks_axes,
            "t block (highest freqs), then h block, then w block (Qwen2-VL)",
            "transformers Qwen2VLRotaryEmbedding (mrope_section split, chunk i reads stream i % 3)",
        ),
        Allocation(
            "lta",
            lta_axes,
            "h,w alternating over high freqs; t on the lowest s_t freqs (VideoRoPE)",
            "VideoRoPE (arXiv 2502.05173) §3, low-frequency temporal allocation",
        ),
        Allocation(
            "lta-sequential",
            lta_sequential_axes,
            "h block, w block, t on the lowest s_t freqs (VideoRoPE Table 7)",
            "VideoRoPE (arXiv 2502.05173) Table 7 (x-y allocation ablation)",
        ),
        Allocation(
            "interleaved",
            interleaved_axes,
            "t,h,w interleaved pair by pair (Qwen3-VL)",
            "transformers Qwen3VLTextRotaryEmbedding.recomposition_frequencies",
            section_rule="interleaved",
        ),
    )
}


def register_allocation(allocation: Allocation, *, model_sections: bool = False) -> Allocation:
    """Add a published design's allocation to :data:`ALLOCATIONS` (a name is registered once);
    ``model_sections``: it takes the model's own ``mrope_section`` when a variant fixes none."""
    if allocation.name in ALLOCATIONS:
        raise AssertionError(f"allocation {allocation.name!r} registered twice")
    ALLOCATIONS[allocation.name] = allocation
    if model_sections:
        MODEL_SECTION_ALLOCATIONS.append(allocation.name)
    return allocation


def allocation_descriptions() -> dict[str, str]:
    """Name → one-line description of every registered allocation."""
    return {name: a.description for name, a in ALLOCATIONS.items()}


#: Allocations whose section counts follow the model's own ``mrope_section`` when the variant
#: fixes none (:mod:`vniahd.rope.model`).
MODEL_SECTION_ALLOCATIONS = ["mrope-blocks", "lta", "lta-sequential"]


def resolve_sections(
    allocation: str, fixed: Sequence[int] | None, num_pairs: int, model_sections: Sequence[int] | None = None
) -> Sections | None:
    """The (t, h, w) sections ``allocation`` uses with ``num_pairs`` pairs (``None`` for uniform):
    the ``fixed`` ones, else the model's for block allocations, else the allocation's default."""
    if not ALLOCATIONS[check_allocation(allocation)].uses_sections:
        return None
    if fixed is not None:
        return check_sections(num_pairs, fixed)
    if model_sections is not None and allocation in MODEL_SECTION_ALLOCATIONS:
        return check_sections(num_pairs, model_sections)
    return default_sections(num_pairs, allocation)


def check_allocation(name: str) -> str:
    """``name`` if registered, else :class:`UnknownNameError` listing the valid names."""
    if name not in ALLOCATIONS:
        raise UnknownNameError("allocation", name, list(ALLOCATIONS))
    return name


def allocation_plan(
    name: str,
    num_pairs: int,
    sections: Sequence[int] | None = None,
    kv_heads: int | None = None,
    **params: Any,
) -> PairPlan:
    """The :class:`PairPlan` of allocation ``name`` with ``params``; ``sections=None`` uses
    :func:`default_sections` (when the allocation uses sections at all)."""
    allocation = ALLOCATIONS[check_allocation(name)]
    _check_num_pairs(num_pairs)
    if sections is None and allocation.uses_sections:
        sections = default_sections(num_pairs, name)
    secs = check_sections(num_pairs, sections) if allocation.uses_sections else None
    return allocation.plan(num_pairs, secs, kv_heads, **params)


def allocation_axes(
    name: str, num_pairs: int, sections: Sequence[int] | None = None, **params: Any
) -> torch.Tensor:
    """Stream of each pair [P] under allocation ``name`` (:data:`NOPE` for a NoPE pair);
    ``sections=None`` uses :func:`default_sections`. Frequency scales are in
    :func:`allocation_plan`."""
    plan = allocation_plan(name, num_pairs, sections, **params)
    return torch.where(plan.scale == 0, torch.full_like(plan.streams, NOPE), plan.streams)


def axis_names(axes: torch.Tensor | Sequence[int], names: Sequence[str] = AXIS_NAMES) -> list[str]:
    """``[0, 1, 2] -> ['t', 'h', 'w']``; a NoPE pair is ``-``."""
    return ["-" if int(a) == NOPE else names[int(a)] for a in axes]
